"""EventBridge Scheduler on the emulator: moto stores schedules and never runs them; this runs
the one-time ones.

`fire_due(session, now)` fires every schedule, of every group, whose `at(yyyy-mm-ddThh:mm:ss)`
time (read in its ScheduleExpressionTimezone, UTC by default) is at or before `now` (the real
time unless given) and whose State is ENABLED, earliest first. It never fires a schedule before
its time, and never fires one twice:

- the target is invoked as Scheduler invokes it: the universal target
  `arn:aws:scheduler:::aws-sdk:sqs:sendMessage` calls SQS SendMessage with the parameters in
  `Input` (JSON of the API's parameters, PascalCase as in the SDKs: QueueUrl, MessageBody,
  MessageAttributes, DelaySeconds, ...; EventBridge Scheduler user guide, "Using universal
  targets"); a templated SQS target (a queue ARN) sends `Input` as the message body;
- a failure that is retryable (throttling, a server error, the network) is retried at once up
  to the target's `RetryPolicy.MaximumRetryAttempts` ("Retry attempts with exponential
  backoff continue until either the maximum number of attempts is made or until the duration
  of the MaximumEventAgeInSeconds is reached", RetryPolicy, Scheduler API reference); the
  emulator does not wait between attempts, so the event age never runs out. Any other error is
  permanent and not retried;
- what could not be delivered goes to `DeadLetterConfig.Arn`, if set, as Scheduler's dead-letter
  event: the body is the target's input, and the message attributes are ERROR_CODE,
  ERROR_MESSAGE, EXECUTION_ID, IS_PAYLOAD_TRUNCATED, RETRY_ATTEMPTS, SCHEDULED_TIME,
  SCHEDULE_ARN, TARGET_ARN, plus EXHAUSTED_RETRY_CONDITION ("present if the error from the
  target API is a retryable error, and not a permanent error"); EventBridge Scheduler user
  guide, "Configuring a schedule's dead-letter queue",
  https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html;
- then `ActionAfterCompletion: DELETE` deletes the schedule; NONE keeps it, fired.

Not emulated: rate() and cron() schedules (left alone), FlexibleTimeWindow (a schedule fires
as soon as its window opens), StartDate / EndDate, KMS keys, the execution role's permissions.

`install()` makes moto's Scheduler keep and check what the product relies on: UpdateSchedule
keeps ActionAfterCompletion (moto drops it), a schedule in a group that does not exist is a
ResourceNotFoundException (moto fails with a KeyError), names and expressions are validated as
the API does. `fail_targets` makes the next target invocations fail (a test's fault).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import BotoCoreError, ClientError
from moto.scheduler.exceptions import ValidationException
from moto.scheduler.models import EventBridgeSchedulerBackend, Schedule, scheduler_backends
from moto.scheduler.responses import EventBridgeSchedulerResponse

from batch_terminator.contract import SCHEDULER_SQS_SEND_TARGET

_AT: Final = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_AT_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
# ScheduleExpression: "at(yyyy-mm-ddThh:mm:ss)", "rate(value unit)", "cron(fields)"
# (CreateSchedule, Scheduler API reference).
_EXPRESSION: Final = re.compile(
    r"^(at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)"
    r"|rate\(\d+ (minute|minutes|hour|hours|day|days)\)"
    r"|cron\(\S+( \S+){5}\))$"
)
# Schedule and group names: 1 to 64 of [0-9a-zA-Z-_.] (CreateSchedule, Scheduler API reference).
_NAME: Final = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
_ACTIONS_AFTER_COMPLETION: Final = (None, "NONE", "DELETE")
# Scheduler's default when a target gives no RetryPolicy (RetryPolicy, Scheduler API reference).
DEFAULT_RETRY_ATTEMPTS: Final = 185
_RETRYABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "AWS.SimpleQueueService.InternalError",
    }
)
# Set on a moto Schedule once it fired (a NONE schedule stays, and must not fire again).
_FIRED_AT: Final = "_emulator_fired_at"
# Set on a moto Scheduler backend: error codes the next target invocations fail with.
_FAILURES: Final = "_emulator_target_failures"
_firing = threading.Lock()


@dataclass(frozen=True)
class Firing:
    """One schedule fired: `outcome` is `delivered`, `dead-lettered` (the DLQ has it),
    `dropped` (it failed and there was no DLQ, or the DLQ failed too) or `unsupported` (a target
    the emulator cannot invoke). `attempts` counts invocations of the target; `message_id` is
    the delivered message's or the dead letter's."""

    schedule_arn: str
    name: str
    group: str
    scheduled_time: datetime
    fired_at: datetime
    target_arn: str
    outcome: str
    attempts: int
    message_id: str | None
    error_code: str | None
    error_message: str | None
    deleted: bool


class _TargetFailed(Exception):
    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.retryable = code, message, retryable


class _Unsupported(Exception):
    pass


# -- reading schedules ---------------------------------------------------------------------------
def at_time(expression: str, timezone: str | None = None) -> datetime | None:
    """The UTC time of an `at(...)` expression read in `timezone` (UTC by default); None for
    rate() and cron() expressions, or what cannot be read."""
    found = _AT.match(expression or "")
    if found is None:
        return None
    try:
        zone = ZoneInfo(timezone or "UTC")
        local = datetime.strptime(found.group(1), _AT_FORMAT).replace(tzinfo=zone)
    except (ValueError, ZoneInfoNotFoundError):
        return None
    return local.astimezone(UTC)


def _backend(session: Any) -> EventBridgeSchedulerBackend:
    account = str(session.client("sts").get_caller_identity()["Account"])
    return scheduler_backends[account][str(session.region_name)]


def _schedules(backend: EventBridgeSchedulerBackend) -> list[Schedule]:
    return [
        schedule
        for group in list(backend.schedule_groups.values())
        for schedule in list(group.schedules.values())
    ]


_SHIFTED = "_emulator_shifted_by"


def _pending_at(schedule: Schedule) -> datetime | None:
    """When the schedule may fire, if it is enabled, one-time and has not fired: at the start
    of its minute. "All schedule types on EventBridge Scheduler invoke their targets with 60
    second precision. This means that if you set your schedule to run at 1:00, it will invoke
    the target API between 1:00:00 and 1:00:59" (Scheduler user guide, "Schedule types"): a
    schedule at 1:00:30 may run at 1:00:00, so the emulator runs it as early as AWS may."""
    if schedule.state != "ENABLED" or getattr(schedule, _FIRED_AT, None) is not None:
        return None
    at = at_time(schedule.schedule_expression, schedule.schedule_expression_timezone)
    if at is None:
        return None
    # Minutes are the service's, not the emulator's: a schedule moved back by the clock keeps
    # the minute boundaries of the time it was created for.
    moved: timedelta = getattr(schedule, _SHIFTED, timedelta(0))
    return (at + moved).replace(second=0, microsecond=0) - moved


def next_due(session: Any) -> datetime | None:
    """The earliest time a pending one-time schedule is due, or None when none is pending."""
    times = [at for s in _schedules(_backend(session)) if (at := _pending_at(s)) is not None]
    return min(times, default=None)


# -- firing ----------------------------------------------------------------------------------
def fire_due(session: Any, now: datetime | None = None) -> list[Firing]:
    """Fire every schedule due at `now` (default: the real current time), earliest first."""
    moment = now or datetime.now(UTC)
    with _firing:  # the local server's loop and a caller never fire one schedule twice
        backend = _backend(session)
        due = [
            (at, schedule)
            for schedule in _schedules(backend)
            if (at := _pending_at(schedule)) is not None and at <= moment
        ]
        due.sort(key=lambda item: item[0])
        return [
            _fire(session, backend, schedule, _named_time(schedule) or at, moment)
            for at, schedule in due
        ]


def _named_time(schedule: Schedule) -> datetime | None:
    """The time the schedule's at() names (it may fire from the start of that minute)."""
    return at_time(schedule.schedule_expression, schedule.schedule_expression_timezone)


def _fire(
    session: Any,
    backend: EventBridgeSchedulerBackend,
    schedule: Schedule,
    at: datetime,
    now: datetime,
) -> Firing:
    target: dict[str, Any] = schedule.target
    retries = int(
        (target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)
    )
    attempts = 0
    message_id: str | None = None
    failure: _TargetFailed | None = None
    outcome = "delivered"
    try:
        while True:
            attempts += 1
            try:
                message_id = _invoke(session, backend, target)
                failure = None
                break
            except _TargetFailed as exc:
                failure = exc
                if not exc.retryable or attempts > retries:
                    break
    except _Unsupported:
        outcome = "unsupported"
    setattr(schedule, _FIRED_AT, now)
    if failure is not None:
        message_id = _dead_letter(session, schedule, target, at, failure, attempts)
        outcome = "dropped" if message_id is None else "dead-lettered"
    deleted = schedule.action_after_completion == "DELETE" and _delete(backend, schedule)
    return Firing(
        schedule_arn=schedule.arn,
        name=schedule.name,
        group=schedule.group_name,
        scheduled_time=at,
        fired_at=now,
        target_arn=str(target.get("Arn")),
        outcome=outcome,
        attempts=attempts,
        message_id=message_id,
        error_code=failure.code if failure else None,
        error_message=failure.message if failure else None,
        deleted=deleted,
    )


def _invoke(session: Any, backend: EventBridgeSchedulerBackend, target: dict[str, Any]) -> str:
    """Invoke the target once; its message id. Raises _TargetFailed or _Unsupported."""
    injected: deque[str] | None = getattr(backend, _FAILURES, None)
    if injected:
        code = injected.popleft()
        raise _TargetFailed(code, "injected", retryable=code in _RETRYABLE_CODES)
    arn = str(target.get("Arn", ""))
    sqs = session.client("sqs")
    try:
        if arn == SCHEDULER_SQS_SEND_TARGET:
            parameters = json.loads(target.get("Input") or "{}")
            if not isinstance(parameters, dict):
                raise _TargetFailed(
                    "ValidationException", "Input is not a JSON object", retryable=False
                )
            return str(sqs.send_message(**parameters)["MessageId"])
        parts = arn.split(":")
        if len(parts) == 6 and parts[2] == "sqs":
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
            request: dict[str, Any] = {
                "QueueUrl": url["QueueUrl"],
                # Scheduler sends the Input; an empty object when a schedule has none (the
                # emulator's choice: SQS refuses an empty body).
                "MessageBody": target.get("Input") or "{}",
            }
            group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
            if group_id:
                request["MessageGroupId"] = group_id
            return str(sqs.send_message(**request)["MessageId"])
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "ClientError"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        retryable = code in _RETRYABLE_CODES or status >= 500 or status == 429
        raise _TargetFailed(code, str(error.get("Message", "")), retryable=retryable) from exc
    except (ValueError, TypeError) as exc:  # Input that is not JSON, or not SendMessage's
        raise _TargetFailed("ValidationException", str(exc), retryable=False) from exc
    except BotoCoreError as exc:
        # A parameter the SDK refuses is permanent; the network failing is not.
        retryable = type(exc).__name__ not in ("ParamValidationError", "UnknownParameterError")
        code = "ValidationException" if not retryable else "AWS.Scheduler.InternalServerError"
        raise _TargetFailed(code, str(exc), retryable=retryable) from exc
    raise _Unsupported(arn)


def _dead_letter(
    session: Any,
    schedule: Schedule,
    target: dict[str, Any],
    at: datetime,
    failure: _TargetFailed,
    attempts: int,
) -> str | None:
    """Send the dead-letter event to the target's DLQ; its message id, or None."""
    dlq = str((target.get("DeadLetterConfig") or {}).get("Arn") or "")
    parts = dlq.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    values = {
        "ERROR_CODE": failure.code,
        "ERROR_MESSAGE": failure.message or failure.code,
        "EXECUTION_ID": uuid.uuid4().hex[:16],
        "IS_PAYLOAD_TRUNCATED": "false",
        "RETRY_ATTEMPTS": str(attempts - 1),
        "SCHEDULED_TIME": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SCHEDULE_ARN": schedule.arn,
        "TARGET_ARN": str(target.get("Arn")),
    }
    if failure.retryable:
        values["EXHAUSTED_RETRY_CONDITION"] = "MaximumRetryAttempts"
    sqs = session.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
        sent = sqs.send_message(
            QueueUrl=url,
            MessageBody=target.get("Input") or "{}",
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in values.items()
            },
        )
    except (ClientError, BotoCoreError):
        return None
    return str(sent["MessageId"])


def _delete(backend: EventBridgeSchedulerBackend, schedule: Schedule) -> bool:
    group = backend.schedule_groups.get(schedule.group_name)
    if group is None or group.schedules.get(schedule.name) is not schedule:
        return False  # deleted (or replaced) meanwhile
    del group.schedules[schedule.name]
    return True


# -- faults and time -----------------------------------------------------------------------------
def fail_targets(
    account_id: str, region: str, times: int = 1, code: str = "ThrottlingException"
) -> None:
    """The next `times` target invocations of that account and region's schedules fail with
    `code` (retryable when it is a throttle or a server error)."""
    backend = scheduler_backends[account_id][region]
    pending: deque[str] | None = getattr(backend, _FAILURES, None)
    if pending is None:
        pending = deque()
        setattr(backend, _FAILURES, pending)
    pending.extend([code] * times)


def shift(account_id: str, region: str, delta: timedelta) -> int:
    """Move every one-time schedule's time `delta` earlier (the emulator's clock, `clock.py`),
    rounded up to the second so that none fires earlier than its shifted time. Returns how
    many schedules moved."""
    moved = 0
    for schedule in _schedules(scheduler_backends[account_id][region]):
        at = at_time(schedule.schedule_expression, schedule.schedule_expression_timezone)
        if at is None:
            continue
        shifted = at - delta
        if shifted.microsecond:
            shifted = shifted.replace(microsecond=0) + timedelta(seconds=1)
        zone = ZoneInfo(schedule.schedule_expression_timezone or "UTC")
        local = shifted.astimezone(zone)
        schedule.schedule_expression = f"at({local.strftime(_AT_FORMAT)})"
        setattr(schedule, _SHIFTED, getattr(schedule, _SHIFTED, timedelta(0)) + delta)
        moved += 1
    return moved


# -- moto, made to keep and check what Scheduler does --------------------------------------------
def _validate(name: str | None, expression: str | None, action: str | None) -> None:
    if not _NAME.match(name or ""):
        raise ValidationException(
            f"Schedule name {name!r} must be 1 to 64 characters of [0-9a-zA-Z-_.]"
        )
    if not _EXPRESSION.match(expression or ""):
        raise ValidationException(f"Invalid Schedule Expression {expression}.")
    if action not in _ACTIONS_AFTER_COMPLETION:
        raise ValidationException(f"ActionAfterCompletion must be NONE or DELETE, not {action}")


_installed = False


def install() -> None:
    """Patch moto's Scheduler (idempotent)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return
    create = EventBridgeSchedulerBackend.create_schedule
    update = EventBridgeSchedulerResponse.update_schedule

    def create_schedule(self: EventBridgeSchedulerBackend, *args: Any, **kwargs: Any) -> Schedule:
        _validate(
            kwargs.get("name"),
            kwargs.get("schedule_expression"),
            kwargs.get("action_after_completion"),
        )
        self.get_schedule_group(kwargs.get("group_name"))  # ResourceNotFoundException
        return create(self, *args, **kwargs)

    def update_schedule(self: EventBridgeSchedulerResponse) -> str:
        name = self.uri.split("?")[0].split("/")[-1]
        action = self._get_param("ActionAfterCompletion")
        _validate(name, self._get_param("ScheduleExpression"), action)
        answer = update(self)
        # UpdateSchedule replaces the whole schedule: what it omits is reset, not kept.
        schedule = self.scheduler_backend.get_schedule(self._get_param("GroupName"), name)
        schedule.action_after_completion = action
        # `State` is optional in UpdateSchedule and defaults to ENABLED, as in CreateSchedule
        # (Scheduler API reference, UpdateSchedule); moto leaves it unset.
        schedule.state = self._get_param("State") or "ENABLED"
        setattr(schedule, _SHIFTED, timedelta(0))  # its new time is in today's minutes
        if getattr(schedule, _FIRED_AT, None) is not None:
            setattr(schedule, _FIRED_AT, None)  # a new time: it may fire again
        return answer

    EventBridgeSchedulerBackend.create_schedule = create_schedule  # type: ignore[method-assign]
    EventBridgeSchedulerResponse.update_schedule = update_schedule  # type: ignore[method-assign]
    _installed = True
