"""Per-job deadlines: when a scheduled policy (or the job's max-runtime tag) will select a job in
its current status and attempt, if nothing changes. Pure.

A deadline is the first whole second at which the same rule the sweep and the terminator apply
(`rule_selects`) selects the job: age in status must be *over* the limit, so a schedule at that
second fires at or after the limit is passed, never before. Every rule that limits the job gets
its own deadline: the earliest may come to nothing (a dry-run policy, a blocked reason that
cleared), and the next must still fire. Each deadline is named per job, status, attempt and
rule, so a duplicate event lands on the same schedule, and a job that moves on leaves names that
can be found and deleted.

Array parents and multi-node nodes get no deadline: children have their own events and deadlines,
a node is stopped with its job, and a parent stands for its children only in the sweep, which
judges the whole family.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from batch_terminator.contract import ACTIVE_STATUSES, JobStatus
from batch_terminator.logic.ages import status_entered_at
from batch_terminator.logic.durations import format_duration
from batch_terminator.logic.matching import queue_matches
from batch_terminator.logic.rules import reason_text, rule_selects, tag_limit
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import TAG_LIMIT_POLICY, PoliciesFile

# EventBridge Scheduler: a schedule name is 1 to 64 characters of [0-9a-zA-Z-_.]
# (Scheduler API reference, CreateSchedule, `Name`).
SCHEDULE_NAME_MAX: Final = 64
_NAME_CHARACTERS: Final = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")
SCHEDULE_PREFIX: Final = "bt"
# Statuses in the order a job passes them in one attempt; a retry goes back to RUNNABLE.
_ORDER: Final = {s: i for i, s in enumerate(ACTIVE_STATUSES)}
_RETRIED_STATUSES: Final = (JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING)
ONE_SECOND: Final = timedelta(seconds=1)


@dataclass(frozen=True)
class Deadline:
    """The earliest rule that will select `job`: at `at` (UTC, a whole second), `rule` (a
    policy's name, or `max-runtime-tag`) selects it for being in `status` over `limit`."""

    job: JobSnapshot
    rule: str
    at: datetime
    limit: timedelta
    status: JobStatus
    attempt: int
    dry_run: bool

    @property
    def name(self) -> str:
        return schedule_name(self.job.job_id, self.status, self.attempt, self.rule)

    @property
    def reason(self) -> str:
        tag = self.limit if self.rule == TAG_LIMIT_POLICY else None
        return reason_text(self.rule, (self.status,), self.limit, tag_limit_value=tag)

    def request(self, requested_by: str) -> dict[str, Any]:
        """The request a schedule (or, when already due, the deadline function) sends: the
        terminator re-reads the job and acts only if it is still in `status` and the rule still
        selects it."""
        request: dict[str, Any] = {
            "jobId": self.job.job_id,
            "reason": self.reason,
            "policy": self.rule,
            "ifStatus": [self.status.value],
            "requestId": self.name,
            "requestedBy": requested_by,
        }
        if self.dry_run:
            request["dryRun"] = True
        return request

    def describe(self) -> str:
        return f"{self.rule}: {self.status.value} over {format_duration(self.limit)}"


def rule_tag(rule: str) -> str:
    """Six hex digits of the rule's name: names stay under 64 characters, and a schedule keeps
    its name when policies are reordered."""
    return hashlib.sha256(rule.encode()).hexdigest()[:6]


def schedule_name(job_id: str, status: JobStatus, attempt: int, rule: str) -> str:
    """`bt-<job id>-<status>-<attempt>-<rule tag>`; an array child's `:` becomes `.` (job ids
    are UUIDs, so the mapping is one to one). Raises ValueError when the id cannot make a valid
    name."""
    name = (
        f"{SCHEDULE_PREFIX}-{job_id.replace(':', '.')}-{status.value.lower()}-{attempt}"
        f"-{rule_tag(rule)}"
    )
    if not _NAME_CHARACTERS.fullmatch(name):
        raise ValueError(f"job id {job_id!r} cannot name a schedule")
    return name


def _first_second_over(entered: datetime, limit: timedelta) -> datetime:
    """The first whole second strictly after `entered + limit`."""
    boundary = entered + limit
    return boundary.replace(microsecond=0) + ONE_SECOND


def deadlines(job: JobSnapshot, policies: PoliciesFile) -> list[Deadline]:
    """Every rule's deadline for a described job in its current status, earliest first (ties in
    file order); none when the job is protected, already being stopped, an array parent or a
    node, or its age is unknown. A malformed max-runtime tag gives no tag deadline."""
    if (
        not job.described
        or job.status.is_final
        or job.termination_in_progress
        or job.is_array_parent
        or job.main_node_job_id is not None
        or (job.tags is not None and policies.settings.protect_tag in job.tags)
    ):
        return []
    entered = status_entered_at(job)
    if entered is None:
        return []
    found: list[tuple[datetime, int, str, timedelta, bool]] = []
    for index, policy in enumerate(policies.policies):
        limit = policy.when.older_than
        if not policy.is_scheduled or limit is None or job.status not in policy.when.status:
            continue
        at = _first_second_over(entered, limit)
        if rule_selects(policy.name, job, policies, at).selected:
            found.append((at, index, policy.name, limit, policy.dry_run))
    if policies.settings.max_runtime_tag and job.status is JobStatus.RUNNING:
        try:
            own = tag_limit(job)
        except ValueError:
            own = None
        if own is not None:
            at = _first_second_over(entered, own)
            if rule_selects(TAG_LIMIT_POLICY, job, policies, at).selected:
                found.append((at, len(policies.policies), TAG_LIMIT_POLICY, own, False))
    return [
        Deadline(
            job=job,
            rule=rule,
            at=at,
            limit=limit,
            status=job.status,
            attempt=job.attempt,
            dry_run=dry_run or policies.settings.dry_run,
        )
        for at, _, rule, limit, dry_run in sorted(found)
    ]


def deadline(job: JobSnapshot, policies: PoliciesFile) -> Deadline | None:
    """The earliest of `deadlines`, or None."""
    return next(iter(deadlines(job, policies)), None)


def limiting_rules(policies: PoliciesFile) -> tuple[tuple[JobStatus, str, list[str] | None], ...]:
    """(status, rule, the rule's queue patterns) for every status a scheduled rule limits."""
    rules = [
        (status, policy.name, policy.match.job_queues)
        for policy in policies.policies
        if policy.is_scheduled and policy.when.older_than is not None
        for status in policy.when.status
    ]
    if policies.settings.max_runtime_tag:
        rules.append((JobStatus.RUNNING, TAG_LIMIT_POLICY, None))
    return tuple(rules)


def stale_schedule_names(
    job: JobSnapshot, rules: Iterable[tuple[JobStatus, str, list[str] | None]]
) -> list[str]:
    """Names of the schedules this job may have left behind in earlier statuses (`rules` from
    `limiting_rules`): the statuses before its current one in this attempt, and those of the
    previous attempt (a retry goes back to RUNNABLE). For a finished job, every status of the
    attempt it ended in. Rules whose queues the job is not in are left out."""
    attempt = job.attempt
    known = job.job_queue
    mine = [
        (status, rule)
        for status, rule, queues in rules
        if queues is None or known is None or queue_matches(known, queues)
    ]
    names: list[str] = []
    if job.status.is_final:
        # It ended in its last listed attempt if that attempt's stop is the job's; else before
        # running again (cancelled from RUNNABLE, say), in the attempt after it. The earlier
        # attempts' schedules went when it was retried.
        last = job.attempts[-1].stopped_at if job.attempts else None
        ended = attempt - 1 if last is not None and last == job.stopped_at else attempt
        return [schedule_name(job.job_id, s, max(ended, 0), r) for s, r in mine]
    here = _ORDER[job.status]
    names.extend(schedule_name(job.job_id, s, attempt, r) for s, r in mine if _ORDER[s] < here)
    if attempt > 0:
        names.extend(
            schedule_name(job.job_id, s, attempt - 1, r) for s, r in mine if s in _RETRIED_STATUSES
        )
    return list(dict.fromkeys(names))
