"""Hostile review of the fleet (issue 9), pure parts: the fleet file, the fan-out's option
parsing, the central audit's reading of decision events, the emulator's reading of an event bus's
resource policy, and the fleet tables' escaping of Batch text.

Each test holds a defect the review found, now fixed, or an attack that found nothing and is
kept so that it keeps failing to break it."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from batch_terminator.contract import DECISION_DETAIL_TYPE, EVENT_SOURCE
from batch_terminator.models.request import partition_of
from batch_terminator.models.request import partition_of as functions_partition_of
from batch_terminator_cli import auditing
from batch_terminator_cli.emulator import eventbridge
from batch_terminator_cli.fleet_cli import targets
from batch_terminator_cli.fleet_file import Fleet, FleetFileError, parse_fleet

ASCII_ACCOUNT = re.compile(r"[0-9]{12}", re.ASCII)
ASCII_REGION = re.compile(r"[a-z]{2,5}(?:-[a-z]+)+-[0-9]{1,2}", re.ASCII)


def fleet_text(accounts: list[str], regions: list[str], central: str | None = None) -> str:
    """A fleet file with one member entry per account, each in `regions` (JSON-quoted so that any
    string, newlines too, is written as it is)."""
    lines = ["version: 1"]
    if central is not None:
        lines.append(f'central: {{account: "999999999999", region: {json.dumps(central)}}}')
    lines.append("members:")
    for account in accounts:
        lines.append(f"  - account: {json.dumps(account)}")
        lines.append(f"    regions: {json.dumps(regions)}")
    return "\n".join(lines) + "\n"


def parsed_or_refused(text: str) -> Fleet | None:
    """The fleet, or None when the file is refused with one line."""
    try:
        return parse_fleet(text)
    except FleetFileError as error:
        refusal = str(error)
    assert "\n" not in refusal
    return None


# ---- the fleet file: accounts and regions -----------------------------------------------------


@pytest.mark.parametrize(
    "account",
    [
        pytest.param(
            "111111111111\n",
            id="trailing-newline",
        ),
        pytest.param(
            "\u0661" * 12,
            id="arabic-indic-digits",
        ),
        pytest.param(
            "\uff11" * 12,
            id="fullwidth-digits",
        ),
        pytest.param(" 111111111111", id="leading-space"),
        pytest.param("111111111111 ", id="trailing-space"),
        pytest.param("1111111111111", id="13-digits"),
        pytest.param("11111111111", id="11-digits"),
        pytest.param("", id="empty"),
    ],
)
def test_an_accepted_account_is_twelve_ascii_digits(account: str) -> None:
    """Whatever account the fleet file accepts becomes a CDK environment, a stage id and an IAM
    principal in the central bus's policy: it must be exactly 12 ASCII digits."""
    fleet = parsed_or_refused(fleet_text([account], ["us-east-1"]))
    for member in fleet.members if fleet else ():
        assert ASCII_ACCOUNT.fullmatch(member.account), member.account


@pytest.mark.parametrize(
    "region",
    [
        pytest.param(
            "us-east-1\n",
            id="trailing-newline",
        ),
        pytest.param(
            "us-east-\u0661",
            id="arabic-indic-digit",
        ),
        pytest.param("US-EAST-1", id="upper-case"),
        pytest.param(" us-east-1", id="leading-space"),
        pytest.param("us-east-1 ", id="trailing-space"),
    ],
)
def test_an_accepted_region_is_an_ascii_region_name(region: str) -> None:
    fleet = parsed_or_refused(fleet_text(["111111111111"], [region]))
    for member in fleet.members if fleet else ():
        assert ASCII_REGION.fullmatch(member.region), member.region


def test_a_member_written_twice_is_refused_even_with_a_trailing_newline() -> None:
    # Refused either way: as not 12 digits (the account's own check) or as listed twice.
    with pytest.raises(FleetFileError, match=r"12 digits|listed twice"):
        parse_fleet(fleet_text(["111111111111", "111111111111\n"], ["us-east-1"]))


@pytest.mark.parametrize("member_region", ["cn-north-1", "us-gov-west-1"])
def test_a_member_in_another_partition_than_the_central_account_is_refused(
    member_region: str,
) -> None:
    with pytest.raises(FleetFileError, match=member_region):
        parse_fleet(fleet_text(["111111111111"], ["us-east-1", member_region], central="us-east-1"))


@pytest.mark.parametrize(
    "region",
    [
        "us-east-1",
        "cn-north-1",
        "cn-northwest-1",
        "us-gov-west-1",
        pytest.param(
            "us-iso-east-1",
        ),
        pytest.param(
            "us-isob-east-1",
        ),
        pytest.param(
            "eu-isoe-west-1",
        ),
    ],
)
def test_the_fleet_file_and_the_functions_agree_on_a_regions_partition(region: str) -> None:
    """The central bus ARN the members forward to is built from fleet_file.partition_of; the
    functions build their ARNs from models.request.partition_of. One region, one partition."""
    fleet = parse_fleet(fleet_text(["111111111111"], [region], central=region))
    assert partition_of(region) == functions_partition_of(region)
    arn = fleet.central_bus_arn()
    assert arn is not None
    assert arn.startswith(f"arn:{functions_partition_of(region)}:events:{region}:")


def test_a_region_the_functions_know_can_be_a_member() -> None:
    fleet = parse_fleet(fleet_text(["111111111111"], ["eusc-de-east-1"]))
    assert fleet.members[0].region == "eusc-de-east-1"


# ---- the fan-out's options --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profiles", "regions"),
    [([" , "], None), ([""], None), (None, [","]), (None, [" "])],
)
def test_an_empty_profiles_or_regions_list_is_a_usage_error(
    profiles: list[str] | None, regions: list[str] | None
) -> None:
    with pytest.raises(typer.BadParameter):
        targets(profiles, regions, None, profile=None, region=None)


@given(
    names=st.lists(st.sampled_from(["a", "b", " a", "b ", "a"]), min_size=1, max_size=5),
    places=st.lists(st.sampled_from(["us-east-1", " us-east-1", "eu-west-1 "]), min_size=1),
)
def test_each_profile_and_region_is_asked_once(names: list[str], places: list[str]) -> None:
    """Repeated or padded names are one member each (nothing found here)."""
    asked = targets(names, places, None, profile=None, region=None)
    assert asked is not None
    pairs = [(t.profile, t.region) for t in asked]
    assert len(pairs) == len(set(pairs))
    assert {p for p, _ in pairs} == {n.strip() for n in names}


# ---- the central audit: decision events as audit lines ----------------------------------------


def decision_event(
    event_id: str, account: str, region: str, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": DECISION_DETAIL_TYPE,
        "source": EVENT_SOURCE,
        "account": account,
        "time": "2026-11-29T10:00:00Z",
        "region": region,
        "resources": [],
        "detail": detail,
    }


def detail_of(job_id: str, **extra: Any) -> dict[str, Any]:
    fields = dict.fromkeys(auditing.AUDIT_KEYS)
    fields.update(
        outcome="terminated",
        job_id=job_id,
        job_name="train",
        job_queue="arn:aws:batch:us-east-1:222222222222:job-queue/gpu",
        policy="gpu-runtime-cap",
        source="sweep",
        reason="ran too long",
        dry_run=False,
        account="222222222222",
        region="us-east-1",
    )
    fields.update(extra)
    return fields


class FilterOnlyLogs:
    """A CloudWatch Logs client with FilterLogEvents only: `messages` are the log events."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages

    def get_paginator(self, name: str) -> FilterOnlyLogs:
        assert name == "filter_log_events"
        return self

    def paginate(self, **_kwargs: Any) -> list[dict[str, Any]]:
        stamp = int(datetime(2026, 11, 29, 10, tzinfo=UTC).timestamp() * 1000)
        return [{"events": [{"message": m, "timestamp": stamp} for m in self.messages]}]


CENTRAL = auditing.AuditQuery(timedelta(hours=24), limit=500, central=True)
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def test_one_event_stored_twice_is_one_decision_in_the_central_audit() -> None:
    event = json.dumps(decision_event("e-1", "222222222222", "us-east-1", detail_of("job-1")))
    result = auditing.read_audit(FilterOnlyLogs([event, event]), "g", CENTRAL, NOW, insights=False)
    assert [line["job_id"] for line in result.lines] == ["job-1"]


def test_the_envelope_names_the_member_not_the_detail() -> None:
    """A member can put any detail on the central bus, but EventBridge sets the envelope's
    account: a detail claiming another account is not believed (nothing found here)."""
    forged = detail_of("job-1", account="333333333333", region="ap-south-1")
    event = json.dumps(decision_event("e-1", "222222222222", "eu-west-1", forged))
    result = auditing.read_audit(FilterOnlyLogs([event]), "g", CENTRAL, NOW, insights=False)
    (row,) = [auditing.fleet_audit_fields(line) for line in result.lines]
    assert (row["account"], row["region"]) == ("222222222222", "eu-west-1")


@given(
    junk=st.lists(
        st.one_of(
            st.text(max_size=50),
            st.just("[1, 2]"),
            st.just("null"),
            st.just('{"source": "batch-terminator"}'),
            st.just(
                json.dumps(
                    {"source": EVENT_SOURCE, "detail-type": DECISION_DETAIL_TYPE, "detail": None}
                )
            ),
            st.just(
                json.dumps(
                    {
                        "source": EVENT_SOURCE,
                        "detail-type": DECISION_DETAIL_TYPE,
                        "detail": {"outcome": ["x"], "job_id": {"a": 1}},
                        "time": 5,
                    }
                )
            ),
            st.just(json.dumps({"source": "other", "detail-type": "x", "detail": {}})),
        ),
        max_size=6,
    )
)
def test_malformed_lines_in_the_central_log_never_crash_the_audit(junk: list[str]) -> None:
    """Whatever else the fleet log group holds, the one real decision is read and the table,
    text and json renderings print (nothing found here)."""
    real = json.dumps(decision_event("e-1", "222222222222", "us-east-1", detail_of("job-1")))
    result = auditing.read_audit(FilterOnlyLogs([*junk, real]), "g", CENTRAL, NOW, insights=False)
    rows = [auditing.fleet_audit_fields(line) for line in result.lines]
    assert "job-1" in [row["job_id"] for row in rows]
    console = Console(record=True, width=80, file=io.StringIO())
    auditing.render_fleet_audit(console, rows, "audit")
    auditing.render_fleet_text(rows)
    json.dumps(rows)


MARKUP = "[bold red]FORGED[/][link=https://example.com]x[/link]\\[escaped]"


def test_batch_text_with_markup_is_printed_literally_in_the_fleet_table() -> None:
    """Job names, reasons and queues are Batch/user text: rich markup in them is shown as
    written, never interpreted (nothing found here)."""
    detail = detail_of("job-[red]1[/red]", job_name=MARKUP, reason=MARKUP, job_queue=f"q/{MARKUP}")
    line = auditing.decision_line(decision_event("e", "222222222222", "us-east-1", detail))
    rows = [auditing.fleet_audit_fields(line)]
    console = Console(record=True, width=400, file=io.StringIO())
    auditing.render_fleet_audit(console, rows, "audit")
    text = console.export_text()
    assert "[bold red]FORGED[/]" in text
    assert "job-[red]1[/red]" in text


# ---- the emulator's reading of a bus's resource policy ----------------------------------------

MEMBER = "222222222222"


def bus_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ALLOW_MEMBER = {
    "Sid": "Members",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"},
    "Action": "events:PutEvents",
    "Resource": "arn:aws:events:us-east-1:111111111111:event-bus/batch-terminator-fleet",
}


@pytest.mark.parametrize(
    "deny",
    [
        pytest.param(
            {"Effect": "Deny", "Principal": "*", "Action": "events:PutEvents"},
            id="plain-deny",
        ),
        pytest.param(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-aaaaaaaaaa"}},
            },
            id="deny-outside-the-organization",
        ),
        pytest.param(
            {"Effect": "Deny", "Principal": "*", "Action": "events:Put*"},
            id="deny-wildcard-action",
        ),
        pytest.param(
            {"Effect": "Deny", "Principal": "*", "Action": "events:putevents"},
            id="deny-lower-case-action",
        ),
        pytest.param(
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": "arn:aws:iam::444444444444:root"},
                "Action": "events:PutEvents",
            },
            id="deny-not-principal",
        ),
    ],
)
def test_an_explicit_deny_wins_over_the_members_allow(deny: dict[str, Any]) -> None:
    """IAM policy evaluation: an explicit Deny that applies overrides any Allow. The member is
    in no organization here, so every Deny above applies to it."""
    eventbridge.leave_organizations()
    assert eventbridge.admits(bus_policy(ALLOW_MEMBER), MEMBER)
    assert not eventbridge.admits(bus_policy(ALLOW_MEMBER, deny), MEMBER)


# ---- the emulator's reading of a log group's resource policy ----------------------------------


class _Rule:
    """What `_log_group_refuses` reads of a rule: its account, region and ARN."""

    account_id = "123456789012"  # moto's default account
    region_name = "us-east-1"
    arn = "arn:aws:events:us-east-1:123456789012:rule/batch-terminator-fleet/decisions"


GROUP = "/batch-terminator/fleet/decisions"
GROUP_ARN = f"arn:aws:logs:us-east-1:123456789012:log-group:{GROUP}"
LET_EVENTS_WRITE = {
    "Sid": "EventBridgeWritesDecisions",
    "Effect": "Allow",
    "Principal": {"Service": ["events.amazonaws.com"]},
    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": f"{GROUP_ARN}:*",
}


@pytest.mark.parametrize(
    "statements",
    [
        pytest.param([], id="no-policy"),
        pytest.param(
            [
                LET_EVENTS_WRITE,
                {
                    "Effect": "Deny",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "logs:PutLogEvents",
                    "Resource": "*",
                },
            ],
            id="allow-and-deny",
        ),
        pytest.param(
            [
                {
                    **LET_EVENTS_WRITE,
                    "Condition": {
                        "ArnEquals": {
                            "aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/other"
                        }
                    },
                }
            ],
            id="allow-for-another-rule",
        ),
    ],
)
def test_the_emulator_writes_a_log_group_target_only_as_its_resource_policy_allows(
    statements: list[dict[str, Any]],
) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName=GROUP)
        if statements:
            logs.put_resource_policy(
                policyName="fleet",
                policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
        assert eventbridge._log_group_refuses(_Rule(), GROUP_ARN) is not None


def test_the_emulator_writes_a_log_group_target_its_policy_lets_events_write() -> None:
    """The control for the test above: the central stack's own policy lets the rule write."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName=GROUP)
        logs.put_resource_policy(
            policyName="fleet",
            policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [LET_EVENTS_WRITE]}),
        )
        assert eventbridge._log_group_refuses(_Rule(), GROUP_ARN) is None


# ---- fixes: what the attacks above found, held on every path that shares the mechanism -------


@given(
    given_names=st.lists(st.sampled_from(["", " ", ",", " , ", ",,"]), min_size=1, max_size=3),
    option=st.sampled_from(["--profiles", "--regions"]),
    other=st.sampled_from([None, "team-a", "us-east-1"]),
)
def test_a_given_option_that_names_nothing_is_refused_naming_it(
    given_names: list[str], option: str, other: str | None
) -> None:
    """Whatever blanks and commas the option holds, and whatever the other option says, the
    refusal names the empty option (exit 2, one line)."""
    profiles = given_names if option == "--profiles" else ([other] if other else None)
    regions = given_names if option == "--regions" else ([other] if other else None)
    with pytest.raises(typer.BadParameter) as raised:
        targets(profiles, regions, None, profile=None, region=None)
    assert raised.value.param_hint == option
    assert "\n" not in raised.value.format_message()


@pytest.mark.parametrize("where", ["session", "work"])
def test_a_usage_error_for_one_member_is_its_one_line_error_row(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A region the CLI refuses (BadParameter from the session, or from the member's work) is
    that member's error row, naming the option, never an internal error; the other member
    answers."""
    from types import SimpleNamespace

    from batch_terminator_cli import fleet_cli

    refusal = typer.BadParameter("'eu-west-1\\n' is not a region name", param_hint="--region")

    def session(_endpoint: object, region: str | None, profile: str | None) -> object:
        if where == "session" and profile == "bad":
            raise refusal
        sts = SimpleNamespace(get_caller_identity=lambda: {"Account": f"{profile}-account"})
        return SimpleNamespace(
            session=SimpleNamespace(region_name=region), client=lambda _name: sts
        )

    def work(_aws: object, target: fleet_cli.Target) -> list[dict[str, Any]]:
        if target.profile == "bad":
            raise refusal
        return [{"ok": True}]

    monkeypatch.setattr(fleet_cli, "aws_session", session)
    console = Console(file=io.StringIO())
    asked = [fleet_cli.Target("good", "us-east-1"), fleet_cli.Target("bad", "eu-west-1")]
    good, bad = fleet_cli.ask(asked, None, work, console)
    assert good.rows == [{"ok": True}]
    assert bad.error is not None
    assert "--region" in bad.error
    assert "not a region name" in bad.error
    assert "internal error" not in bad.error
    assert "\n" not in bad.error


def test_a_member_two_profiles_reach_is_asked_once_through_the_first_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first profile named for an (account, region) is asked, whichever answers STS
    first; the others are not asked and the note names both."""
    import threading
    from types import SimpleNamespace

    from batch_terminator_cli import fleet_cli

    first_may_answer = threading.Event()

    def session(_endpoint: object, region: str | None, profile: str | None) -> object:
        def identity() -> dict[str, str]:
            if profile == "dev":  # the first named answers STS last
                first_may_answer.wait(timeout=5)
            else:
                first_may_answer.set()
            return {"Account": "111111111111"}

        sts = SimpleNamespace(get_caller_identity=identity)
        return SimpleNamespace(
            session=SimpleNamespace(region_name=region), client=lambda _name: sts
        )

    worked: list[str | None] = []

    def work(_aws: object, target: fleet_cli.Target) -> list[dict[str, Any]]:
        worked.append(target.profile)
        return [{"profile": target.profile}]

    monkeypatch.setattr(fleet_cli, "aws_session", session)
    console = Console(file=io.StringIO(), width=400)
    asked = [
        fleet_cli.Target(profile, region)
        for profile in ("dev", "dev-admin")
        for region in ("us-east-1", "eu-west-1")
    ]
    answers = fleet_cli.ask(asked, None, work, console)
    assert [(a.target.profile, a.region) for a in answers] == [
        ("dev", "us-east-1"),
        ("dev", "eu-west-1"),
    ]
    assert sorted(worked, key=str) == ["dev", "dev"]
    said = " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]
    for region in ("us-east-1", "eu-west-1"):
        assert (
            f"profile dev-admin reaches account 111111111111 in {region}, already asked "
            "through profile dev" in said
        )


def test_the_central_insights_query_keeps_each_event_once() -> None:
    """The Logs Insights reading drops repeats in the service (`dedup id`, before `limit`, so
    that a repeat does not take a decision's place) and again here."""
    query = auditing.AuditQuery(timedelta(hours=1), limit=2, central=True).insights_query()
    assert query.index("| dedup id") < query.index("| limit 2")
    assert query.rstrip().endswith("| limit 2")
    member = auditing.AuditQuery(timedelta(hours=1), limit=2).insights_query()
    assert "dedup" not in member


class InsightsLogs:
    """A CloudWatch Logs client whose Logs Insights query returns `messages` as they are."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages

    def start_query(self, **_kwargs: Any) -> dict[str, str]:
        return {"queryId": "q"}

    def get_query_results(self, **_kwargs: Any) -> dict[str, Any]:
        return {
            "status": "Complete",
            "statistics": {"recordsScanned": len(self.messages)},
            "results": [
                [
                    {"field": "@timestamp", "value": "2026-11-29 10:00:00.000"},
                    {"field": "@message", "value": message},
                ]
                for message in self.messages
            ],
        }


@given(
    events=st.lists(
        st.tuples(st.sampled_from(["e-1", "e-2", "e-3", None]), st.sampled_from(["j-1", "j-2"])),
        min_size=1,
        max_size=8,
    ),
    insights=st.booleans(),
)
def test_each_event_id_is_one_central_line_on_both_readings(
    events: list[tuple[str | None, str]], insights: bool
) -> None:
    """One line per event id (the first stored, with its id as `event_id`), on the Insights and
    the FilterLogEvents readings alike; events without an id are all kept."""
    messages = []
    for event_id, job in events:
        event = decision_event(event_id or "", "222222222222", "us-east-1", detail_of(job))
        if event_id is None:
            del event["id"]
        messages.append(json.dumps(event))
    logs: Any = InsightsLogs(messages) if insights else FilterOnlyLogs(messages)
    result = auditing.read_audit(logs, "g", CENTRAL, NOW, insights=insights, sleep=lambda _s: None)
    assert result.via == ("insights" if insights else "filter")
    ids = [line["event_id"] for line in result.lines]
    with_ids = [event_id for event_id in ids if event_id is not None]
    assert len(with_ids) == len(set(with_ids))
    assert set(with_ids) == {event_id for event_id, _ in events if event_id is not None}
    assert ids.count(None) == sum(1 for event_id, _ in events if event_id is None)
    rows = [auditing.fleet_audit_fields(line) for line in result.lines]
    assert all("event_id" in row for row in rows)


def test_the_member_audit_keeps_every_line() -> None:
    """The member-side audit (terminator log lines, which carry no event id) is not
    deduplicated: two identical lines are two lines."""
    from batch_terminator.models.audit import AUDIT_MESSAGE

    line = json.dumps({"message": AUDIT_MESSAGE, "id": "e-1", **detail_of("job-1")})
    query = auditing.AuditQuery(timedelta(hours=24), limit=500)
    result = auditing.read_audit(FilterOnlyLogs([line, line]), "g", query, NOW, insights=False)
    assert [found["job_id"] for found in result.lines] == ["job-1", "job-1"]


@pytest.mark.parametrize(
    ("statement", "admitted"),
    [
        pytest.param(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            },
            False,
            id="deny-unknown-operator-applies",
        ),
        pytest.param(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Condition": {"StringEquals": {"aws:SourceIp": "10.0.0.1"}},
            },
            False,
            id="deny-unknown-key-applies",
        ),
        pytest.param(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Condition": {
                    "StringEquals": {"aws:PrincipalAccount": "444444444444"},
                    "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                },
            },
            True,
            id="deny-a-known-false-test-does-not-apply",
        ),
        pytest.param(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-aaaaaaaaaa"}},
            },
            True,
            id="deny-positive-absent-key-does-not-apply",
        ),
        pytest.param(
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": f"arn:aws:iam::{MEMBER}:root"},
                "Action": "events:PutEvents",
            },
            True,
            id="deny-not-principal-spares-the-member",
        ),
        pytest.param(
            {"Effect": "Deny", "Principal": "*", "NotAction": "events:PutEvents"},
            True,
            id="deny-not-action-spares-put-events",
        ),
        pytest.param(
            {"Effect": "Deny", "Principal": "*", "Action": "events:Put?vents"},
            False,
            id="deny-single-character-wildcard",
        ),
        pytest.param(
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "EVENTS:*"},
            False,
            id="deny-upper-case-service-wildcard",
        ),
    ],
)
def test_the_bus_policy_is_evaluated_as_iam_does(
    statement: dict[str, Any], admitted: bool
) -> None:  # fmt: skip
    eventbridge.leave_organizations()
    assert eventbridge.admits(bus_policy(ALLOW_MEMBER, statement), MEMBER) is admitted


@pytest.mark.parametrize(
    ("allow", "admitted"),
    [
        pytest.param(
            {**ALLOW_MEMBER, "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020"}}},
            False,
            id="allow-unknown-operator-grants-nothing",
        ),
        pytest.param(
            {**ALLOW_MEMBER, "Action": "events:put*"},
            True,
            id="allow-wildcard-any-case",
        ),
        pytest.param(
            {**ALLOW_MEMBER, "Resource": "arn:aws:events:us-east-1:111111111111:event-bus/other"},
            False,
            id="allow-for-another-bus",
        ),
        pytest.param(
            {**ALLOW_MEMBER, "Condition": {"StringNotEquals": {"aws:PrincipalAccount": MEMBER}}},
            False,
            id="allow-negated-test-that-fails",
        ),
    ],
)
def test_an_allow_grants_only_what_it_says(allow: dict[str, Any], admitted: bool) -> None:
    eventbridge.leave_organizations()
    bus = "arn:aws:events:us-east-1:111111111111:event-bus/batch-terminator-fleet"
    assert eventbridge.admits(bus_policy(allow), MEMBER, bus) is admitted


@pytest.mark.parametrize(
    ("condition", "writes"),
    [
        pytest.param({"ArnEquals": {"aws:SourceArn": _Rule.arn}}, True, id="arn-equals-this-rule"),
        pytest.param(
            {"ArnLike": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/*"}},
            True,
            id="arn-like-every-rule",
        ),
        pytest.param(
            {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/batch-*/decisions"}},
            True,
            id="arn-like-wildcard-region",
        ),
        pytest.param({"StringEquals": {"aws:SourceArn": _Rule.arn}}, True, id="string-equals"),
        pytest.param(
            {"StringEquals": {"aws:SourceAccount": "999999999999"}}, False, id="another-account"
        ),
        pytest.param(
            {"ArnLike": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/x/*"}},
            False,
            id="arn-like-another-bus",
        ),
    ],
)
def test_the_log_group_policy_reads_the_rules_source_arn(
    condition: dict[str, Any], writes: bool
) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName=GROUP)
        logs.put_resource_policy(
            policyName="fleet",
            policyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{**LET_EVENTS_WRITE, "Condition": condition}],
                }
            ),
        )
        assert (eventbridge._log_group_refuses(_Rule(), GROUP_ARN) is None) is writes


def test_the_log_group_needs_both_calls_allowed() -> None:
    """EventBridge creates the stream and puts the event: a policy allowing PutLogEvents only,
    or denying CreateLogStream, stops the write."""
    import boto3
    from moto import mock_aws

    for statements in (
        [{**LET_EVENTS_WRITE, "Action": "logs:PutLogEvents"}],
        [
            LET_EVENTS_WRITE,
            {"Effect": "Deny", "Principal": "*", "Action": "logs:createlogstream", "Resource": "*"},
        ],
    ):
        with mock_aws():
            logs = boto3.client("logs", region_name="us-east-1")
            logs.create_log_group(logGroupName=GROUP)
            logs.put_resource_policy(
                policyName="fleet",
                policyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
            assert eventbridge._log_group_refuses(_Rule(), GROUP_ARN) is not None
