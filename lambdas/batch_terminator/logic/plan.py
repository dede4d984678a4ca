"""Decide, for every job a request names, what happens to it, and which Batch call does it. Pure.

Every (request, job) pair is judged on its own: two requests that name the same job each get
their own outcome (a dry run or a failed precondition in one never decides the other).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from batch_terminator.contract import JobStatus, Outcome
from batch_terminator.logic.arrays import ArrayFamily, resolve
from batch_terminator.logic.parse import ParsedRecord
from batch_terminator.logic.safety import (
    Decision,
    Verdict,
    dry_run_level,
    judge,
    safety_skip,
    skip,
)
from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.models.request import TerminationRequest


@dataclass(frozen=True)
class Named:
    """A job named by the request of one SQS record (by id, or picked by its selector)."""

    record: ParsedRecord
    job_id: str

    @property
    def request(self) -> TerminationRequest:
        assert self.record.request is not None
        return self.record.request


@dataclass(frozen=True)
class Line:
    """One job's decision in one request: what its audit line will say.

    `target` is the id the termination call names: the job itself, or for a whole array the
    parent (whose line `covers` the unfinished children it stops)."""

    named: Named
    job_id: str
    job: JobSnapshot | None
    verdict: Verdict
    target: str | None = None
    covers: frozenset[str] = field(default_factory=frozenset)
    # An earlier delivery's call may have acted without saying so; this one sees it done.
    confirmed: bool = False

    def audit(
        self, outcome: Outcome, error: str | None = None, skip_reason: str | None = None
    ) -> AuditRecord:
        request, job, record = self.named.request, self.job, self.named.record
        age = self.verdict.age
        return AuditRecord(
            outcome=outcome,
            job_id=self.job_id,
            job_name=job.job_name if job else None,
            job_queue=job.job_queue if job else None,
            status_before=job.status.value if job else None,
            reason=request.reason,
            policy=request.policy,
            source=record.source,
            requested_by=request.requested_by,
            request_id=request.request_id,
            dry_run=self.verdict.dry_run,
            error=error,
            skip_reason=skip_reason if outcome is Outcome.SKIPPED else None,
            status_reason_before=job.status_reason if job else None,
            age_seconds=int(age.total_seconds()) if age is not None else None,
            sender=record.sender,
            message_id=record.message_id,
        )


def decide(
    named: Named,
    jobs: Mapping[str, JobSnapshot],
    families: Mapping[str, ArrayFamily],
    config: PoliciesFile,
    now: datetime,
    *,
    last_delivery: bool,
    attempted: frozenset[str] = frozenset(),
) -> list[Line]:
    """The lines of one named job: one line, or for an array parent one per unfinished child
    plus the parent's own."""
    request = named.request
    job = jobs.get(named.job_id)
    family = families.get(named.job_id) if job is not None and job.is_array_parent else None
    if job is not None and job.is_array_parent and family is None:
        return [
            Line(
                named, named.job_id, job, skip("facts unknown: the array's children were not read")
            )
        ]
    if family is not None and named.job_id in attempted:
        # An earlier delivery's call on the parent may have acted without saying so.
        stopped = [c for c in family.children if c.job_id in attempted and _stopped_by(c, request)]
        if stopped:
            done = Verdict(Decision.TERMINATE)
            lines = [Line(named, named.job_id, job, done, confirmed=True)]
            return lines + [Line(named, c.job_id, c, done, confirmed=True) for c in stopped]
    if family is None:
        verdict = judge(job, request, config, now, last_delivery=last_delivery)
        confirmed = job is not None and named.job_id in attempted and _stopped_by(job, request)
        target = named.job_id if verdict.terminate else None
        return [Line(named, named.job_id, job, verdict, target, confirmed=confirmed)]
    return _decide_array(named, family, config, now, last_delivery)


def _stopped_by(job: JobSnapshot, request: TerminationRequest) -> bool:
    """Does the job's state show a termination, ours by its reason once it has stopped?"""
    if job.termination_in_progress and not job.status.is_final:
        return True
    return job.status is JobStatus.FAILED and job.status_reason == request.reason


def _decide_array(
    named: Named, family: ArrayFamily, config: PoliciesFile, now: datetime, last_delivery: bool
) -> list[Line]:
    request, parent = named.request, family.parent
    dry_run = dry_run_level(request, config) is not None
    unsafe = safety_skip(parent, config, dry_run)
    if unsafe is not None:
        return [Line(named, parent.job_id, parent, unsafe)]
    resolution = resolve(
        family,
        lambda child: judge(child, request, config, now, last_delivery=last_delivery),
        lambda verdict: verdict.would_terminate,
    )
    ages = [v.age for v in resolution.verdicts.values() if v.age is not None]
    youngest = min(ages, default=None)
    if resolution.whole:
        stopped = frozenset(c.job_id for c in resolution.unfinished)
        if dry_run:
            level = dry_run_level(request, config)
            parent_verdict = Verdict(
                Decision.SKIP, f"dry run ({level})", True, held_by_dry_run=True, age=youngest
            )
            target = None
        else:
            parent_verdict = Verdict(Decision.TERMINATE, age=youngest)
            target = parent.job_id
        lines = [Line(named, parent.job_id, parent, parent_verdict, target, stopped)]
        lines.extend(
            Line(named, c.job_id, c, resolution.verdicts[c.job_id], target)
            for c in resolution.unfinished
        )
        return lines
    chosen = {c.job_id for c in resolution.one_by_one}
    how = (
        "its children are terminated one by one" if chosen else "none of its children is terminated"
    )
    lines = [
        Line(
            named,
            parent.job_id,
            parent,
            skip(f"array not terminated as a whole: {resolution.why_not_whole}; {how}", dry_run),
        )
    ]
    for child in resolution.unfinished:
        verdict = resolution.verdicts[child.job_id]
        target = child.job_id if child.job_id in chosen and verdict.terminate else None
        lines.append(Line(named, child.job_id, child, verdict, target))
    return lines
