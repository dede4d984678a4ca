"""The events the deadline and brake functions consume, parsed into what they mean, or into the
one line that says why they are ignored. Pure; never raises on any input.

Shapes (../shared/events and the AWS guides they cite):

- `aws.batch` / `Batch Job State Change` and `Batch Job Queue Blocked`: `detail` is the job as
  DescribeJobs gives it, except `detail.tags`, which holds `resourceArn`, not the job's tags
  (Batch user guide, "Job state change events", "Job queue blocked events").
- `aws.cloudwatch` / `CloudWatch Alarm State Change`: `detail.alarmName`, `detail.state.value`
  and `.timestamp` (CloudWatch user guide, "Alarm events and EventBridge").
- A Lambda alarm action's payload: `alarmArn`, `accountId`, `alarmData.alarmName`,
  `alarmData.state.value` and `.timestamp` (CloudWatch user guide, "Lambda alarm actions").
- SNS (a Lambda subscription's `Records[].Sns`, or the bare envelope): `Message` is either an
  alarm notification in JSON (`AlarmName`, `NewStateValue`, `StateChangeTime`) or an AWS Budgets
  alert in prose, whose `Budget Name:` line names the budget (AWS Budgets user guide, "Creating
  an Amazon SNS topic for budget notifications").

An alarm transition is its name plus its state timestamp: every shape carries it, so the same
transition delivered twice, by one path or several, has one key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from batch_terminator.contract import (
    ALARM_STATE_CHANGE,
    BATCH_EVENT_SOURCE,
    CLOUDWATCH_EVENT_SOURCE,
    JOB_QUEUE_BLOCKED,
    JOB_STATE_CHANGE,
    JobStatus,
    Source,
)
from batch_terminator.models.job import JobSnapshot

# A job id of Batch: a UUID, an array child's `:index`, a node's `#index`.
_JOB_ID: Final = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}([:#](0|[1-9][0-9]{0,4}))?$"
)
# Linear on any text: no lazy group before a trailing `\s*$`, which backtracks quadratically over
# a long run of spaces (a 256 KiB SNS message took minutes); the name is stripped afterwards.
_BUDGET_NAME_LINE: Final = re.compile(r"^Budget Name: (?P<name>[^\n]*)$", re.MULTILINE)
_BUDGET_ACCOUNT_LINE: Final = re.compile(r"^AWS Account (?P<account>[0-9]{12})\s*$", re.MULTILINE)
_ASCII_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
# What is quoted of a foreign value in an ignore line.
_QUOTE_MAX: Final = 80
ALARM: Final = "ALARM"


@dataclass(frozen=True)
class Ignored:
    """An event that asks for nothing: `why` is its one log line's reason."""

    why: str


@dataclass(frozen=True)
class JobEvent:
    """A Batch job event: the job as the event shows it (tags unknown), and which path it is."""

    job: JobSnapshot
    source: Source  # DEADLINE for a state change, BLOCKED for a blocked queue
    event_id: str


@dataclass(frozen=True)
class BrakeSignal:
    """An alarm entered a state, or a Budgets alert named a budget; `key` identifies the
    transition across paths and deliveries."""

    kind: str  # "alarm" or "budget"
    name: str
    state: str
    at: datetime
    path: str  # "eventbridge", "alarm-action", "sns"

    @property
    def key(self) -> str:
        return f"brake#{self.kind}#{self.name}#{self.at.isoformat(timespec='milliseconds')}"


def _quote(value: Any) -> str:
    """At most `_QUOTE_MAX` characters of a foreign value, for an ignore line; never raises."""
    if isinstance(value, str):
        return repr(value[:_QUOTE_MAX])
    if value is None:  # missing or null: unquoted, unlike the text 'null'
        return "null"
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):  # a 5,000-digit number, a nesting deeper than the stack
        text = f"<{type(value).__name__}>"
    return repr(text[:_QUOTE_MAX])


def _timestamp(value: Any) -> datetime | None:
    """CloudWatch's `2026-11-29T08:10:00.000+0000`, SNS's `...Z`, or ISO 8601; UTC."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-][0-9]{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
        return None if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 at +14:00 is before datetime.min in UTC
        return None


def parse_job_event(
    event: Any, account: str | None, region: str | None = None
) -> JobEvent | Ignored:
    """A Batch job state change or queue blocked event of this account and region (each checked
    when given), with a detail that DescribeJobs' shape can be read from. A job id names a job
    in one region only: an event routed from another region's bus (EventBridge cross-Region
    routing) is about a job this region's Batch does not have."""
    if not isinstance(event, dict):
        return Ignored(f"not an EventBridge event: {_quote(event)}")
    source, detail_type = event.get("source"), event.get("detail-type")
    if source != BATCH_EVENT_SOURCE or detail_type not in (JOB_STATE_CHANGE, JOB_QUEUE_BLOCKED):
        return Ignored(f"not a Batch job event: source {_quote(source)}, {_quote(detail_type)}")
    if account is not None and event.get("account") != account:
        return Ignored(f"event of another account: {_quote(event.get('account'))}")
    if region is not None and event.get("region") != region:
        return Ignored(f"event of another region: {_quote(event.get('region'))}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return Ignored("the event has no detail object")
    job_id = detail.get("jobId")
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        return Ignored(f"the event names no valid job id: {_quote(job_id)}")
    if detail.get("status") not in JobStatus.__members__:
        return Ignored(f"the event has no job status: {_quote(detail.get('status'))}")
    try:
        job = JobSnapshot.from_event(detail)
    except Exception as exc:  # any malformed field: one ignore line, never a failed batch
        return Ignored(f"the event's job cannot be read: {type(exc).__name__}: {exc}")
    source_path = Source.BLOCKED if detail_type == JOB_QUEUE_BLOCKED else Source.DEADLINE
    return JobEvent(job, source_path, str(event.get("id") or ""))


def parse_brake_events(
    event: Any, account: str | None, region: str | None = None
) -> list[BrakeSignal | Ignored]:
    """Every alarm transition or budget alert an invocation carries (an SNS event may carry
    several records), each a signal or the reason it is ignored. An alarm of another account or
    region (each checked when given) is ignored: policies name alarms by name, and an alarm of
    the same name elsewhere (an event routed from another region's bus, an SNS topic of another
    region) is another alarm. Budgets are global: a budget alert is checked for its account."""
    if not isinstance(event, dict):
        return [Ignored(f"not an event object: {_quote(event)}")]
    where = _Where(account, region)
    records = event.get("Records")
    if isinstance(records, list):
        if not records:
            return [Ignored("an SNS event without records")]
        return [_sns(r.get("Sns") if isinstance(r, dict) else None, where) for r in records]
    if event.get("Type") == "Notification" and "Message" in event:
        return [_sns(event, where)]
    if "alarmData" in event or "alarmArn" in event:
        return [_alarm_action(event, where)]
    if "detail-type" in event:
        return [_alarm_event(event, where)]
    return [Ignored("not an alarm event, an alarm action or an SNS notification")]


@dataclass(frozen=True)
class _Where:
    """The account and region the brake serves; None where unknown (not checked)."""

    account: str | None
    region: str | None

    def foreign(self, what: str, account: Any, region: Any) -> Ignored | None:
        """The ignore line for an alarm of another account or region, else None."""
        if self.account is not None and account != self.account:
            return Ignored(f"{what} of another account: {_quote(account)}")
        if self.region is not None and region != self.region:
            return Ignored(f"{what} of another region: {_quote(region)}")
        return None


def _arn_region(arn: Any) -> Any:
    """The region field of an ARN (`arn:partition:service:region:account:...`), else None."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":", 5)
    return parts[3] if len(parts) == 6 and parts[0] == "arn" else None


def _alarm_event(event: dict[str, Any], where: _Where) -> BrakeSignal | Ignored:
    if event.get("source") != CLOUDWATCH_EVENT_SOURCE or event.get("detail-type") != (
        ALARM_STATE_CHANGE
    ):
        return Ignored(
            f"not an alarm state change: source {_quote(event.get('source'))}, "
            f"{_quote(event.get('detail-type'))}"
        )
    foreign = where.foreign("alarm", event.get("account"), event.get("region"))
    if foreign is not None:
        return foreign
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return Ignored("the alarm event has no detail object")
    return _signal(detail.get("alarmName"), detail.get("state"), "eventbridge")


def _alarm_action(event: dict[str, Any], where: _Where) -> BrakeSignal | Ignored:
    if event.get("source") != CLOUDWATCH_EVENT_SOURCE:
        return Ignored(f"alarm action from source {_quote(event.get('source'))}")
    # `region` is in the payload (CloudWatch user guide, "Lambda alarm actions"); else the ARN's.
    region = event.get("region", _arn_region(event.get("alarmArn")))
    foreign = where.foreign("alarm action", event.get("accountId"), region)
    if foreign is not None:
        return foreign
    data = event.get("alarmData")
    if not isinstance(data, dict):
        return Ignored("the alarm action has no alarmData object")
    return _signal(data.get("alarmName"), data.get("state"), "alarm-action")


def _signal(name: Any, state: Any, path: str) -> BrakeSignal | Ignored:
    # 1 to 255 characters, no ASCII control characters (PutMetricAlarm, AlarmName): anything
    # else names no alarm CloudWatch can have.
    if not isinstance(name, str) or not 0 < len(name) <= 255 or _ASCII_CONTROL.search(name):
        return Ignored(f"the alarm has no valid name: {_quote(name)}")
    if not isinstance(state, dict):
        return Ignored(f"alarm {_quote(name)} has no state object")
    value, at = state.get("value"), _timestamp(state.get("timestamp"))
    if not isinstance(value, str):
        return Ignored(f"alarm {_quote(name)} has no state value")
    if at is None:
        return Ignored(f"alarm {_quote(name)} has no valid state timestamp")
    return BrakeSignal("alarm", name, value, at, path)


def _sns(envelope: Any, where: _Where) -> BrakeSignal | Ignored:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("Message"), str):
        return Ignored("an SNS record without a Message text")
    message: str = envelope["Message"]
    stripped = message.lstrip()
    if stripped.startswith("{"):
        try:
            alarm = json.loads(stripped)
        except (ValueError, RecursionError):
            return Ignored("an SNS message that starts like JSON but is not JSON")
        if not isinstance(alarm, dict) or "AlarmName" not in alarm:
            return Ignored("an SNS JSON message that is not an alarm notification")
        # `Region` is a display name ("US East (N. Virginia)"); the AlarmArn names the region.
        foreign = where.foreign(
            "alarm", alarm.get("AWSAccountId"), _arn_region(alarm.get("AlarmArn"))
        )
        if foreign is not None:
            return foreign
        return _signal(
            alarm.get("AlarmName"),
            {"value": alarm.get("NewStateValue"), "timestamp": alarm.get("StateChangeTime")},
            "sns",
        )
    if not message.startswith("AWS Budget Notification"):
        return Ignored("an SNS message that is neither an alarm nor an AWS Budgets alert")
    names = [name.strip() for name in _BUDGET_NAME_LINE.findall(message)]
    if len(names) != 1 or not names[0]:
        return Ignored("an AWS Budgets alert that does not name exactly one budget")
    sent_for = _BUDGET_ACCOUNT_LINE.search(message)
    if where.account is not None and (sent_for is None or sent_for["account"] != where.account):
        return Ignored(f"budget alert of another account: {_quote(sent_for and sent_for[0])}")
    at = _timestamp(envelope.get("Timestamp"))
    if at is None:
        return Ignored(f"budget alert {_quote(names[0])} has no valid SNS Timestamp")
    # A Budgets alert is sent when the budget crosses its threshold: it is always an alarm.
    return BrakeSignal("budget", names[0], ALARM, at, "sns")
