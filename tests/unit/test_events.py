"""The consumed events: every real shape parsed, every other input one clear ignore line."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_terminator.contract import JobStatus, Source
from batch_terminator.logic.events import (
    BrakeSignal,
    Ignored,
    JobEvent,
    parse_brake_events,
    parse_job_event,
)

EVENTS = Path(__file__).parents[1] / "events"
ACCOUNT = "123456789012"


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_a_state_change_names_its_job_and_never_its_tags() -> None:
    parsed = parse_job_event(sample("batch-job-state-change-runnable.json"), ACCOUNT)
    assert isinstance(parsed, JobEvent)
    assert parsed.job.job_id == "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
    assert parsed.job.status is JobStatus.RUNNABLE
    assert parsed.source is Source.DEADLINE
    assert parsed.job.job_queue
    assert parsed.job.job_queue.endswith("PexjEHappyPathCanary2JobQueue")
    # detail.tags holds resourceArn: tags are unknown, and the facts are not decision facts.
    assert parsed.job.tags is None
    assert not parsed.job.described


def test_a_blocked_queue_event_keeps_the_blocking_reason() -> None:
    parsed = parse_job_event(sample("batch-job-queue-blocked.json"), ACCOUNT)
    assert isinstance(parsed, JobEvent)
    assert parsed.source is Source.BLOCKED
    assert parsed.job.status_reason
    assert parsed.job.status_reason.startswith("MISCONFIGURATION:")


def test_the_three_alarm_shapes_give_one_transition_key() -> None:
    shapes = [
        sample("cloudwatch-alarm-state-change.eventbridge.json"),
        sample("cloudwatch-alarm.lambda-action.json"),
        {"Records": [{"Sns": sample("cloudwatch-alarm.sns-envelope.json")}]},
    ]
    signals = [parse_brake_events(s, ACCOUNT) for s in shapes]
    keys = set()
    for parsed in signals:
        [signal] = parsed
        assert isinstance(signal, BrakeSignal), signal
        assert (signal.kind, signal.name, signal.state) == (
            "alarm",
            "batch-spend-critical",
            "ALARM",
        )
        keys.add(signal.key)
    assert len(keys) == 1
    assert {s[0].path for s in signals} == {"eventbridge", "alarm-action", "sns"}  # type: ignore[union-attr]


def test_a_budgets_alert_names_its_budget_exactly() -> None:
    for event in (
        sample("budgets-notification.lambda-sns-event.json"),
        sample("budgets-notification.sns-envelope.json"),
    ):
        [signal] = parse_brake_events(event, ACCOUNT)
        assert isinstance(signal, BrakeSignal)
        assert (signal.kind, signal.name, signal.state) == ("budget", "batch-monthly", "ALARM")


def test_an_ok_transition_is_a_signal_that_brakes_nothing() -> None:
    event = sample("cloudwatch-alarm-state-change.eventbridge.json")
    event["detail"]["state"]["value"] = "OK"
    [signal] = parse_brake_events(event, ACCOUNT)
    assert isinstance(signal, BrakeSignal)
    assert signal.state == "OK"


def _mutations() -> list[tuple[str, Any]]:
    alarm = sample("cloudwatch-alarm-state-change.eventbridge.json")
    action = sample("cloudwatch-alarm.lambda-action.json")
    envelope = sample("cloudwatch-alarm.sns-envelope.json")
    budget = sample("budgets-notification.sns-envelope.json")
    cases: list[tuple[str, Any]] = [
        ("a list", [alarm]),
        ("null", None),
        ("empty object", {}),
        ("no records", {"Records": []}),
        ("record without Sns", {"Records": [{"foo": 1}]}),
    ]

    def changed(name: str, base: Any, change: Any) -> None:
        event = copy.deepcopy(base)
        change(event)
        cases.append((name, event))

    changed("foreign account", alarm, lambda e: e.update(account="999999999999"))
    changed("foreign source", alarm, lambda e: e.update(source="my.app"))
    changed("detail is a string", alarm, lambda e: e.update(detail="ALARM"))
    changed("no timestamp", alarm, lambda e: e["detail"]["state"].pop("timestamp"))
    changed("bad timestamp", alarm, lambda e: e["detail"]["state"].update(timestamp="yesterday"))
    changed("name is a number", alarm, lambda e: e["detail"].update(alarmName=7))
    changed("action of another account", action, lambda e: e.update(accountId="999999999999"))
    changed("action without data", action, lambda e: e.update(alarmData=[]))
    changed("sns not json", envelope, lambda e: e.update(Message="{not json"))
    changed("sns json not alarm", envelope, lambda e: e.update(Message='{"Hello": 1}'))
    changed(
        "sns alarm of another account",
        envelope,
        lambda e: e.update(Message=e["Message"].replace(ACCOUNT, "999999999999")),
    )
    changed(
        "prose that only mentions a budget",
        budget,
        lambda e: e.update(Message="Dear team, Budget Name: batch-monthly is fine"),
    )
    changed(
        "a budget alert of another account",
        budget,
        lambda e: e.update(Message=e["Message"].replace(ACCOUNT, "999999999999")),
    )
    changed(
        "two budget names",
        budget,
        lambda e: e.update(Message=e["Message"] + "\nBudget Name: other\n"),
    )
    return cases


@pytest.mark.parametrize(("name", "event"), _mutations(), ids=[n for n, _ in _mutations()])
def test_malformed_and_foreign_brake_events_are_ignored_with_a_reason(name: str, event: Any):
    parsed = parse_brake_events(event, ACCOUNT)
    assert parsed, name
    assert all(isinstance(p, Ignored) and p.why for p in parsed), (name, parsed)


def test_malformed_and_foreign_job_events_are_ignored_with_a_reason() -> None:
    base = sample("batch-job-state-change.json")
    cases = [None, [], {}, "text"]
    for change in (
        lambda e: e.update(account="999999999999"),
        lambda e: e.update(source="aws.ecs"),
        lambda e: e.update(**{"detail-type": "Batch Job Queue Unblocked"}),
        lambda e: e.update(detail=None),
        lambda e: e["detail"].update(jobId="../../etc"),
        lambda e: e["detail"].update(jobId="4c7599ae-0a82-49aa-ba5a-4727fcce14a8:007"),
        lambda e: e["detail"].update(status="EXPLODED"),
        lambda e: e["detail"].pop("status"),
    ):
        event = copy.deepcopy(base)
        change(event)
        cases.append(event)
    for event in cases:
        assert isinstance(parse_job_event(event, ACCOUNT), Ignored), event


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values, st.sampled_from(["detail", "alarmData", "Records", "Message", "state"]))
def test_no_input_makes_the_parsers_raise(value: Any, key: str) -> None:
    for event in (value, {key: value}, {"detail-type": "x", "detail": value}):
        for parsed in [parse_job_event(event, ACCOUNT), *parse_brake_events(event, ACCOUNT)]:
            assert isinstance(parsed, JobEvent | BrakeSignal | Ignored)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "arrayProperties",
                "nodeProperties",
                "attempts",
                "dependsOn",
                "createdAt",
                "startedAt",
                "jobQueue",
                "jobName",
                "nodeDetails",
                "statusReason",
                "jobDefinition",
            ]
        ),
        json_values,
    )
)
def test_a_job_event_with_any_malformed_field_is_read_or_ignored(fields: dict[str, Any]) -> None:
    event = sample("batch-job-state-change-runnable.json")
    event["detail"].update(fields)
    assert isinstance(parse_job_event(event, ACCOUNT), JobEvent | Ignored)


def _keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, inner in value.items():
        found.add(prefix + key)
        found |= _keys(inner, f"{prefix}{key}.")
    return found


def test_the_emulators_alarm_shapes_are_aws_shapes() -> None:
    """The demo and benchmarks send these: they must carry what the samples carry."""
    from datetime import UTC, datetime

    from batch_terminator_cli.emulator import alarms

    at = datetime(2026, 11, 29, 8, 10, tzinfo=UTC)
    pairs = [
        (
            alarms.alarm_event("batch-spend-critical", at),
            "cloudwatch-alarm-state-change.eventbridge.json",
        ),
        (alarms.alarm_action("batch-spend-critical", at), "cloudwatch-alarm.lambda-action.json"),
        (alarms.budgets_alert("batch-monthly", at), "budgets-notification.lambda-sns-event.json"),
    ]
    for made, name in pairs:
        wanted = {k for k in _keys(sample(name)) if ".metrics." not in k and "reasonData" not in k}
        assert wanted - _keys(made) == set(), name
    sns = sample("cloudwatch-alarm.sns-envelope.json")
    made_message = json.loads(
        alarms.sns_alarm("batch-spend-critical", at)["Records"][0]["Sns"]["Message"]
    )
    assert {"AlarmName", "NewStateValue", "StateChangeTime", "AWSAccountId"} <= set(made_message)
    assert set(made_message) <= set(json.loads(sns["Message"]))
    keys = set()
    for event in (
        alarms.alarm_event("batch-spend-critical", at),
        alarms.alarm_action("batch-spend-critical", at),
        alarms.sns_alarm("batch-spend-critical", at),
    ):
        [signal] = parse_brake_events(event, ACCOUNT)
        assert isinstance(signal, BrakeSignal)
        keys.add(signal.key)
    assert keys == {
        s.key
        for s in parse_brake_events(sample("cloudwatch-alarm.lambda-action.json"), ACCOUNT)
        if isinstance(s, BrakeSignal)
    }
