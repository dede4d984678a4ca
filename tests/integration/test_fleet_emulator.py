"""The fleet on the emulator: member deployments in two accounts and two regions publish their
decisions; EventBridge forwards them to the central bus in the audit account (only for the
accounts its resource policy admits), whose rule stores the whole event in the central log group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from batch_terminator.contract import (
    DECISION_DETAIL_TYPE,
    EVENT_SOURCE,
    FLEET_BUS_NAME,
    decision_event_pattern,
)
from batch_terminator.models.audit import AUDIT_MESSAGE, AuditRecord
from batch_terminator_cli.demo import demo_policies
from batch_terminator_cli.emulator import alarms, eventbridge, install
from batch_terminator_cli.sandbox import FleetSandbox, account_credentials, fleet_sandbox

TEAM_A, TEAM_B, OUTSIDER = "222222222222", "333333333333", "444444444444"
# Two accounts, two regions: team A in both, team B in eu-west-1; the outsider is not admitted.
MEMBERS = [(TEAM_A, "us-east-1"), (TEAM_A, "eu-west-1"), (TEAM_B, "eu-west-1")]
AUDIT_KEYS = [f.name for f in fields(AuditRecord)]
# Accounts of the tests that build their own buses (none of the fleet's).
ONE, TWO, THREE = "666666666666", "777777777777", "888888888888"


@dataclass
class Scene:
    """The fleet after each member acted, and every audit line each member wrote (its
    terminator's, and the capped runs its sweeper and brake wrote)."""

    fleet: FleetSandbox
    audit: dict[tuple[str, str], list[dict[str, Any]]]
    # The policies whose run each member's sweeper or brake capped ("policy cap reached").
    caps: dict[tuple[str, str], list[str]]
    # The jobs each member terminated: (account, region) -> {job id: source}
    terminated: dict[tuple[str, str], dict[str, str]]


def act(fleet: FleetSandbox) -> Scene:
    """Team A us-east-1: the spend alarm's brake (cap 3 of 4). Team A eu-west-1: a person's
    request, and a protected job skipped. Team B eu-west-1: a sweep's runtime cap (2 of 3).
    The outsider: a sweep terminates one job."""
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    audit: dict[tuple[str, str], list[dict[str, Any]]] = {}
    caps: dict[tuple[str, str], list[str]] = {}
    for member in fleet.members:
        where = (member.account, member.region)
        with fleet.acting_as(member) as box:
            world = box.world
            if where == (TEAM_A, "us-east-1"):
                for i in range(4):
                    world.job(f"spot-{i}", "spot-cpu", "RUNNING", age=(20 - i) * minute)
                at = datetime.now(UTC).replace(microsecond=0)
                alarm = alarms.alarm_event(
                    "batch-spend-critical", at, account=TEAM_A, region="us-east-1"
                )
                box.run_brake(alarm)
            elif where == (TEAM_A, "eu-west-1"):
                mine = world.job("etl-nightly", "spot-cpu", "RUNNING", age=3 * hour)
                kept = world.job(
                    "golden", "gpu-training", "RUNNING", tags={"batch-terminator:protect": "true"}
                )
                box.send({"jobIds": [mine, kept], "reason": "incident INC-7", "requestedBy": "ops"})
            else:
                for i in range(3):
                    world.job(
                        f"train-gpt-{i}",
                        "gpu-training",
                        "RUNNING",
                        age=(13 + i) * hour,
                        definition="train-gpt",
                    )
                box.run_sweeper()
            box.run_terminator()
            capped = [
                line
                for line in box.sweeper_logs + box.trigger_logs
                if line.get("message") == AUDIT_MESSAGE
            ]
            audit[where] = list(box.audit) + capped
            caps[where] = [
                line["policy"]
                for line in box.sweeper_logs + box.trigger_logs
                if line.get("message") == "policy cap reached"
            ]
    terminated = {
        where: {line["job_id"]: line["source"] for line in lines if line["outcome"] == "terminated"}
        for where, lines in audit.items()
    }
    return Scene(fleet, audit, caps, terminated)


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    policies = demo_policies()
    members = dict.fromkeys([*MEMBERS, (OUTSIDER, "us-east-1")], policies)
    with fleet_sandbox(members, admitted=[TEAM_A, TEAM_B]) as fleet:
        yield act(fleet)


def test_every_member_acted(scene: Scene) -> None:
    """The stories the other tests read happened: each admitted member terminated jobs."""
    assert len(scene.terminated[(TEAM_A, "us-east-1")]) == 3
    assert set(scene.terminated[(TEAM_A, "us-east-1")].values()) == {"alarm"}
    assert len(scene.terminated[(TEAM_A, "eu-west-1")]) == 1
    assert set(scene.terminated[(TEAM_B, "eu-west-1")].values()) == {"sweep"}
    assert scene.terminated[(OUTSIDER, "us-east-1")]


def _detail_key(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True)


def test_decision_events_in_the_central_log_match_the_audit_records(scene: Scene) -> None:
    """Each admitted member's every audit line is one event in the central log: its detail is
    the record's keys (every one, null where it does not apply) plus account and region, the
    event's own account and region are the member's, and resources name the job's ARN."""
    events = scene.fleet.central_events()
    assert events, "nothing reached the central log group"
    for event in events:
        assert event["source"] == EVENT_SOURCE
        assert event["detail-type"] == DECISION_DETAIL_TYPE
        assert set(event["detail"]) == {*AUDIT_KEYS, "account", "region"}
        assert (event["account"], event["region"]) == (
            event["detail"]["account"],
            event["detail"]["region"],
        )
        job = event["detail"]["job_id"]
        account, region = event["account"], event["region"]
        expected = [f"arn:aws:batch:{region}:{account}:job/{job}"] if job else []
        assert event["resources"] == expected
    central = sorted(_detail_key(e["detail"]) for e in events if not _is_cap(e["detail"]))
    wanted = sorted(
        _detail_key({**{key: line.get(key) for key in AUDIT_KEYS}, "account": a, "region": r})
        for (a, r), lines in scene.audit.items()
        if a != OUTSIDER
        for line in lines
        if not _is_cap(line)
    )
    assert central == wanted
    # A capped run: one decision, skipped, no job, the policy's name and its run's source.
    central_caps = sorted(
        (e["account"], e["region"], e["detail"]["policy"], e["detail"]["source"])
        for e in events
        if _is_cap(e["detail"])
    )
    wanted_caps = sorted(
        (a, r, policy, "alarm" if r == "us-east-1" else "sweep")
        for (a, r), policies in scene.caps.items()
        if a != OUTSIDER
        for policy in policies
    )
    assert central_caps == wanted_caps
    assert len(wanted_caps) == 2


def _is_cap(detail: dict[str, Any]) -> bool:
    return (
        detail.get("outcome") == "skipped"
        and detail.get("job_id") is None
        and str(detail.get("skip_reason") or "").startswith("policy cap reached")
    )


def test_the_central_bus_refuses_an_account_its_policy_does_not_admit(scene: Scene) -> None:
    """The outsider's decisions were published on its own bus and forwarded by its rule, and
    EventBridge refused every one: none is in the central log."""
    outsider = [f for f in eventbridge.refused if f.account == OUTSIDER]
    assert len(outsider) >= len(scene.audit[(OUTSIDER, "us-east-1")])
    assert all("does not admit" in f.reason for f in outsider)
    assert all(f.target_arn == scene.fleet.bus_arn for f in outsider)
    assert not [e for e in scene.fleet.central_events() if e["account"] == OUTSIDER]


# ---- the resource policy, alone ----------------------------------------------------------------

ACCOUNTS = st.sampled_from([f"{n}" * 12 for n in range(2, 8)])


@settings(max_examples=60, deadline=None)
@given(
    admitted=st.lists(ACCOUNTS, max_size=4, unique=True),
    sender=ACCOUNTS,
    principal_style=st.sampled_from(["root-arn", "account-id", "single"]),
)
def test_a_policy_naming_accounts_admits_exactly_them(
    admitted: list[str], sender: str, principal_style: str
) -> None:
    if principal_style == "root-arn":
        principal: Any = {"AWS": [f"arn:aws:iam::{a}:root" for a in admitted]}
    elif principal_style == "account-id":
        principal = {"AWS": admitted}
    else:
        principal = {"AWS": admitted[0] if admitted else []}
    policy = {
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "events:PutEvents"}]
    }
    named = admitted[:1] if principal_style == "single" else admitted
    assert eventbridge.admits(json.dumps(policy), sender) is (sender in named)


@settings(max_examples=60, deadline=None)
@given(
    members=st.dictionaries(ACCOUNTS, st.sampled_from(["o-aaaaaaaaaa", "o-bbbbbbbbbb"])),
    sender=ACCOUNTS,
    denied=st.booleans(),
)
def test_a_policy_naming_an_organization_admits_its_accounts_unless_denied(
    members: dict[str, str], sender: str, denied: bool
) -> None:
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-aaaaaaaaaa"}},
        }
    ]
    if denied:
        statements.append(
            {"Effect": "Deny", "Principal": {"AWS": sender}, "Action": "events:PutEvents"}
        )
    eventbridge.leave_organizations()
    try:
        for account, organization in members.items():
            eventbridge.join_organization(account, organization)
        admitted = members.get(sender) == "o-aaaaaaaaaa" and not denied
        assert eventbridge.admits(json.dumps({"Statement": statements}), sender) is admitted
    finally:
        eventbridge.leave_organizations()


def test_no_policy_admits_no_other_account() -> None:
    assert eventbridge.admits(None, TEAM_A) is False
    wide_open_but_other_action = {
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "events:PutRule"}]
    }
    assert eventbridge.admits(json.dumps(wide_open_but_other_action), TEAM_A) is False


def test_an_event_received_from_another_account_is_not_sent_on_to_a_third() -> None:
    """EventBridge user guide: events a receiver forwards on to a third account are not sent."""
    install()
    with mock_aws():
        first, second, third = (account_credentials(a) for a in (ONE, TWO, THREE))
        buses = {}
        for keys in (second, third):
            events = keys.session("us-east-1").client("events")
            buses[keys.account] = events.create_event_bus(Name=FLEET_BUS_NAME)["EventBusArn"]
            events.put_permission(
                EventBusName=FLEET_BUS_NAME,
                Policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "all",
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": "events:PutEvents",
                                "Resource": buses[keys.account],
                            }
                        ],
                    }
                ),
            )
            inbox = keys.session("us-east-1").client("sqs").create_queue(QueueName="inbox")
            arn = f"arn:aws:sqs:us-east-1:{keys.account}:inbox"
            events.put_rule(
                Name="keep",
                EventBusName=FLEET_BUS_NAME,
                EventPattern=json.dumps(decision_event_pattern()),
            )
            events.put_targets(
                Rule="keep", EventBusName=FLEET_BUS_NAME, Targets=[{"Id": "q", "Arn": arn}]
            )
            assert inbox["QueueUrl"]
        hop = second.session("us-east-1").client("events")
        hop.put_rule(
            Name="on",
            EventBusName=FLEET_BUS_NAME,
            EventPattern=json.dumps(decision_event_pattern()),
        )
        hop.put_targets(
            Rule="on",
            EventBusName=FLEET_BUS_NAME,
            Targets=[{"Id": "third", "Arn": buses[THREE]}],
        )
        sender = first.session("eu-west-1").client("events")
        sender.put_rule(Name="out", EventPattern=json.dumps(decision_event_pattern()))
        sender.put_targets(Rule="out", Targets=[{"Id": "second", "Arn": buses[TWO]}])
        sender.put_events(
            Entries=[{"Source": EVENT_SOURCE, "DetailType": DECISION_DETAIL_TYPE, "Detail": "{}"}]
        )

        def received(keys: Any) -> list[dict[str, Any]]:
            sqs = keys.session("us-east-1").client("sqs")
            url = sqs.get_queue_url(QueueName="inbox")["QueueUrl"]
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in got]

        [arrived] = received(second)
        assert (arrived["account"], arrived["region"]) == (ONE, "eu-west-1")
        assert received(third) == []


def test_a_log_group_target_is_written_only_as_its_resource_policy_allows() -> None:
    """EventBridge writes to a CloudWatch Logs target under the log group's resource policy:
    without one nothing is written (a failed invocation); with one the whole event is."""
    install()
    with mock_aws():
        keys = account_credentials(ONE)
        session = keys.session("eu-west-1")
        events, logs = session.client("events"), session.client("logs")
        logs.create_log_group(logGroupName="/fleet/decisions")
        arn = f"arn:aws:logs:eu-west-1:{ONE}:log-group:/fleet/decisions:*"
        events.put_rule(Name="keep", EventPattern=json.dumps(decision_event_pattern()))
        events.put_targets(Rule="keep", Targets=[{"Id": "log", "Arn": arn}])
        entry = {"Source": EVENT_SOURCE, "DetailType": DECISION_DETAIL_TYPE, "Detail": "{}"}

        def stored() -> list[dict[str, Any]]:
            found = logs.filter_log_events(logGroupName="/fleet/decisions")["events"]
            return [json.loads(e["message"]) for e in found]

        before = len(eventbridge.refused)
        events.put_events(Entries=[entry])
        assert stored() == []
        assert [f for f in list(eventbridge.refused)[before:] if f.target_arn == arn]
        logs.put_resource_policy(
            policyName="events",
            policyDocument=json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": arn,
                        }
                    ]
                }
            ),
        )
        events.put_events(Entries=[{**entry, "Resources": ["arn:aws:batch:x"]}])
        [event] = stored()
        assert (event["account"], event["region"]) == (ONE, "eu-west-1")
        assert event["resources"] == ["arn:aws:batch:x"]
        assert set(event) == {
            "version", "id", "detail-type", "source", "account", "time", "region", "resources",
            "detail",
        }  # fmt: skip
