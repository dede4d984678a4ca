"""The EventBridge patterns of the events the product consumes, derived from the policies. Pure.

Used by the stack's rules and by the emulator's, so unrelated events never invoke a function:
what a pattern can filter (statuses, queues, alarm names, the ALARM state) is filtered there;
the functions still check everything in code.

EventBridge content filters: exact strings, and `{"wildcard": "..."}` where `*` matches any
characters (EventBridge user guide, "Content filtering in Amazon EventBridge event patterns").
There is no `?` or `[...]`: a glob that uses them cannot be filtered by the rule.
"""

from __future__ import annotations

from typing import Any

from batch_terminator.contract import (
    ALARM_STATE_CHANGE,
    BATCH_EVENT_SOURCE,
    CLOUDWATCH_EVENT_SOURCE,
    JOB_QUEUE_BLOCKED,
    JOB_STATE_CHANGE,
    JobStatus,
)
from batch_terminator.logic.matching import is_arn
from batch_terminator.models.policies import PoliciesFile

# A queue name pattern, matched against the ARN that events carry (`detail.jobQueue`).
_QUEUE_ARN_OF_NAME = "arn:*:batch:*:*:job-queue/{}"
# Final statuses: schedules are deleted, and a terminated job's FAILED confirms the termination.
FINAL_EVENT_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def limited_statuses(policies: PoliciesFile) -> tuple[JobStatus, ...]:
    """Statuses that some scheduled policy limits by age (or a max-runtime tag, RUNNING)."""
    statuses = {
        s for p in policies.policies if p.is_scheduled and p.when.older_than for s in p.when.status
    }
    if policies.settings.max_runtime_tag:
        statuses.add(JobStatus.RUNNING)
    return tuple(s for s in JobStatus if s in statuses)


def _filter(pattern: str) -> str | dict[str, str] | None:
    """One EventBridge value filter for a glob, or None when the glob cannot be expressed."""
    if any(c in pattern for c in "?[]"):
        return None
    return {"wildcard": pattern} if "*" in pattern else pattern


def queue_filter(policies: PoliciesFile) -> list[Any] | None:
    """The `detail.jobQueue` filter for `settings.jobQueues`, or None for "every queue" (a `*`,
    or a glob an event pattern cannot express)."""
    values: list[Any] = []
    for pattern in policies.settings.job_queues:
        arn_pattern = pattern if is_arn(pattern) else _QUEUE_ARN_OF_NAME.format(pattern)
        if pattern == "*":
            return None
        value = _filter(arn_pattern)
        if value is None:
            return None
        values.append(value)
    return values


def job_state_change_pattern(policies: PoliciesFile) -> dict[str, Any]:
    """Batch Job State Change events of the statuses some policy limits, and the final ones."""
    statuses = [s.value for s in (*limited_statuses(policies), *FINAL_EVENT_STATUSES)]
    detail: dict[str, Any] = {"status": statuses}
    queues = queue_filter(policies)
    if queues is not None:
        detail["jobQueue"] = queues
    return {"source": [BATCH_EVENT_SOURCE], "detail-type": [JOB_STATE_CHANGE], "detail": detail}


def job_queue_blocked_pattern(policies: PoliciesFile) -> dict[str, Any]:
    """Batch Job Queue Blocked events of the allowed queues."""
    pattern: dict[str, Any] = {"source": [BATCH_EVENT_SOURCE], "detail-type": [JOB_QUEUE_BLOCKED]}
    queues = queue_filter(policies)
    if queues is not None:
        pattern["detail"] = {"jobQueue": queues}
    return pattern


def alarm_names(policies: PoliciesFile) -> list[str]:
    """Every alarm name (or `*` glob) that some policy's trigger names, in file order."""
    return _trigger_names(policies, "alarms")


def budget_names(policies: PoliciesFile) -> list[str]:
    """Every budget name that some policy's trigger names, in file order."""
    return _trigger_names(policies, "budgets")


def _trigger_names(policies: PoliciesFile, kind: str) -> list[str]:
    names: dict[str, None] = {}
    for policy in policies.policies:
        if policy.trigger is not None:
            names.update(dict.fromkeys(getattr(policy.trigger, kind) or []))
    return list(names)


def alarm_state_change_pattern(policies: PoliciesFile) -> dict[str, Any] | None:
    """CloudWatch Alarm State Change events into ALARM of the alarms that policies name; None
    when no policy names an alarm (the stack then creates no rule)."""
    names = alarm_names(policies)
    if not names:
        return None
    # Trigger validation admits `*` only, which every pattern expresses.
    filters = [f for name in names if (f := _filter(name)) is not None]
    return {
        "source": [CLOUDWATCH_EVENT_SOURCE],
        "detail-type": [ALARM_STATE_CHANGE],
        "detail": {"alarmName": filters, "state": {"value": ["ALARM"]}},
    }
