"""Would a policy (or a job's own max-runtime tag) select this job now? Pure.

The sweeper asks it of every described job; the terminator asks it again, on the job's fresh
DescribeJobs state, before it acts on a request that names a policy. Decisions are made on
described facts only (`JobSnapshot.described`); `could_select` is the cheap question asked of
ListJobs summaries to choose which jobs to describe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from batch_terminator.contract import JobStatus
from batch_terminator.logic.ages import age_in_status, at_most_age
from batch_terminator.logic.durations import format_duration, format_limit, parse_duration
from batch_terminator.logic.matching import (
    job_definition_matches,
    matches_any,
    queue_matches,
    tags_match,
)
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import TAG_LIMIT_KEY, TAG_LIMIT_POLICY, PoliciesFile, Policy

REASON_PREFIX = "batch-terminator"
# The per-job tag limit is a runtime limit: RUNNING, since startedAt of the current attempt.
TAG_LIMIT_STATUSES = (JobStatus.RUNNING,)


@dataclass(frozen=True)
class Scheduled:
    """A sweep: scheduled policies and per-job tag limits apply."""


@dataclass(frozen=True)
class AlarmFired:
    """A CloudWatch alarm entered ALARM: the policies whose trigger names it apply."""

    alarm_name: str


@dataclass(frozen=True)
class BudgetAlerted:
    """An AWS Budgets alert named this budget: the policies whose trigger names it apply."""

    budget_name: str


Trigger = Scheduled | AlarmFired | BudgetAlerted


@dataclass(frozen=True)
class Judgement:
    """Whether a rule selects a job, the age it measured, and why not when it does not."""

    selected: bool
    age: timedelta | None = None
    limit: timedelta | None = None
    why_not: str | None = None


def applicable_policies(policies: PoliciesFile, trigger: Trigger) -> list[Policy]:
    if isinstance(trigger, AlarmFired):
        return [
            p
            for p in policies.policies
            if p.trigger is not None
            and any(fnmatchcase(trigger.alarm_name, a) for a in p.trigger.alarms or [])
        ]
    if isinstance(trigger, BudgetAlerted):
        # Exact names only: a budget alert is prose, and a guess could brake the wrong queues.
        return [
            p
            for p in policies.policies
            if p.trigger is not None and trigger.budget_name in (p.trigger.budgets or [])
        ]
    return [p for p in policies.policies if p.is_scheduled]


def _not(why: str, age: timedelta | None = None) -> Judgement:
    return Judgement(False, age=age, why_not=why)


def policy_selects(policy: Policy, job: JobSnapshot, now: datetime) -> Judgement:
    """Every condition the policy gives must hold on the job's described facts."""
    match, when = policy.match, policy.when
    if not job.described:
        return _not("facts unknown: DescribeJobs did not return the job")
    if job.status not in when.status:
        wanted = ", ".join(s.value for s in when.status)
        return _not(f"status {job.status.value} is not in [{wanted}]")
    if match.job_queues is not None and (
        job.job_queue is None or not queue_matches(job.job_queue, match.job_queues)
    ):
        return _not(f"queue {job.job_queue} does not match")
    if match.job_definitions is not None and (
        job.job_definition is None
        or not job_definition_matches(job.job_definition, match.job_definitions)
    ):
        return _not(f"job definition {job.job_definition} does not match")
    if match.job_names is not None and not matches_any(job.job_name, match.job_names):
        return _not(f"job name {job.job_name} does not match")
    if match.tags is not None and (job.tags is None or not tags_match(job.tags, match.tags)):
        return _not("tags do not match")
    if when.status_reasons is not None and not reason_matches(job, when.status_reasons):
        return _not(f"status reason {job.status_reason!r} does not match")
    age = age_in_status(job, now)
    limit = when.older_than
    if limit is not None:
        if age is None:
            return _not(f"age in {job.status.value} unknown: Batch does not give it")
        if not age > limit:
            return _not(
                f"{job.status.value} {format_duration(age)} is not over {format_limit(limit)}",
                age,
            )
    return Judgement(True, age=age, limit=limit)


def reason_matches(job: JobSnapshot, patterns: Iterable[str]) -> bool:
    """Globs over the whole statusReason text; a job without one matches nothing."""
    return job.status_reason is not None and matches_any(job.status_reason, patterns)


def tag_limit(job: JobSnapshot) -> timedelta | None:
    """The job's own `batch-terminator:max-runtime` limit; raises ValueError when malformed."""
    if job.tags is None or TAG_LIMIT_KEY not in job.tags:
        return None
    return parse_duration(job.tags[TAG_LIMIT_KEY])


def tag_limit_selects(job: JobSnapshot, now: datetime) -> Judgement:
    """A RUNNING job past its own max-runtime tag. A malformed tag selects nothing."""
    if not job.described:
        return _not("facts unknown: DescribeJobs did not return the job")
    if job.status not in TAG_LIMIT_STATUSES:
        return _not(f"status {job.status.value} is not RUNNING")
    try:
        limit = tag_limit(job)
    except ValueError as exc:
        return _not(f"tag {TAG_LIMIT_KEY} is malformed: {exc}")
    if limit is None:
        return _not(f"the job has no tag {TAG_LIMIT_KEY}")
    age = age_in_status(job, now)
    if age is None:
        return _not("age in RUNNING unknown: Batch does not give it")
    if not age > limit:
        return _not(f"RUNNING {format_duration(age)} is not over {format_limit(limit)}", age)
    return Judgement(True, age=age, limit=limit)


def rule_selects(
    policy_name: str, job: JobSnapshot, policies: PoliciesFile, now: datetime
) -> Judgement:
    """The re-check the terminator makes for a request that names a policy."""
    if policy_name == TAG_LIMIT_POLICY:
        if not policies.settings.max_runtime_tag:
            return _not("settings.maxRuntimeTag is off")
        return tag_limit_selects(job, now)
    policy = policies.policy(policy_name)
    if policy is None:
        return _not(f"policy {policy_name} is not in the deployed policies")
    return policy_selects(policy, job, now)


def could_select(policy: Policy, job: JobSnapshot, now: datetime) -> bool:
    """Might the policy select this listed job once it is described? Unknown facts pass; only
    what the summary does tell can rule a job out (its status, name, and an upper bound of its
    age, since no status is entered before the job was created)."""
    if not could_match(policy, job):
        return False
    bound = at_most_age(job, now)
    older_than = policy.when.older_than
    return older_than is None or bound is None or bound > older_than


def could_match(policy: Policy, job: JobSnapshot) -> bool:
    """Might the policy select this job at some time, in its status? Every fact the source
    gave counts (age aside); unknown facts pass."""
    match, when = policy.match, policy.when
    if job.status not in when.status:
        return False
    if (
        match.job_queues is not None
        and job.job_queue is not None
        and not queue_matches(job.job_queue, match.job_queues)
    ):
        return False
    if (
        match.job_definitions is not None
        and job.job_definition is not None
        and not job_definition_matches(job.job_definition, match.job_definitions)
    ):
        return False
    if match.job_names is not None and not matches_any(job.job_name, match.job_names):
        return False
    return not (
        when.status_reasons is not None
        and job.status_reason is not None
        and not reason_matches(job, when.status_reasons)
    )


def reason_text(
    policy_name: str,
    statuses: Iterable[JobStatus],
    limit: timedelta | None,
    *,
    tag_limit_value: timedelta | None = None,
) -> str:
    """The statusReason Batch records: per policy, status and limit, never per job, so one bulk
    call carries up to 50 jobs (each job's measured age is in its audit line)."""
    subject = (
        f"tag {TAG_LIMIT_KEY}={format_limit(tag_limit_value)}"
        if policy_name == TAG_LIMIT_POLICY and tag_limit_value is not None
        else f"policy {policy_name}"
    )
    what = ", ".join(sorted({s.value for s in statuses}))
    measured = f" > {format_limit(limit)}" if limit is not None else ""
    return f"{REASON_PREFIX}: {subject}: {what}{measured}"
