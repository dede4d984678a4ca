"""Hostile inputs to the pure event parsers that the catalogue (tests/integration/
test_hostile_inputs.py) drives through the handlers: values that break quoting, and text that
made a regular expression backtrack for minutes."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_terminator.logic.events import (
    BrakeSignal,
    Ignored,
    JobEvent,
    parse_brake_events,
    parse_job_event,
)

ACCOUNT = "123456789012"
SNS_TIMESTAMP = "2026-11-29T08:10:00.000Z"


class Hung(Exception):
    """The guarded code did not return: it loops or backtracks without end."""


@contextmanager
def returns_within(seconds: int) -> Iterator[None]:
    """A hang guard, not a measurement: the code under it answers in milliseconds when it is
    linear; without the guard a regression would hang the run instead of failing it."""

    def hung(*_: object) -> None:
        raise Hung(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def budgets_alert(message: str) -> dict[str, Any]:
    return {"Type": "Notification", "Message": message, "Timestamp": SNS_TIMESTAMP}


@pytest.mark.parametrize(
    "event",
    [
        nested(5_000),
        {"detail-type": "x", "source": nested(5_000)},
        {
            "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "account": 10**5000,
        },
        {"source": "aws.batch", "detail-type": "Batch Job State Change", "account": 10**5000},
        {"alarmData": {}, "source": 10**5000},
    ],
    ids=["deep-list", "deep-source", "huge-int-account", "huge-int-batch-account", "huge-source"],
)
def test_values_that_cannot_be_quoted_are_still_one_ignore_line(event: Any) -> None:
    for parsed in [parse_job_event(event, ACCOUNT), *parse_brake_events(event, ACCOUNT)]:
        assert isinstance(parsed, Ignored)
        assert 0 < len(parsed.why) < 300


def test_a_budget_line_padded_with_spaces_is_read_in_linear_time() -> None:
    padding = " " * 250_000
    with returns_within(20):
        [signal_] = parse_brake_events(
            budgets_alert(f"AWS Budget Notification\nBudget Name: x{padding}y\n"), None
        )
    assert isinstance(signal_, BrakeSignal)
    assert signal_.name == f"x{padding}y"


def test_a_budget_name_is_stripped_and_an_empty_one_is_ignored() -> None:
    [named] = parse_brake_events(
        budgets_alert("AWS Budget Notification\nBudget Name:   batch-monthly \r\n"), None
    )
    assert isinstance(named, BrakeSignal)
    assert named.name == "batch-monthly"
    [empty] = parse_brake_events(budgets_alert("AWS Budget Notification\nBudget Name:    \n"), None)
    assert isinstance(empty, Ignored)
    assert "does not name exactly one budget" in empty.why


def test_prose_that_is_no_budgets_alert_is_not_searched_for_a_name() -> None:
    [parsed] = parse_brake_events(budgets_alert("Budget Name: batch-monthly\n"), None)
    assert isinstance(parsed, Ignored)
    assert "neither an alarm nor an AWS Budgets alert" in parsed.why


def test_a_job_event_of_another_region_is_ignored_when_the_region_is_given() -> None:
    event = {
        "source": "aws.batch",
        "detail-type": "Batch Job State Change",
        "account": ACCOUNT,
        "region": "eu-west-1",
        "detail": {"jobId": "4c7599ae-0a82-49aa-ba5a-4727fcce14a8", "status": "RUNNING"},
    }
    parsed = parse_job_event(event, ACCOUNT, "us-east-1")
    assert isinstance(parsed, Ignored)
    assert parsed.why == "event of another region: 'eu-west-1'"
    assert isinstance(parse_job_event(event, ACCOUNT, "eu-west-1"), JobEvent)
    assert isinstance(parse_job_event(event, ACCOUNT), JobEvent)  # region unknown: not checked


lines = st.text(st.sampled_from(" \t\r\nabBudget Name:AWS 0123456789"), max_size=400)


@settings(max_examples=200)
@given(lines, lines)
def test_any_budgets_text_is_a_signal_or_one_reason(before: str, after: str) -> None:
    message = f"AWS Budget Notification\n{before}\nBudget Name: {after}"
    with returns_within(20):
        parsed = parse_brake_events(budgets_alert(message), None)
    assert len(parsed) == 1
    assert isinstance(parsed[0], BrakeSignal | Ignored)
    if isinstance(parsed[0], BrakeSignal):
        assert parsed[0].name == parsed[0].name.strip()
        assert parsed[0].name


@pytest.mark.parametrize("name", ["spend\nALARM", "spend\x00", "\x1b[31mspend", "spend\x7f", ""])
def test_an_alarm_name_cloudwatch_cannot_have_is_ignored_on_every_path(name: str) -> None:
    from datetime import UTC, datetime

    from batch_terminator_cli.emulator import alarms

    at = datetime(2026, 11, 29, 8, 10, tzinfo=UTC)
    for event in (
        alarms.alarm_event(name, at),
        alarms.alarm_action(name, at),
        alarms.sns_alarm(name, at),
    ):
        [parsed] = parse_brake_events(event, ACCOUNT)
        assert isinstance(parsed, Ignored), event
        assert parsed.why.startswith("the alarm has no valid name")


ALARM_NAME = "batch-spend-critical"
ALARM_ARN = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{ALARM_NAME}"


def alarm_shapes(region: str) -> list[Any]:
    """One transition of the alarm in `region`, as each of the three paths delivers it."""
    arn = ALARM_ARN.replace("us-east-1", region)
    state = {"value": "ALARM", "timestamp": "2026-11-29T08:10:00.000+0000"}
    return [
        {
            "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "account": ACCOUNT,
            "region": region,
            "detail": {"alarmName": ALARM_NAME, "state": state},
        },
        {
            "source": "aws.cloudwatch",
            "alarmArn": arn,
            "accountId": ACCOUNT,
            "region": region,
            "alarmData": {"alarmName": ALARM_NAME, "state": state},
        },
        {
            "Records": [
                {
                    "Sns": {
                        "Message": json.dumps(
                            {
                                "AlarmName": ALARM_NAME,
                                "AlarmArn": arn,
                                "AWSAccountId": ACCOUNT,
                                "NewStateValue": "ALARM",
                                "StateChangeTime": "2026-11-29T08:10:00.000+0000",
                            }
                        ),
                        "Timestamp": SNS_TIMESTAMP,
                    }
                }
            ]
        },
    ]


regions = st.sampled_from(
    ["us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1"]
) | st.from_regex(r"[a-z]{2}-[a-z]{4,9}-[0-9]", fullmatch=True)


@given(regions, regions)
def test_an_alarm_of_another_region_is_ignored_on_every_path(mine: str, theirs: str) -> None:
    for shape in alarm_shapes(theirs):
        [parsed] = parse_brake_events(shape, ACCOUNT, mine)
        if theirs == mine:
            assert isinstance(parsed, BrakeSignal), parsed
        else:
            assert isinstance(parsed, Ignored)
            assert f"of another region: {theirs!r}" in parsed.why
        [unchecked] = parse_brake_events(shape, ACCOUNT)  # region unknown: not checked
        assert isinstance(unchecked, BrakeSignal)
