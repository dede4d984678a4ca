"""EventBridge Scheduler: one one-time schedule per job deadline, sending the deadline's request
to the request queue when it is due.

A schedule is `at(yyyy-mm-ddThh:mm:ss)` in UTC, flexible time window OFF, and deletes itself
after it ran (`ActionAfterCompletion: DELETE`). Its target is Scheduler's universal target for
SQS SendMessage, so the message carries the `source` attribute the sweeper's messages carry
(EventBridge Scheduler user guide, "Using universal targets"; "Configuring a dead-letter queue").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from batch_terminator.contract import SCHEDULER_SQS_SEND_TARGET, SOURCE_ATTRIBUTE, Source
from batch_terminator.logic.deadlines import Deadline

# Scheduler's own retry bounds: at most 185 attempts and 24 hours (RetryPolicy, API reference).
RETRY_ATTEMPTS: Final = 185
MAX_EVENT_AGE_SECONDS: Final = 24 * 3600
REQUESTED_BY: Final = "batch-terminator/deadline"


class SchedulerFailed(Exception):
    """A schedule could not be created: the event is retried (SQS redelivers it)."""


def at_expression(at: datetime) -> str:
    """`at(...)` of a UTC time, rounded up to the next whole minute: Scheduler invokes "with 60
    second precision ... if you set your schedule to run at 1:00, it will invoke the target API
    between 1:00:00 and 1:00:59" (Scheduler user guide, "Schedule types"), so a schedule at
    1:00:30 could fire 30 seconds early. At a whole minute it fires at or after `at`, within
    two minutes of it at worst."""
    utc = at.astimezone(UTC)
    if utc.second or utc.microsecond:
        utc = utc.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"at({utc.strftime('%Y-%m-%dT%H:%M:%S')})"


def _at_of(expression: str) -> datetime | None:
    if not (expression.startswith("at(") and expression.endswith(")")):
        return None
    try:
        return datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@dataclass
class Schedules:
    """`client` a boto3 Scheduler client; schedules go in `group`, run as `role_arn`, send to
    `queue_url` and leave what they cannot deliver in `dead_letter_arn`."""

    client: Any
    group: str
    role_arn: str
    dead_letter_arn: str
    queue_url: str
    created: int = 0
    updated: int = 0
    deleted: int = 0
    calls: int = 0

    def _parameters(self, deadline: Deadline, source: Source) -> dict[str, Any]:
        send = {
            "QueueUrl": self.queue_url,
            "MessageBody": json.dumps(deadline.request(REQUESTED_BY)),
            "MessageAttributes": {
                SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": source.value}
            },
        }
        return {
            "Name": deadline.name,
            "GroupName": self.group,
            "ScheduleExpression": at_expression(deadline.at),
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Description": f"batch-terminator deadline: {deadline.describe()}"[:512],
            "Target": {
                "Arn": SCHEDULER_SQS_SEND_TARGET,
                "RoleArn": self.role_arn,
                "Input": json.dumps(send),
                "RetryPolicy": {
                    "MaximumRetryAttempts": RETRY_ATTEMPTS,
                    "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
                },
                "DeadLetterConfig": {"Arn": self.dead_letter_arn},
            },
        }

    def put(self, deadline: Deadline, source: Source) -> str:
        """Create the deadline's schedule: `created`; or, when one of that name exists (a
        duplicate event, or another rule on the same status), keep the earlier of the two:
        `updated` or `kept`. Raises SchedulerFailed."""
        parameters = self._parameters(deadline, source)
        try:
            self.calls += 1
            self.client.create_schedule(**parameters)
            self.created += 1
            return "created"
        except ClientError as exc:
            if _code(exc) != "ConflictException":
                raise SchedulerFailed(f"CreateSchedule {deadline.name}: {exc}") from exc
        except BotoCoreError as exc:
            raise SchedulerFailed(f"CreateSchedule {deadline.name}: {exc}") from exc
        try:
            self.calls += 1
            existing = self.client.get_schedule(Name=deadline.name, GroupName=self.group)
            current = _at_of(str(existing.get("ScheduleExpression", "")))
            wanted = _at_of(parameters["ScheduleExpression"])
            if current is not None and wanted is not None and current <= wanted:
                return "kept"
            self.calls += 1
            self.client.update_schedule(**parameters)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                # It ran (or was deleted) between the two calls: a retry creates it afresh.
                raise SchedulerFailed(f"schedule {deadline.name} vanished: {exc}") from exc
            raise SchedulerFailed(f"UpdateSchedule {deadline.name}: {exc}") from exc
        except BotoCoreError as exc:
            raise SchedulerFailed(f"UpdateSchedule {deadline.name}: {exc}") from exc
        self.updated += 1
        return "updated"

    def delete(self, names: list[str]) -> list[str]:
        """Delete these schedules, best effort: those that do not exist are fine; returns the
        names that could not be deleted (a stale schedule that fires is judged again by the
        terminator and skipped)."""
        failed: list[str] = []
        for name in names:
            try:
                self.calls += 1
                self.client.delete_schedule(Name=name, GroupName=self.group)
                self.deleted += 1
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    failed.append(name)
            except BotoCoreError:
                failed.append(name)
        return failed
