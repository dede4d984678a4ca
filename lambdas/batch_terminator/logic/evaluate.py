"""Policy evaluation: described jobs + array families + policies + now → what to terminate, why.

Pure: no AWS calls, no clock reads. The sweeper (and later the brake) calls it with what it
listed and described; `batch-terminator plan` calls it with the same input and prints the result.

- Each job is claimed by at most one rule: its own max-runtime tag first, then the policies in
  file order. Only described facts decide (`rules.py`).
- Protected jobs, jobs outside `settings.jobQueues`, and jobs Batch is already terminating (they
  linger in their status for a while) are never claimed, so they never use up a cap.
- An array parent is selected as a whole only when every unfinished child is claimed by the same
  rule (`arrays.py`); otherwise its claimed children are selected one by one.
- Per rule, selections are ordered (oldest first by default) and cut at `maxPerRun` jobs, an
  array counting as its unfinished children.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from batch_terminator.contract import JobStatus
from batch_terminator.logic.arrays import ArrayFamily, resolve
from batch_terminator.logic.matching import queue_matches
from batch_terminator.logic.rules import (
    AlarmFired,
    Judgement,
    Scheduled,
    Trigger,
    applicable_policies,
    policy_selects,
    reason_text,
    tag_limit,
    tag_limit_selects,
)
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import (
    TAG_LIMIT_CAP,
    TAG_LIMIT_KEY,
    TAG_LIMIT_POLICY,
    PoliciesFile,
    Policy,
)

__all__ = [
    "TAG_LIMIT_CAP",
    "AlarmFired",
    "Evaluation",
    "PolicyCount",
    "Scheduled",
    "Selection",
    "evaluate",
]


@dataclass(frozen=True)
class Selection:
    """One job, or a whole array, that a rule terminates, with what it was decided on."""

    job: JobSnapshot
    policy: str
    age: timedelta | None
    limit: timedelta | None
    reason: str
    dry_run: bool
    # The statuses the decision was made in: the job's, or its unfinished children's.
    statuses: tuple[JobStatus, ...]
    # A whole array: the unfinished children its parent's termination stops.
    children: tuple[JobSnapshot, ...] = ()

    @property
    def size(self) -> int:
        """How many jobs it terminates: what caps count."""
        return len(self.children) or 1


@dataclass
class PolicyCount:
    """Per rule, in jobs: matched, selected (up to the cap), and left for a later run."""

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
    terminating: int = 0
    # Listed jobs whose facts DescribeJobs did not give: never selected.
    unknown: int = 0
    invalid_tags: dict[str, str] = field(default_factory=dict)
    # A job whose judging raised: reported, and the rest of the run goes on.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def capped_policies(self) -> dict[str, int]:
        return {name: c.capped for name, c in self.counts.items() if c.cap_reached}


@dataclass(frozen=True)
class _Claim:
    rule: str
    judgement: Judgement


@dataclass(frozen=True)
class _Candidate:
    """What a rule would select before its cap: one job, or a whole array."""

    job: JobSnapshot
    age: timedelta | None
    statuses: tuple[JobStatus, ...]
    children: tuple[JobSnapshot, ...] = ()
    claims: tuple[_Claim, ...] = ()
    # A whole array: its children as candidates of their own, for when it does not fit a cap.
    pieces: tuple[_Candidate, ...] = ()


def evaluate(
    jobs: Iterable[JobSnapshot],
    families: Iterable[ArrayFamily],
    policies: PoliciesFile,
    now: datetime,
    trigger: Trigger,
) -> Evaluation:
    """`jobs`: plain jobs and multi-node jobs, described (summaries are counted as unknown);
    `families`: every array parent with all the children DescribeJobs returned."""
    result = Evaluation()
    active = applicable_policies(policies, trigger)
    use_tag_limits = isinstance(trigger, Scheduled) and policies.settings.max_runtime_tag
    by_rule: dict[str, list[_Candidate]] = defaultdict(list)

    def claim(job: JobSnapshot) -> _Claim | None:
        try:
            return _claim(job, active, use_tag_limits, policies, now, result)
        except Exception as exc:  # one job's facts must never stop a sweep
            result.errors[job.job_id] = f"{type(exc).__name__}: {exc}"
            return None

    for job in jobs:
        if job.is_array_parent or job.array_parent_id:
            continue  # arrays are judged as families
        found = claim(job)
        if found is not None:
            by_rule[found.rule].append(
                _Candidate(job, found.judgement.age, (job.status,), claims=(found,))
            )
    for family in families:
        resolution = resolve(family, claim, lambda c: c is not None)
        pieces = [
            _Candidate(child, found.judgement.age, (child.status,), claims=(found,))
            for child in resolution.unfinished
            if (found := resolution.verdicts[child.job_id]) is not None
        ]
        # One reason for the whole array: one rule, one limit (tag limits may differ per child).
        keys = {(p.claims[0].rule, p.claims[0].judgement.limit) for p in pieces}
        if resolution.whole and len(keys) == 1:
            ages = [p.age for p in pieces if p.age is not None]
            by_rule[pieces[0].claims[0].rule].append(
                _Candidate(
                    family.parent,
                    min(ages, default=None),
                    tuple(sorted({p.job.status for p in pieces})),
                    tuple(p.job for p in pieces),
                    tuple(c for p in pieces for c in p.claims),
                    pieces=tuple(pieces),
                )
            )
            continue
        for piece in pieces:
            by_rule[piece.claims[0].rule].append(piece)

    rules_by_name = {p.name: p for p in active}
    for rule, candidates in by_rule.items():
        policy = rules_by_name.get(rule)
        _select(rule, policy, candidates, policies, result)
    for policy in active:
        result.counts.setdefault(policy.name, PolicyCount(cap=policy.max_per_run))
    return result


def _claim(
    job: JobSnapshot,
    active: Sequence[Policy],
    use_tag_limits: bool,
    policies: PoliciesFile,
    now: datetime,
    result: Evaluation,
) -> _Claim | None:
    if job.status.is_final:
        return None
    result.evaluated += 1
    if not job.described or job.tags is None:  # unknown tags are never "no protect tag"
        result.unknown += 1
        return None
    if policies.settings.protect_tag in job.tags:
        result.protected += 1
        return None
    if job.job_queue is None or not queue_matches(job.job_queue, policies.settings.job_queues):
        result.not_allowed += 1
        return None
    if job.termination_in_progress:
        result.terminating += 1
        return None
    if use_tag_limits and job.tags is not None and TAG_LIMIT_KEY in job.tags:
        judged = tag_limit_selects(job, now)
        if judged.selected:
            return _Claim(TAG_LIMIT_POLICY, judged)
        try:
            tag_limit(job)
        except ValueError:
            result.invalid_tags[job.job_id] = job.tags[TAG_LIMIT_KEY]
    for policy in active:
        judged = policy_selects(policy, job, now)
        if judged.selected:
            return _Claim(policy.name, judged)
    return None


def _select(
    rule: str,
    policy: Policy | None,
    candidates: list[_Candidate],
    policies: PoliciesFile,
    result: Evaluation,
) -> None:
    """Order the rule's candidates and keep up to its cap in jobs; an array that does not fit
    whole gives way to as many of its children as fit."""
    cap = policy.max_per_run if policy is not None else TAG_LIMIT_CAP
    newest_first = policy is not None and policy.order == "newest-first"
    count = result.counts.setdefault(rule, PolicyCount(cap=cap))
    room = cap

    def order(items: list[_Candidate]) -> list[_Candidate]:
        known = [c for c in items if c.age is not None]
        unknown = [c for c in items if c.age is None]  # alarm policies need no age
        known.sort(key=lambda c: (c.age, c.job.job_id), reverse=not newest_first)
        return known + sorted(unknown, key=lambda c: c.job.job_id)

    for candidate in order(candidates):
        size = len(candidate.children) or 1
        count.matched += size
        if size <= room:
            room -= size
            count.selected += size
            result.selections.append(_selection(rule, policy, candidate, policies))
            continue
        if candidate.children and room > 0:
            pieces = order(list(candidate.pieces))[:room]
            for piece in pieces:
                result.selections.append(_selection(rule, policy, piece, policies))
            count.selected += len(pieces)
            count.capped += size - len(pieces)
            room = 0
            continue
        count.capped += size


def _selection(
    rule: str, policy: Policy | None, candidate: _Candidate, policies: PoliciesFile
) -> Selection:
    limit = candidate.claims[0].judgement.limit if candidate.claims else None
    if policy is None:
        reason = reason_text(rule, candidate.statuses, limit, tag_limit_value=limit)
        dry_run = policies.settings.dry_run
    else:
        reason = reason_text(rule, candidate.statuses, policy.when.older_than)
        limit = policy.when.older_than
        dry_run = policies.settings.dry_run or policy.dry_run
    return Selection(
        job=candidate.job,
        policy=rule,
        age=candidate.age,
        limit=limit,
        reason=reason,
        dry_run=dry_run,
        statuses=candidate.statuses,
        children=candidate.children,
    )
