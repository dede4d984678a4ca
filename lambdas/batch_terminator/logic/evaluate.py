"""Policy evaluation: job snapshots + policies + now → which jobs to terminate, and why.

Pure: no AWS calls, no clock reads. The sweeper and the alarm brake call it with what they
listed; `batch-terminator plan` calls it with the same input and prints the result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from batch_terminator.contract import JobStatus
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
# The per-job tag limit measures runtime: since startedAt.
TAG_LIMIT_STATUSES = (JobStatus.STARTING, JobStatus.RUNNING)


@dataclass(frozen=True)
class Scheduled:
    """A sweep: scheduled policies and per-job tag limits apply."""


@dataclass(frozen=True)
class AlarmFired:
    """An alarm entered ALARM: the policies it triggers apply."""

    alarm_name: str


Trigger = Scheduled | AlarmFired


@dataclass(frozen=True)
class Selection:
    """One job (or whole array) a policy terminates, with the measured age and the exact reason."""

    job: JobSnapshot
    policy: str
    age: timedelta
    limit: timedelta | None
    reason: str
    dry_run: bool
    # Children of an array terminated through their parent (empty for plain jobs).
    children: tuple[JobSnapshot, ...] = ()


@dataclass
class PolicyCount:
    matched: int = 0
    selected: int = 0
    capped: int = 0
    cap: int = 0

    @property
    def cap_reached(self) -> bool:
        return self.capped > 0


@dataclass
class Evaluation:
    selections: list[Selection] = field(default_factory=list)
    counts: dict[str, PolicyCount] = field(default_factory=dict)
    evaluated: int = 0
    protected: int = 0
    not_allowed: int = 0
    invalid_tags: dict[str, str] = field(default_factory=dict)

    @property
    def capped_policies(self) -> dict[str, int]:
        return {name: c.capped for name, c in self.counts.items() if c.cap_reached}


@dataclass(frozen=True)
class _Match:
    job: JobSnapshot
    age: timedelta


def applicable_policies(policies: PoliciesFile, trigger: Trigger) -> list[Policy]:
    if isinstance(trigger, AlarmFired):
        return [
            p
            for p in policies.policies
            if p.trigger is not None
            and any(fnmatchcase(trigger.alarm_name, a) for a in p.trigger.alarms)
        ]
    return [p for p in policies.policies if p.is_scheduled]


def age_of(job: JobSnapshot, now: datetime) -> timedelta | None:
    since = job.age_since
    return None if since is None else now - since


def policy_matches(
    policy: Policy, job: JobSnapshot, age: timedelta, *, tags_known: bool = True
) -> bool:
    """Every condition the policy gives must hold; with `tags_known=False`, tag conditions pass
    (used to pick the jobs worth describing before the tags are known)."""
    match, when = policy.match, policy.when
    if job.status not in when.status:
        return False
    if when.older_than is not None and not age > when.older_than:
        return False
    if match.job_queues is not None and not queue_matches(job.job_queue, match.job_queues):
        return False
    if match.job_definitions is not None and not job_definition_matches(
        job.job_definition, match.job_definitions
    ):
        return False
    if match.job_names is not None and not matches_any(job.job_name, match.job_names):
        return False
    if match.tags is not None and tags_known:
        return job.tags is not None and tags_match(job.tags, match.tags)
    return True


def tag_limit(job: JobSnapshot) -> timedelta | None:
    """The job's own `batch-terminator:max-runtime` limit; raises ValueError when it is malformed."""
    if job.tags is None or TAG_LIMIT_KEY not in job.tags:
        return None
    return parse_duration(job.tags[TAG_LIMIT_KEY])


def worth_describing(
    job: JobSnapshot, policies: PoliciesFile, trigger: Trigger, now: datetime
) -> bool:
    """Could this listed job be selected once its tags are known? Decides which jobs to describe."""
    if not queue_matches(job.job_queue, policies.settings.job_queues):
        return False
    age = age_of(job, now)
    if age is None:
        return False
    if (
        isinstance(trigger, Scheduled)
        and policies.settings.max_runtime_tag
        and job.status in TAG_LIMIT_STATUSES
    ):
        return True
    return any(
        policy_matches(p, job, age, tags_known=False)
        for p in applicable_policies(policies, trigger)
    )


def evaluate(
    jobs: Iterable[JobSnapshot], policies: PoliciesFile, now: datetime, trigger: Trigger
) -> Evaluation:
    """Each job is claimed by at most one policy: its own tag limit first, then policies in file
    order. Per policy, matches are ordered (oldest-first by default) and cut at maxPerRun.
    Array parents are judged by their children: a parent is selected when every unfinished child
    matches the same policy, and then counts once; otherwise matching children count one each."""
    settings = policies.settings
    result = Evaluation()
    active = applicable_policies(policies, trigger)
    use_tag_limits = isinstance(trigger, Scheduled) and settings.max_runtime_tag
    matches: dict[str, list[_Match]] = defaultdict(list)
    claimed_by: dict[str, str] = {}
    parents: dict[str, JobSnapshot] = {}
    children: dict[str, list[JobSnapshot]] = defaultdict(list)

    for job in jobs:
        if job.array_size:
            parents[job.job_id] = job
            continue  # judged through its children
        if job.status.is_final:
            continue
        result.evaluated += 1
        if job.array_parent_id:
            children[job.array_parent_id].append(job)
        if job.tags is not None and settings.protect_tag in job.tags:
            result.protected += 1
            continue
        if not queue_matches(job.job_queue, settings.job_queues):
            result.not_allowed += 1
            continue
        age = age_of(job, now)
        if age is None:
            continue
        policy_name = _claim(job, age, active, use_tag_limits, result)
        if policy_name is not None:
            claimed_by[job.job_id] = policy_name
            matches[policy_name].append(_Match(job, age))

    _collapse_arrays(parents, children, claimed_by, matches)
    limits = {p.name: p for p in active}
    for policy_name, found in matches.items():
        policy = limits.get(policy_name)
        cap = policy.max_per_run if policy is not None else TAG_LIMIT_CAP
        newest_first = policy is not None and policy.order == "newest-first"
        ordered = sorted(found, key=lambda m: (m.age, m.job.job_id), reverse=not newest_first)
        count = result.counts.setdefault(policy_name, PolicyCount(cap=cap))
        count.matched += len(ordered)
        kept = ordered[:cap]
        count.selected += len(kept)
        count.capped += len(ordered) - len(kept)
        for match in kept:
            result.selections.append(_select(match, policy, policies, children))
    for policy in active:
        result.counts.setdefault(policy.name, PolicyCount(cap=policy.max_per_run))
    return result


# A job's own limit is its owner's request, but a mass mis-tag must not empty a fleet either.
TAG_LIMIT_CAP = 500


def _claim(
    job: JobSnapshot,
    age: timedelta,
    active: Sequence[Policy],
    use_tag_limits: bool,
    result: Evaluation,
) -> str | None:
    if use_tag_limits and job.status in TAG_LIMIT_STATUSES:
        try:
            limit = tag_limit(job)
        except ValueError:
            result.invalid_tags[job.job_id] = (job.tags or {}).get(TAG_LIMIT_KEY, "")
            limit = None
        if limit is not None and age > limit:
            return TAG_LIMIT_POLICY
    return next((p.name for p in active if policy_matches(p, job, age)), None)


def _collapse_arrays(
    parents: dict[str, JobSnapshot],
    children: dict[str, list[JobSnapshot]],
    claimed_by: dict[str, str],
    matches: dict[str, list[_Match]],
) -> None:
    """Replace an array's matching children by their parent when all of them match one policy."""
    for parent_id, kids in children.items():
        parent = parents.get(parent_id)
        claims = {claimed_by.get(kid.job_id) for kid in kids}
        if parent is None or len(claims) != 1 or None in claims:
            continue
        (policy_name,) = claims
        assert policy_name is not None
        kid_ids = {kid.job_id for kid in kids}
        kept = [m for m in matches[policy_name] if m.job.job_id not in kid_ids]
        youngest = min(m.age for m in matches[policy_name] if m.job.job_id in kid_ids)
        matches[policy_name] = [*kept, _Match(parent, youngest)]


def _select(
    match: _Match,
    policy: Policy | None,
    policies: PoliciesFile,
    children: dict[str, list[JobSnapshot]],
) -> Selection:
    job, age = match.job, match.age
    kids = tuple(children.get(job.job_id, ())) if job.array_size else ()
    if policy is None:
        limit = tag_limit(job) if not kids else tag_limit(kids[0])
        assert limit is not None
        subject = f"tag {TAG_LIMIT_KEY}={format_limit(limit)}"
        name, dry_run = TAG_LIMIT_POLICY, policies.settings.dry_run
    else:
        limit = policy.when.older_than
        subject = f"policy {policy.name}"
        name, dry_run = policy.name, policies.settings.dry_run or policy.dry_run
    status = kids[0].status.value if kids else job.status.value
    what = f"array of {len(kids)} jobs {status}" if kids else status
    measured = (
        f"{format_duration(age)} > {format_limit(limit)}"
        if limit is not None
        else format_duration(age)
    )
    reason = f"{REASON_PREFIX}: {subject}: {what} {measured}"
    return Selection(job, name, age, limit, reason, dry_run, kids)
