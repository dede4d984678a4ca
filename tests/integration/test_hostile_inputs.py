"""The hostile input catalogue: malformed and foreign inputs at every entry point, each with the
one line it must produce, driven through the real handlers on the emulator and through the CLI.

Each entry is (id, entry point, input, expected): `expected` is a pattern the entry's error or
ignore line must match. What "nothing lost" means depends on the entry point:

- request queue (terminator): the body is parked in the DLQ unchanged with its `error`
  attribute, its audit line says `rejected` with the same error, and a valid request sent in the
  same batch still terminates its job; no message is reported as failed (no redelivery).
- events queue (deadline function): one `deadline event` line with `outcome: ignored` and why;
  no batch item failure; a real Batch event in the same batch still gets its job terminated.
- brake function (EventBridge event, alarm action, SNS): the handler returns (no crash, so no
  retry storm), one `brake event ignored` line with why, nothing terminated; an SNS record is
  delivered with a real alarm record after it, which still brakes.
- policies file (`validate`, the synth loader `load_policies`): exit 1, every output line names
  the file, the loader raises PoliciesFileError only; policies.json (the functions' loader,
  `load_config`) fails closed with InvalidPolicies.
- CLI arguments and environment: exit 1 or 2, one line matches, never a traceback.

Kinds already covered elsewhere are listed in ELSEWHERE, not repeated. Entries that expose a bug
outside the files this catalogue owns are strict xfails naming the bug: they start failing, and
must be unmarked, the day the bug is fixed.
"""

from __future__ import annotations

import copy
import json
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from batch_terminator.config import InvalidPolicies, load_config
from batch_terminator.contract import MAX_REQUEST_BODY_BYTES, REQUEST_MAX_MESSAGE_BYTES
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import alarms
from batch_terminator_cli.main import app
from batch_terminator_cli.policies_file import PoliciesFileError, load_policies
from batch_terminator_cli.sandbox import Sandbox, sandbox

EVENTS = Path(__file__).parents[1] / "events"
ACCOUNT = "123456789012"
REGION = "us-east-1"
JOB = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
ARN = f"arn:aws:batch:{REGION}:{ACCOUNT}"
ALARM = "batch-spend-critical"
MAX_RUNTIME = "batch-terminator:max-runtime"
runner = CliRunner()

POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"], "maxRuntimeTag": True},
    "policies": [
        {
            "name": "quick-cap",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "2m"},
        },
        {
            "name": "spend-brake",
            "trigger": {"alarms": [ALARM], "budgets": ["batch-monthly"]},
            "match": {"jobQueues": ["spot-cpu"]},
            "when": {"status": "RUNNING"},
            "order": "newest-first",
            "maxPerRun": 3,
        },
    ],
}


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def changed(base: Any, change: Callable[[Any], object]) -> Any:
    event = copy.deepcopy(base)
    change(event)
    return event


def nested_object(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@dataclass(frozen=True)
class Hostile:
    """One catalogue entry: `expected` is a regular expression the error or ignore line matches.
    `bug` names a defect outside this catalogue's files: the entry is a strict xfail until fixed.
    """

    id: str
    entry: str
    input: Any
    expected: str
    bug: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def param(self) -> Any:
        marks = [pytest.mark.xfail(strict=True, reason=self.bug)] if self.bug else []
        return pytest.param(self, id=self.id, marks=marks)


# ---- request queue: SQS bodies to the terminator -------------------------------------------------


def body(**fields: Any) -> str:
    return json.dumps(fields)


def padded_to(size: int, letter: str = "x") -> str:
    """A request whose reason is too long, padded with spaces to exactly `size` UTF-8 bytes."""
    reason = letter * ((size - 200) // len(letter.encode()))
    text = json.dumps({"jobId": JOB, "reason": reason}, ensure_ascii=False)
    return text + " " * (size - len(text.encode()))


def envelope(**changes: Any) -> str:
    event: dict[str, Any] = {
        "version": "0",
        "id": "1",
        "detail-type": "Batch Job Termination Request",
        "source": "batch-terminator",
        "account": ACCOUNT,
        "time": "2026-11-29T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {"jobId": JOB, "reason": "r"},
    }
    event.update(changes)
    return json.dumps({k: v for k, v in event.items() if v is not ...})


NOT_A_JOB_ID = r"is not a Batch job id"
REQUESTS = [
    Hostile("sqs-truncated-json", "request", '{"jobId": "' + JOB, r"body is not JSON"),
    Hostile("sqs-json-array", "request", "[1, 2]", r"must be a JSON object, got list"),
    Hostile("sqs-json-string", "request", '"terminate everything"', r"got str"),
    Hostile("sqs-json-null", "request", "null", r"got NoneType"),
    Hostile("sqs-empty-object", "request", "{}", r"reason: Field required"),
    Hostile("sqs-nulls", "request", body(jobId=None, reason=None), r"'reason' is null"),
    Hostile("sqs-job-id-number", "request", body(jobId=7, reason="r"), r"jobId: Input should be"),
    Hostile("sqs-job-ids-string", "request", body(jobIds=JOB, reason="r"), r"jobIds: .*valid list"),
    Hostile("sqs-reason-object", "request", body(jobId=JOB, reason={"t": "r"}), r"reason: .*str"),
    Hostile(
        "sqs-limit-as-string",
        "request",
        body(selector={"jobQueues": ["spot-cpu"]}, reason="r", limit="5"),
        r"limit: Input should be a valid integer",
    ),
    Hostile(
        "sqs-limit-as-float",
        "request",
        body(selector={"jobQueues": ["spot-cpu"]}, reason="r", limit=5.5),
        r"limit: Input should be a valid integer",
    ),
    Hostile(
        "sqs-limit-overflows-to-infinity",
        "request",
        '{"selector": {"jobQueues": ["spot-cpu"]}, "reason": "r", "limit": 1e999}',
        r"limit: Input should be a valid integer",
    ),
    Hostile(
        "sqs-5000-digit-number",
        "request",
        '{"jobId": "' + JOB + '", "reason": "r", "limit": ' + "9" * 5000 + "}",
        r"could not be read: ValueError: Exceeds the limit \(4300 digits\)",
    ),
    Hostile(
        "sqs-infinity", "request", '{"jobId": "x", "reason": Infinity}', r"Infinity is not JSON"
    ),
    Hostile("sqs-minus-infinity", "request", '{"jobId": -Infinity}', r"-Infinity is not JSON"),
    Hostile("sqs-huge-250k", "request", padded_to(250_000), r"at most 1024 characters"),
    # The largest body the terminator reads (MAX_REQUEST_BODY_BYTES): parsed, then rejected.
    Hostile(
        "sqs-huge-256KiB",
        "request",
        padded_to(MAX_REQUEST_BODY_BYTES),
        r"at most 1024 characters",
    ),
    Hostile(
        "sqs-huge-256KiB-of-two-byte-characters",
        "request",
        padded_to(MAX_REQUEST_BODY_BYTES, "\u00e9"),
        r"at most 1024 characters",
    ),
    # One byte more is rejected unread, with its size; two-byte characters count twice.
    Hostile(
        "sqs-huge-256KiB-plus-one",
        "request",
        padded_to(MAX_REQUEST_BODY_BYTES + 1),
        r"^request body is 262,145 bytes; a request is at most 262,144 bytes \(UTF-8\)$",
    ),
    Hostile(
        "sqs-huge-256KiB-plus-one-of-two-byte-characters",
        "request",
        padded_to(MAX_REQUEST_BODY_BYTES + 1, "\u00e9"),
        r"^request body is 262,145 bytes",
    ),
    # Nearly the request queue's 1 MiB: rejected unread, and parked, since it fits the DLQ (1 MiB)
    # with its attributes. A body with no room for them is left to SQS's redrive (test_parking.py).
    Hostile(
        "sqs-huge-1MiB-less-8KiB",
        "request",
        padded_to(REQUEST_MAX_MESSAGE_BYTES - 8192),
        r"^request body is 1,040,384 bytes",
    ),
    Hostile(
        "sqs-deep-object", "request", nested_object(30_000), r"nested too deeply to be a request"
    ),
    # An empty body cannot arrive: SendMessage refuses it (MessageBody, minimum length 1).
    Hostile("sqs-whitespace-body", "request", " \n\t ", r"body is not JSON"),
    Hostile(
        "sqs-utf8-bom",
        "request",
        "\ufeff" + body(jobId=JOB, reason="r"),
        r"body is not JSON: Unexpected UTF-8 BOM",
    ),
    # A raw NUL (or any character outside XML's) cannot arrive either: SendMessage refuses it.
    Hostile(
        "sqs-escaped-nul-in-reason",
        "request",
        body(jobId=JOB, reason="stop\u0000now"),
        r"reason: must not contain control characters \(U\+0000\)",
    ),
    Hostile(
        "sqs-bell-in-reason",
        "request",
        body(jobId=JOB, reason="stop\u0007now"),
        r"control characters \(U\+0007\)",
    ),
    Hostile(
        "sqs-ansi-in-request-id",
        "request",
        body(jobId=JOB, reason="r", requestId="\x1b[2J\x1b[Hok"),
        r"requestId: must not contain control characters \(U\+001B\)",
    ),
    Hostile(
        "sqs-line-separator-in-requested-by",
        "request",
        body(jobId=JOB, reason="r", requestedBy="alice\u2028admin"),
        r"requestedBy: must not contain control characters \(U\+2028\)",
    ),
    Hostile("sqs-tab-in-job-id", "request", body(jobId=JOB + "\t", reason="r"), NOT_A_JOB_ID),
    Hostile(
        "sqs-nul-in-key", "request", body(**{"jobId\u0000": JOB, "reason": "r"}), r"unknown key"
    ),
    Hostile(
        "sqs-unknown-key",
        "request",
        body(jobId=JOB, reason="r", force=True),
        r"unknown key 'force'",
    ),
    Hostile(
        "sqs-unknown-key-in-selector",
        "request",
        body(selector={"jobQueues": ["spot-cpu"], "queue": "x"}, reason="r"),
        r"unknown key 'queue'",
    ),
    Hostile(
        "sqs-duplicate-reason",
        "request",
        '{"jobId": "' + JOB + '", "reason": "a", "reason": "b"}',
        r"'reason' is given twice",
    ),
    Hostile(
        "sqs-duplicate-key-in-selector",
        "request",
        '{"selector": {"jobQueues": ["spot-cpu"], "jobQueues": ["gpu-training"]}, "reason": "r"}',
        r"'jobQueues' is given twice",
    ),
    Hostile("sqs-short-uuid", "request", body(jobId=JOB[:23], reason="r"), NOT_A_JOB_ID),
    Hostile("sqs-index-leading-zero", "request", body(jobId=f"{JOB}:07", reason="r"), NOT_A_JOB_ID),
    Hostile(
        "sqs-index-unicode-digit", "request", body(jobId=f"{JOB}:\u0663", reason="r"), NOT_A_JOB_ID
    ),
    Hostile(
        "sqs-arn-other-account",
        "request",
        body(jobIds=[JOB, f"arn:aws:batch:{REGION}:999999999999:job/{JOB}"], reason="r"),
        r"is in account '999999999999', not 123456789012",
    ),
    Hostile(
        "sqs-arn-other-region",
        "request",
        body(jobId=f"arn:aws:batch:eu-west-1:{ACCOUNT}:job/{JOB}", reason="r"),
        r"is in region 'eu-west-1', not us-east-1",
    ),
    Hostile(
        "sqs-arn-china-partition",
        "request",
        body(jobId=f"arn:aws-cn:batch:cn-north-1:{ACCOUNT}:job/{JOB}", reason="r"),
        r"region 'cn-north-1'",
    ),
    Hostile(
        "sqs-arn-other-partition-same-region",
        "request",
        body(jobId=f"arn:aws-us-gov:batch:{REGION}:{ACCOUNT}:job/{JOB}", reason="r"),
        r"partition",
    ),
    Hostile(
        "sqs-job-definition-arn",
        "request",
        body(jobId=f"{ARN}:job-definition/train:1", reason="r"),
        NOT_A_JOB_ID,
    ),
    Hostile(
        "sqs-job-queue-arn-as-job",
        "request",
        body(jobId=f"{ARN}:job-queue/spot-cpu", reason="r"),
        NOT_A_JOB_ID,
    ),
    Hostile(
        "sqs-job-arn-path-traversal",
        "request",
        body(jobId=f"{ARN}:job/../{JOB}", reason="r"),
        r"'\.\./" + JOB + r"' is not a Batch job id",
    ),
    Hostile(
        "sqs-ecs-task-arn",
        "request",
        body(jobId=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/c/{JOB}", reason="r"),
        NOT_A_JOB_ID,
    ),
    Hostile(
        "sqs-envelope-without-detail",
        "request",
        envelope(detail=...),
        r"EventBridge event has no detail",
    ),
    Hostile(
        "sqs-envelope-account-as-number",
        "request",
        envelope(account=int(ACCOUNT)),
        r"EventBridge event has no account or region",
    ),
    Hostile(
        "sqs-envelope-detail-is-text",
        "request",
        envelope(detail=body(jobId=JOB, reason="r")),
        r"got str|valid dictionary",
    ),
    Hostile(
        "sqs-unknown-source-attribute",
        "request",
        body(jobId=JOB, reason="r"),
        r"source='nightly' is not one of",
        extra={"source": "nightly"},
    ),
]


# ---- events queue: EventBridge events to the deadline function -----------------------------------

STATE = sample("batch-job-state-change-runnable.json")
BLOCKED = sample("batch-job-queue-blocked.json")


def event_body(base: Any, change: Callable[[Any], object] = lambda _: None) -> str:
    return json.dumps(changed(base, change))


DEADLINE_EVENTS = [
    Hostile("ev-truncated-json", "deadline", event_body(STATE)[:-3], r"the body is not JSON"),
    Hostile("ev-json-array", "deadline", "[]", r"not an EventBridge event: '\[\]'"),
    Hostile(
        "ev-duplicate-key",
        "deadline",
        '{"source": "aws.batch", "source": "aws.ecs"}',
        r"'source' is given twice",
    ),
    Hostile("ev-nan", "deadline", '{"source": NaN}', r"NaN is not JSON"),
    Hostile("ev-deep", "deadline", nested_object(50_000), r"nested too deeply"),
    Hostile(
        "ev-other-source",
        "deadline",
        event_body(STATE, lambda e: e.update(source="my.batch")),
        r"not a Batch job event: source 'my.batch'",
    ),
    Hostile(
        "ev-alarm-event",
        "deadline",
        json.dumps(sample("cloudwatch-alarm-state-change.eventbridge.json")),
        r"not a Batch job event: source 'aws.cloudwatch'",
    ),
    Hostile(
        "ev-unknown-detail-type",
        "deadline",
        event_body(STATE, lambda e: e.update({"detail-type": "Batch Job Queue Unblocked"})),
        r"not a Batch job event: .*'Batch Job Queue Unblocked'",
    ),
    Hostile(
        "ev-other-account",
        "deadline",
        event_body(STATE, lambda e: e.update(account="999999999999")),
        r"event of another account: '999999999999'",
    ),
    Hostile(
        "ev-blocked-other-account",
        "deadline",
        event_body(BLOCKED, lambda e: e.update(account="999999999999")),
        r"event of another account: '999999999999'",
    ),
    Hostile(
        "ev-account-as-number",
        "deadline",
        event_body(STATE, lambda e: e.update(account=int(ACCOUNT))),
        r"event of another account: '123456789012'",
    ),
    Hostile(
        "ev-other-region",
        "deadline",
        event_body(STATE, lambda e: e.update(region="eu-west-1")),
        r"event of another region: 'eu-west-1'",
    ),
    Hostile(
        "ev-blocked-other-region",
        "deadline",
        event_body(BLOCKED, lambda e: e.update(region="us-west-2")),
        r"event of another region: 'us-west-2'",
    ),
    Hostile(
        "ev-missing-detail",
        "deadline",
        event_body(STATE, lambda e: e.pop("detail")),
        r"the event has no detail object",
    ),
    Hostile(
        "ev-blocked-detail-list",
        "deadline",
        event_body(BLOCKED, lambda e: e.update(detail=[BLOCKED["detail"]])),
        r"the event has no detail object",
    ),
    Hostile(
        "ev-job-id-number",
        "deadline",
        event_body(STATE, lambda e: e["detail"].update(jobId=7)),
        r"the event names no valid job id: '7'",
    ),
    Hostile(
        "ev-job-id-arn",
        "deadline",
        event_body(STATE, lambda e: e["detail"].update(jobId=f"{ARN}:job/{JOB}")),
        r"the event names no valid job id",
    ),
    Hostile(
        "ev-job-id-huge",
        "deadline",
        event_body(STATE, lambda e: e["detail"].update(jobId="j" * 200_000)),
        r"^the event names no valid job id: 'j{80}'$",
    ),
    Hostile(
        "ev-job-id-newline",
        "deadline",
        event_body(STATE, lambda e: e["detail"].update(jobId=JOB + "\n")),
        r"the event names no valid job id: '.*\\n'",
    ),
    Hostile(
        "ev-unknown-status",
        "deadline",
        event_body(STATE, lambda e: e["detail"].update(status="EXPLODED")),
        r"the event has no job status: 'EXPLODED'",
    ),
    Hostile(
        "ev-blocked-status-missing",
        "deadline",
        event_body(BLOCKED, lambda e: e["detail"].pop("status")),
        r"the event has no job status: null$",
    ),
    Hostile(
        "ev-status-lower-case",
        "deadline",
        event_body(STATE, lambda e: e["detail"].update(status="running")),
        r"the event has no job status: 'running'",
    ),
    Hostile(
        "ev-attempts-wrong-shape",
        "deadline",
        event_body(STATE, lambda e: e["detail"].update(status="RUNNING", attempts="many")),
        r"the event's job cannot be read",
        extra={"may_be_read": True},
    ),
]


# ---- brake function: alarm events, alarm actions, SNS ------------------------------------------------

AT = datetime(2026, 11, 29, 8, 10, tzinfo=UTC)
ALARM_EVENT = alarms.alarm_event(ALARM, AT)
ALARM_ACTION = alarms.alarm_action(ALARM, AT)
SNS_ALARM = alarms.sns_alarm(ALARM, AT)["Records"][0]
BUDGET = sample("budgets-notification.lambda-sns-event.json")["Records"][0]


def sns_record(message: Any, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(SNS_ALARM)
    record["Sns"]["Message"] = message
    record["Sns"].update(changes)
    return record


def alarm_message(**changes: Any) -> str:
    message = json.loads(SNS_ALARM["Sns"]["Message"])
    message.update(changes)
    return json.dumps({k: v for k, v in message.items() if v is not ...})


def deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


BRAKE_EVENTS = [
    Hostile(
        "br-alarm-other-account",
        "brake",
        changed(ALARM_EVENT, lambda e: e.update(account="999999999999")),
        r"alarm of another account: '999999999999'",
    ),
    # Policies name alarms by name: one of the same name in another region is another alarm.
    Hostile(
        "br-alarm-other-region",
        "brake",
        changed(ALARM_EVENT, lambda e: e.update(region="eu-west-1")),
        r"alarm of another region: 'eu-west-1'",
    ),
    Hostile(
        "br-action-other-region",
        "brake",
        alarms.alarm_action(ALARM, AT, region="eu-west-1"),
        r"alarm action of another region: 'eu-west-1'",
    ),
    Hostile(
        "br-sns-alarm-other-region",
        "brake",
        alarms.sns_alarm(ALARM, AT, region="eu-west-1")["Records"][0],
        r"alarm of another region: 'eu-west-1'",
    ),
    Hostile(
        "br-alarm-ok",
        "brake",
        changed(ALARM_EVENT, lambda e: e["detail"]["state"].update(value="OK")),
        r"^state OK: no brake$",
    ),
    Hostile(
        "br-alarm-insufficient-data",
        "brake",
        changed(ALARM_EVENT, lambda e: e["detail"]["state"].update(value="INSUFFICIENT_DATA")),
        r"^state INSUFFICIENT_DATA: no brake$",
    ),
    Hostile(
        "br-alarm-no-policy-names-it",
        "brake",
        changed(ALARM_EVENT, lambda e: e["detail"].update(alarmName="disk-full")),
        r"no policy's trigger names alarm disk-full",
    ),
    Hostile(
        "br-alarm-name-with-newline",
        "brake",
        changed(ALARM_EVENT, lambda e: e["detail"].update(alarmName=ALARM + "\n")),
        r"the alarm has no valid name: '" + ALARM + r"\\n'",
    ),
    Hostile(
        "br-alarm-like-junk-source",
        "brake",
        changed(ALARM_EVENT, lambda e: e.update(source="my.monitoring")),
        r"not an alarm state change: source 'my.monitoring'",
    ),
    Hostile(
        "br-alarm-state-is-text",
        "brake",
        changed(ALARM_EVENT, lambda e: e["detail"].update(state="ALARM")),
        r"alarm '" + ALARM + "' has no state object",
    ),
    Hostile(
        "br-alarm-detail-missing",
        "brake",
        changed(ALARM_EVENT, lambda e: e.pop("detail")),
        r"the alarm event has no detail object",
    ),
    Hostile(
        "br-alarm-timestamp-epoch-ms",
        "brake",
        changed(ALARM_EVENT, lambda e: e["detail"]["state"].update(timestamp=1764403800000)),
        r"has no valid state timestamp",
    ),
    Hostile(
        "br-alarm-account-5000-digits",
        "brake",
        changed(ALARM_EVENT, lambda e: e.update(account=10**5000)),
        r"alarm of another account: '<int>'",
    ),
    Hostile("br-deeply-nested-event", "brake", deep_list(5_000), r"not an event object: '<list>'"),
    Hostile(
        "br-action-missing-alarm-data",
        "brake",
        changed(ALARM_ACTION, lambda e: e.pop("alarmData")),
        r"the alarm action has no alarmData object",
    ),
    Hostile(
        "br-action-state-is-list",
        "brake",
        changed(ALARM_ACTION, lambda e: e["alarmData"].update(state=["ALARM"])),
        r"has no state object",
    ),
    Hostile(
        "br-action-state-value-number",
        "brake",
        changed(ALARM_ACTION, lambda e: e["alarmData"]["state"].update(value=1)),
        r"has no state value",
    ),
    Hostile(
        "br-action-without-source",
        "brake",
        changed(ALARM_ACTION, lambda e: e.pop("source")),
        r"alarm action from source null$",
    ),
    Hostile(
        "br-action-other-account-as-number",
        "brake",
        changed(ALARM_ACTION, lambda e: e.update(accountId=999999999999)),
        r"alarm action of another account: '999999999999'",
    ),
    Hostile(
        "br-sns-alarm-without-state",
        "brake",
        sns_record(alarm_message(NewStateValue=..., StateChangeTime=...)),
        r"has no state value",
    ),
    Hostile(
        "br-sns-alarm-without-account",
        "brake",
        sns_record(alarm_message(AWSAccountId=...)),
        r"alarm of another account: null$",
    ),
    Hostile(
        "br-sns-eventbridge-event-as-message",
        "brake",
        sns_record(json.dumps(ALARM_EVENT)),
        r"an SNS JSON message that is not an alarm notification",
    ),
    Hostile("br-sns-json-list", "brake", sns_record('[{"AlarmName": "x"}]'), r"neither an alarm"),
    Hostile("br-sns-plain-text", "brake", sns_record("hello"), r"neither an alarm"),
    Hostile(
        "br-sns-broken-json",
        "brake",
        sns_record('{"AlarmName": "' + ALARM),
        r"starts like JSON but is not JSON",
    ),
    Hostile(
        "br-sns-deep-json",
        "brake",
        sns_record(nested_object(50_000)),
        r"starts like JSON but is not JSON",
    ),
    Hostile("br-sns-huge-text", "brake", sns_record("x" * 262_000), r"neither an alarm"),
    Hostile(
        "br-sns-budget-padded-with-spaces",
        "brake",
        sns_record(
            BUDGET["Sns"]["Message"].replace(
                "Budget Name: batch-monthly", "Budget Name: batch-" + " " * 200_000 + "monthly"
            ),
            Timestamp="2026-11-29T06:00:00.000Z",
        ),
        r"no policy's trigger names budget batch- +monthly",
    ),
    Hostile(
        "br-sns-budget-without-name",
        "brake",
        sns_record(
            BUDGET["Sns"]["Message"].replace("Budget Name: batch-monthly\n", ""),
            Timestamp="2026-11-29T06:00:00.000Z",
        ),
        r"does not name exactly one budget",
    ),
    Hostile(
        "br-sns-budget-without-timestamp",
        "brake",
        sns_record(BUDGET["Sns"]["Message"], Timestamp=None),
        r"budget alert 'batch-monthly' has no valid SNS Timestamp",
    ),
    Hostile(
        "br-sns-message-is-object",
        "brake",
        sns_record({"AlarmName": ALARM}),
        r"an SNS record without a Message text",
    ),
    Hostile(
        "br-sqs-record",
        "brake",
        {"eventSource": "aws:sqs", "body": json.dumps(ALARM_EVENT)},
        r"an SQS record|not an alarm event, an alarm action or an SNS notification",
    ),
    Hostile(
        "br-records-not-a-list",
        "brake",
        {"Records": {"Sns": SNS_ALARM["Sns"]}},
        r"not an alarm event, an alarm action or an SNS notification",
    ),
]


# ---- the sweep: Batch data it reads (a job's max-runtime tag) ------------------------------------

SWEEP_TAGS = [
    Hostile(f"sweep-tag-{name}", "sweep", value, r"jobs ignored by the policy run")
    for name, value in [
        ("negative", "-1h"),
        ("nan", "NaN"),
        ("exponent", "1e3h"),
        ("words", "12 hours"),
        ("zero", "0h"),
        ("fraction", "1.5h"),
        ("empty", ""),
        ("plus-sign", "+2h"),
        ("two-parts", "2h 30m"),
        # Digits of other scripts are no digits of a duration (ARABIC-INDIC THREE, FULLWIDTH TWO).
        ("unicode-digit", "\u0663h"),
        ("fullwidth-digit", "\uff12h"),
    ]
]


# ---- policies files ---------------------------------------------------------------------------------

POLICY = "  - name: cap\n    when: {status: RUNNING, olderThan: 2h}\n"


def billion_laughs(levels: int) -> str:
    lines = ["version: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


POLICY_FILES = [
    Hostile(
        "pol-mapping-in-scalar",
        "policies",
        b"version: 1\nsettings: dryRun: true\n",
        r"not valid YAML: mapping values are not allowed here",
    ),
    Hostile("pol-empty-file", "policies", b"", r"file is empty"),
    Hostile("pol-top-level-list", "policies", b"- version: 1\n", r"valid dictionary"),
    Hostile(
        "pol-wrong-types",
        "policies",
        b"version: '1'\npolicies: {}\n",
        r"version: Input should be 1",
    ),
    Hostile(
        "pol-max-per-run-text",
        "policies",
        f"version: 1\npolicies:\n{POLICY}    maxPerRun: lots\n".encode(),
        r"maxPerRun: Input should be a valid integer",
    ),
    Hostile(
        "pol-unknown-key-typo",
        "policies",
        f"version: 1\npolicy:\n{POLICY}".encode(),
        r"unknown key 'policy'.*did you mean 'policies'",
    ),
    Hostile(
        "pol-yes-as-a-key",
        "policies",
        b"version: 1\nyes: 1\n",
        r"unknown key True",
    ),
    Hostile(
        "pol-duplicate-policy-names",
        "policies",
        f"version: 1\npolicies:\n{POLICY}{POLICY}".encode(),
        r"policy name 'cap' is used twice",
    ),
    Hostile(
        "pol-duplicate-yaml-key",
        "policies",
        b"version: 1\nsettings: {dryRun: true}\nsettings: {}\n",
        r"3: settings: key is given twice",
    ),
    Hostile(
        "pol-python-object-tag",
        "policies",
        b"version: 1\nsettings: !!python/object/apply:os.system ['true']\n",
        r"could not determine a constructor",
    ),
    Hostile("pol-nul-byte", "policies", b"version: 1\x00\n", r"unacceptable character #x0000"),
    Hostile("pol-latin-1", "policies", "version: 1\n# café\n".encode("latin-1"), r"not UTF-8"),
    Hostile(
        "pol-star-alarm",
        "policies",
        b"version: 1\npolicies:\n  - name: brake\n    trigger: {alarms: ['*']}\n"
        b"    when: {status: RUNNING}\n",
        r"alarm pattern '\*' names every alarm of the account",
    ),
    Hostile(
        "pol-zero-sweep-interval",
        "policies",
        b"version: 1\nsettings: {sweepInterval: 0s}\n",
        r"sweepInterval: invalid duration '0s': must be longer than zero",
    ),
    Hostile(
        "pol-older-than-a-date",
        "policies",
        f"version: 1\npolicies:\n{POLICY.replace('2h', '2026-01-01')}".encode(),
        r"olderThan: a duration must be a string",
    ),
    Hostile(
        "pol-max-per-run-huge",
        "policies",
        f"version: 1\npolicies:\n{POLICY}    maxPerRun: {10**30}\n".encode(),
        r"maxPerRun: Input should be less than or equal to",
    ),
    Hostile(
        "pol-billion-laughs",
        "policies",
        billion_laughs(9).encode(),
        r"unknown key 'a0'|alias",
    ),
    Hostile(
        "pol-10MB",
        "policies",
        b"version: 1\n" + (b"# " + b"x" * 97 + b"\n") * 100_000,
        r"too large",
    ),
]

POLICIES_JSON = [
    Hostile("json-truncated", "policies.json", '{"version": 1', r"policies.json: not JSON"),
    Hostile(
        "json-wrong-type",
        "policies.json",
        '{"version": 1, "policies": "x"}',
        r"policies: expected list, got str",
    ),
    Hostile(
        "json-unknown-key",
        "policies.json",
        '{"version": 1, "setings": {}}',
        r"unknown key 'setings'",
    ),
    Hostile(
        "json-star-alarm",
        "policies.json",
        json.dumps(
            {
                "version": 1,
                "policies": [
                    {"name": "b", "trigger": {"alarms": ["*"]}, "when": {"status": "RUNNING"}}
                ],
            }
        ),
        r"names every alarm",
    ),
    Hostile(
        "json-duplicate-key",
        "policies.json",
        '{"version": 1, "settings": {"dryRun": true}, "settings": {}}',
        r"given twice",
    ),
]


# ---- CLI arguments and environment ---------------------------------------------------------------

NO_AWS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_DEFAULT_REGION": None,
    "AWS_REGION": None,
    "AWS_PROFILE": None,
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}
UNREACHABLE = ["--queue-url", "http://127.0.0.1:1/q", "--endpoint-url", "http://127.0.0.1:1"]
LOG_GROUP = ["--log-group", "g", "--endpoint-url", "http://127.0.0.1:1"]
REQUEST = ["request", JOB, "--reason", "r", "--requested-by", "me", *UNREACHABLE]


def cli(*args: str, env: dict[str, str | None] | None = None) -> dict[str, Any]:
    return {"args": list(args), "env": env or {}}


COMMANDS = [
    Hostile("cli-plan-output-yaml", "cli", cli("plan", "--output", "yaml"), r"--output"),
    Hostile(
        "cli-audit-output-xml", "cli", cli("audit", "--output", "xml", *LOG_GROUP), r"--output"
    ),
    Hostile("cli-since-word", "cli", cli("audit", "--since", "yesterday", *LOG_GROUP), r"--since"),
    Hostile("cli-since-negative", "cli", cli("audit", "--since", "-5h", *LOG_GROUP), r"--since"),
    Hostile(
        "cli-since-absurd",
        "cli",
        cli("audit", "--since", "99999999999d", *LOG_GROUP),
        r"--since.*at most 366d",
    ),
    Hostile("cli-limit-negative", "cli", cli("audit", "--limit", "-1", *LOG_GROUP), r"--limit"),
    Hostile("cli-limit-zero", "cli", cli("audit", "--limit", "0", *LOG_GROUP), r"--limit"),
    Hostile("cli-limit-word", "cli", cli("audit", "--limit", "all", *LOG_GROUP), r"--limit"),
    Hostile(
        "cli-job-id-with-space",
        "cli",
        cli("request", f"{JOB} x", "--reason", "r", *UNREACHABLE),
        r"'" + JOB + r" x' is not a Batch job id",
    ),
    Hostile(
        "cli-job-id-with-newline",
        "cli",
        cli("request", f"{JOB}\n", "--reason", "r", *UNREACHABLE),
        JOB + r"\\n' is not a Batch job id",
    ),
    Hostile(
        "cli-job-id-markup",
        "cli",
        cli("request", "[red]x[/red]", "--reason", "r", *UNREACHABLE),
        r"'\[red\]x\[/red\]' is not a Batch job id",
    ),
    Hostile(
        "cli-reason-escape-sequence",
        "cli",
        cli("request", JOB, "--reason", "\x1b[2Jgone", *UNREACHABLE),
        r"reason: must not contain control characters \(U\+001B\)",
    ),
    Hostile(
        "cli-if-status-finished",
        "cli",
        cli("request", JOB, "--reason", "r", "--if-status", "SUCCEEDED", *UNREACHABLE),
        r"finished jobs cannot be terminated",
    ),
    Hostile("cli-via-pigeon", "cli", cli(*REQUEST, "--via", "pigeon"), r"--via"),
    Hostile(
        "cli-validate-a-directory", "cli", cli("validate", "/"), r"cannot read: Is a directory"
    ),
    Hostile(
        "cli-plan-missing-file",
        "cli",
        cli("plan", "--policies", "/nonexistent/policies.yaml"),
        r"cannot read: No such file or directory",
    ),
    Hostile("cli-no-region", "cli", cli(*REQUEST, env=NO_AWS), r"no AWS region"),
    Hostile(
        "cli-no-credentials",
        "cli",
        cli("audit", "--log-group", "g", "--region", REGION, env=NO_AWS),
        r"no AWS credentials",
    ),
    Hostile(
        "cli-unknown-profile",
        "cli",
        cli("audit", "--log-group", "g", "--region", REGION, env={**NO_AWS, "AWS_PROFILE": "nope"}),
        r"nope",
    ),
    Hostile("cli-region-junk", "cli", cli(*REQUEST, "--region", "us-east-1; rm -rf"), r"--region"),
    Hostile("cli-unknown-command", "cli", cli("terminate-all"), r"No such command"),
]

CATALOGUE = (
    REQUESTS + DEADLINE_EVENTS + BRAKE_EVENTS + SWEEP_TAGS + POLICY_FILES + POLICIES_JSON + COMMANDS
)

# Kinds the catalogue does not repeat, and where they are tested.
ELSEWHERE = {
    "request: NaN, 100,000 nested lists, minAge of 1e9 days or 5,000 digits, bidi/zero-width "
    "reasons, CR/LF in requestedBy, wildcard queues, EventBridge envelope of another "
    "account/region": "tests/unit/test_request_parsing.py::test_hostile_requests_are_rejected_"
    "with_a_clear_error",
    "request: a bad body alone in its batch, the rest terminates": "tests/integration/"
    "test_never_the_wrong_job.py::test_hostile_bodies_are_rejected_alone_and_the_rest_of_the_"
    "batch_goes_on",
    "events queue: a 5,000-digit number": "tests/integration/test_event_trigger_faults.py::"
    "test_a_malformed_body_is_one_ignore_line",
    "brake: a Budgets alert for a budget no policy names": "tests/integration/"
    "test_event_triggers.py::test_a_budgets_alert_brakes_only_the_budget_it_names",
    "brake: SNS alarm of another account, two budget names, prose that mentions a budget": "tests/"
    "unit/test_events.py::test_malformed_and_foreign_brake_events_are_ignored_with_a_reason",
    "policies: UTF-16, unterminated flow, self-containing alias, 5,000 nested lists, !include": (
        "tests/integration/test_cli.py::test_validate_reports_any_broken_file_in_one_clear_line"
    ),
    "policies: olderThan of 1e9 days, 5,000 digits, negative": "tests/integration/test_cli.py::"
    "test_validate_rejects_absurd_durations_with_one_clear_line",
    "cli: endpoint without a scheme; local --port 99999/0, --sweep-interval -5": "tests/"
    "integration/test_cli.py",
}


def test_the_catalogue_is_big_enough_and_its_ids_are_unique() -> None:
    ids = [h.id for h in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40
    by_entry = {h.entry for h in CATALOGUE}
    assert by_entry == {"request", "deadline", "brake", "sweep", "policies", "policies.json", "cli"}


# ---- the runners ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    """One emulated account for every event-path entry (each case cleans up after itself)."""
    with sandbox(PoliciesFile.model_validate(POLICIES)) as running:
        yield running


def fresh(box: Sandbox) -> None:
    """The box as new for the next case: no audit or trigger lines, an empty DLQ."""
    box.audit.clear()
    box.trigger_logs.clear()
    sqs, url = box.sqs, box.deployment.dlq_url
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def stopped(box: Sandbox) -> set[str]:
    return {event.job_id for event in box.control.terminations()}


def run_request(box: Sandbox, hostile: Hostile) -> None:
    fresh(box)
    job = box.world.job("etl", "gpu-training", "RUNNING")
    bad = box.send(hostile.input, source=hostile.extra.get("source"))
    good = box.send({"jobId": job, "reason": "fine"})

    invocations = box.run_terminator()

    assert all(not i.failed_ids for i in invocations), "a bad body failed its batch"
    assert job in stopped(box), "the valid request in the same batch was not processed"
    assert box.outcome(job) == "terminated"
    parked = [
        m
        for m in box.dead_letters()
        if m["MessageAttributes"]["originalMessageId"]["StringValue"] == bad
    ]
    assert len(parked) == 1, "the bad body is not in the DLQ exactly once"
    assert parked[0]["Body"] == (hostile.input or "<empty>")
    assert "error" in parked[0]["MessageAttributes"], "parked without its error attribute"
    error = parked[0]["MessageAttributes"]["error"]["StringValue"]
    assert re.search(hostile.expected, error), error
    [line] = [a for a in box.audit if a["message_id"] == bad]
    assert line["outcome"] == "rejected"
    assert line["error"] == error
    assert good not in {m["MessageAttributes"]["originalMessageId"]["StringValue"] for m in parked}


def run_deadline(box: Sandbox, hostile: Hostile) -> None:
    fresh(box)
    # A job past quick-cap's 2 minutes: its RUNNING event is in the events queue already.
    job = box.world.job("train", "gpu-training", "RUNNING", age=timedelta(minutes=10))
    sent = box.sqs.send_message(QueueUrl=box.deployment.events_queue_url, MessageBody=hostile.input)

    invocations = box.run_deadlines()

    assert all(not i.response["batchItemFailures"] for i in invocations)
    mine = [
        line
        for line in box.trigger_logs
        if line.get("message") == "deadline event" and line["message_id"] == sent["MessageId"]
    ]
    assert len(mine) == 1, mine
    if not (hostile.extra.get("may_be_read") and mine[0]["outcome"] != "ignored"):
        assert mine[0]["outcome"] == "ignored"
        assert re.search(hostile.expected, mine[0]["why"]), mine[0]["why"]
    box.run_terminator()
    assert job in stopped(box), "the real event in the same batch was not acted on"


_transitions = iter(range(1, 100_000))


def run_brake(box: Sandbox, hostile: Hostile) -> None:
    fresh(box)
    before = stopped(box)
    if isinstance(hostile.input, dict) and "Sns" in hostile.input:
        # A real alarm after the bad record, in the same SNS event, still brakes.
        now = datetime.now(UTC)
        box.world.job("spot", "spot-cpu", "RUNNING", age=timedelta(minutes=5), now=now)
        good = alarms.sns_alarm(ALARM, AT + timedelta(minutes=next(_transitions)))["Records"][0]
        result = box.run_brake({"Records": [hostile.input, good]})
        assert result == {"outcomes": ["ignored", "braked"]}
        box.run_terminator()
        assert len(stopped(box) - before) == 1
    else:
        result = box.run_brake(hostile.input)
        assert result == {"outcomes": ["ignored"]}
        box.run_terminator()
        assert stopped(box) == before
    [line] = [line for line in box.trigger_logs if line.get("message") == "brake event ignored"]
    assert re.search(hostile.expected, line["why"]), line["why"]


def run_sweep(box: Sandbox, hostile: Hostile) -> None:
    fresh(box)
    box.sweeper_logs.clear()
    # Younger than quick-cap's 2 minutes: only its tag could select it.
    odd = box.world.job(
        "odd",
        "gpu-training",
        "RUNNING",
        age=timedelta(seconds=30),
        tags={MAX_RUNTIME: hostile.input},
    )
    runaway = box.world.job("runaway", "gpu-training", "RUNNING", age=timedelta(minutes=10))

    summary = box.run_sweeper()
    box.run_terminator()

    assert runaway in stopped(box), "the sweep did not go on past the odd tag"
    assert odd not in stopped(box)
    assert summary["invalid_max_runtime_tags"][odd] == hostile.input
    [warning] = [line for line in box.sweeper_logs if re.search(hostile.expected, line["message"])]
    assert warning["level"] == "WARNING"
    assert warning["invalid_max_runtime_tags"][odd] == hostile.input


class Hung(Exception):
    """The guarded command did not return."""


@contextmanager
def returns_within(seconds: int) -> Iterator[None]:
    """A hang guard, not a measurement: `validate` answers in well under a second on a small
    file; without the guard a file that makes it loop would hang the run instead of failing."""

    def hung(*_: object) -> None:
        raise Hung(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_policies(tmp_path: Path, hostile: Hostile) -> None:
    path = tmp_path / "policies.yaml"
    path.write_bytes(hostile.input)
    with returns_within(10):
        result = runner.invoke(app, ["validate", str(path)])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    printed = result.output.strip().splitlines()
    assert printed
    assert all(line.startswith(f"{path}:") for line in printed), printed
    assert re.search(hostile.expected, result.output), result.output
    with returns_within(10), pytest.raises(PoliciesFileError) as raised:
        load_policies(path)
    assert re.search(hostile.expected, str(raised.value))


def run_policies_json(tmp_path: Path, hostile: Hostile) -> None:
    path = tmp_path / "policies.json"
    path.write_text(hostile.input, encoding="utf-8")
    with pytest.raises(InvalidPolicies) as raised:
        load_config(path)
    assert re.search(hostile.expected, str(raised.value)), str(raised.value)


def run_cli(hostile: Hostile) -> None:
    result = runner.invoke(app, hostile.input["args"], env=hostile.input["env"])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    matching = [line for line in result.output.splitlines() if re.search(hostile.expected, line)]
    assert len(matching) == 1, result.output


@pytest.mark.parametrize("hostile", [h.param() for h in REQUESTS])
def test_a_hostile_request_body_is_parked_with_its_error_and_the_batch_goes_on(
    box: Sandbox, hostile: Hostile
) -> None:
    run_request(box, hostile)


@pytest.mark.parametrize("hostile", [h.param() for h in DEADLINE_EVENTS])
def test_a_hostile_batch_event_is_one_ignore_line_and_the_batch_goes_on(
    box: Sandbox, hostile: Hostile
) -> None:
    run_deadline(box, hostile)


@pytest.mark.parametrize("hostile", [h.param() for h in BRAKE_EVENTS])
def test_a_hostile_brake_event_is_one_ignore_line_and_brakes_nothing(
    box: Sandbox, hostile: Hostile
) -> None:
    run_brake(box, hostile)


@pytest.mark.parametrize("hostile", [h.param() for h in SWEEP_TAGS])
def test_a_hostile_max_runtime_tag_is_reported_and_the_sweep_goes_on(
    box: Sandbox, hostile: Hostile
) -> None:
    run_sweep(box, hostile)


@pytest.mark.parametrize("hostile", [h.param() for h in POLICY_FILES])
def test_a_hostile_policies_file_is_refused_with_its_line(tmp_path: Path, hostile: Hostile) -> None:
    run_policies(tmp_path, hostile)


@pytest.mark.parametrize("hostile", [h.param() for h in POLICIES_JSON])
def test_a_hostile_shipped_policies_json_fails_closed(tmp_path: Path, hostile: Hostile) -> None:
    run_policies_json(tmp_path, hostile)


@pytest.mark.parametrize("hostile", [h.param() for h in COMMANDS])
def test_a_hostile_command_line_is_one_clear_line(hostile: Hostile) -> None:
    run_cli(hostile)


# ---- fuzzing, per entry point -------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from([JOB, f"{ARN}:job/{JOB}", "RUNNING", ALARM, ACCOUNT, "aws.batch"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["jobId", "jobIds", "reason", "selector", "detail", "source", "x"])
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
# Bodies SQS carries: text without the characters SendMessage refuses (#x9, #xA, #xD,
# #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF are allowed; SendMessage, MessageBody).
sqs_text = st.text(
    st.sampled_from("\t\n\r")
    | st.characters(min_codepoint=0x20, max_codepoint=0xD7FF)
    | st.characters(min_codepoint=0xE000, max_codepoint=0xFFFD)
    | st.characters(min_codepoint=0x10000),
    min_size=1,
)
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(st.one_of(json_values.map(json.dumps), sqs_text))
def test_fuzz_the_request_queue_loses_nothing(box: Sandbox, text: str) -> None:
    fresh(box)
    sent = box.send(text)
    invocations = box.run_terminator()
    assert box.queued() == 0
    failed = set().union(*(i.failed_ids for i in invocations))
    parked = {
        m["MessageAttributes"].get("originalMessageId", {}).get("StringValue"): m
        for m in box.dead_letters()
    }
    outcomes = [a["outcome"] for a in box.audit if a["message_id"] == sent]
    assert outcomes, "no audit line for the message"
    if "rejected" in outcomes:
        # Parked at once with its error, never retried.
        assert outcomes == ["rejected"]
        assert sent not in failed
        assert parked[sent]["Body"] == text
        assert parked[sent]["MessageAttributes"]["error"]["StringValue"]
    else:
        assert sent not in parked


@FUZZ
@given(
    st.one_of(
        json_values.map(json.dumps),
        sqs_text,
        st.dictionaries(st.sampled_from(sorted(STATE["detail"])), json_values).map(
            lambda d: json.dumps({**STATE, "detail": {**STATE["detail"], **d}})
        ),
    )
)
def test_fuzz_the_events_queue_is_one_line_per_message(box: Sandbox, text: str) -> None:
    fresh(box)
    sent = box.sqs.send_message(QueueUrl=box.deployment.events_queue_url, MessageBody=text)
    invocations = box.run_deadlines()
    assert all(not i.response["batchItemFailures"] for i in invocations)
    mine = [
        line
        for line in box.trigger_logs
        if line.get("message") == "deadline event" and line["message_id"] == sent["MessageId"]
    ]
    assert len(mine) >= 1


@FUZZ
@given(
    st.one_of(
        json_values,
        json_values.map(lambda v: {"Records": [{"Sns": {"Message": json.dumps(v)}}]}),
        st.text().map(lambda t: {"Records": [{"Sns": {"Message": t, "Timestamp": "x"}}]}),
        st.dictionaries(st.sampled_from(sorted(ALARM_ACTION)), json_values).map(
            lambda d: {**ALARM_ACTION, **d}
        ),
    )
)
def test_fuzz_the_brake_never_crashes_and_explains_each_ignore(box: Sandbox, event: Any) -> None:
    fresh(box)
    result = box.run_brake(event)
    ignored = [line for line in box.trigger_logs if line.get("message") == "brake event ignored"]
    assert result["outcomes"].count("ignored") == len(ignored)
    assert all(line["why"] for line in ignored)


yaml_text = st.text(st.sampled_from(list("version: 1\n-[]{}&*!'\",#?|>%@`policiesnam\t ")))


@settings(max_examples=150, deadline=None)
@given(yaml_text)
def test_fuzz_a_policies_file_is_valid_or_refused_with_its_lines(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "policies.yaml"
        path.write_text(text, encoding="utf-8")
        with returns_within(20):
            result = runner.invoke(app, ["validate", str(path)])
        assert isinstance(result.exception, SystemExit | None), repr(result.exception)
        assert result.exit_code in (0, 1)
        assert "Traceback" not in result.output
        try:
            load_policies(path)
        except PoliciesFileError:
            assert result.exit_code == 1
        else:
            assert result.exit_code == 0


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["--since", "--limit", "--output", "--job-id", "--outcome"]),
    st.text(st.characters(codec="utf-8", blacklist_characters="\x00"), max_size=20),
)
def test_fuzz_an_audit_option_is_accepted_or_one_clear_line(option: str, value: str) -> None:
    result = runner.invoke(
        app,
        ["audit", option, value, *LOG_GROUP],
        env={
            "AWS_MAX_ATTEMPTS": "1",
            **{
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_DEFAULT_REGION": REGION,
            },
        },
    )
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)
