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
    # Children of this array named by the same request: each gets its line through the parent.
    also_named: frozenset[str] = frozenset()

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
    settled: frozenset[str] = frozenset(),
) -> list[Line]:
    """The lines of one named job: one line, or for an array parent one per child it concerns
    plus the parent's own. `attempted`: jobs an earlier delivery's call may have stopped without
    saying so (a timeout, a 5xx). `settled`: jobs an earlier delivery of this request already
    gave their outcome: never acted on again, and given no second line."""
    request = named.request
    job = jobs.get(named.job_id)
    family = families.get(named.job_id) if job is not None and job.is_array_parent else None
    if job is not None and job.is_array_parent:
        if family is None:
            unknown = skip("facts unknown: the array's children were not read")
            return [Line(named, named.job_id, job, unknown)]
        lines = _decide_array(named, family, config, now, last_delivery, attempted, settled)
        return [line for line in lines if line.job_id == named.job_id or line.job_id not in settled]
    if job is not None and named.job_id in attempted:
        earlier = _after_lost_reply(named, job, last_delivery)
        if earlier is not None:
            return [earlier]
    verdict = judge(job, request, config, now, last_delivery=last_delivery)
    target = named.job_id if verdict.terminate else None
    return [Line(named, named.job_id, job, verdict, target)]


def _after_lost_reply(named: Named, job: JobSnapshot, last_delivery: bool) -> Line | None:
    """A job our earlier call may have stopped, its reply lost. Stopped with our reason: that
    was our call. Still being stopped: Batch records the reason only once the job has stopped,
    so wait for it (somebody else may have stopped it). Otherwise: judge it afresh (None)."""
    request = named.request
    if job.status is JobStatus.FAILED and job.status_reason == request.reason:
        return Line(named, job.job_id, job, Verdict(Decision.TERMINATE), confirmed=True)
    if job.termination_in_progress and not job.status.is_final:
        if last_delivery:
            why = (
                f"already terminating: {job.status.value}; our earlier call, whose reply was "
                "lost, may have done it"
            )
            return Line(named, job.job_id, job, skip(why))
        waiting = Verdict(
            Decision.RETRY,
            "being terminated after our earlier call, whose reply was lost: waiting for Batch "
            "to record who stopped it",
        )
        return Line(named, job.job_id, job, waiting)
    return None


def _decide_array(
    named: Named,
    family: ArrayFamily,
    config: PoliciesFile,
    now: datetime,
    last_delivery: bool,
    attempted: frozenset[str],
    settled: frozenset[str],
) -> list[Line]:
    request, parent = named.request, family.parent
    dry_run = dry_run_level(request, config) is not None
    unsafe = safety_skip(parent, config, dry_run, parent_of_array=True)
    if unsafe is not None:
        return [Line(named, parent.job_id, parent, unsafe)]
    children: list[Line] = []
    handled: set[str] = set()
    for child in family.children:
        if parent.job_id in attempted or child.job_id in attempted:
            earlier = _after_lost_reply(named, child, last_delivery)
            if earlier is not None:
                children.append(earlier)
                handled.add(child.job_id)
    known = {c.job_id for c in family.children}
    for index in range(parent.array_size or 0):
        child_id = f"{parent.job_id}:{index}"
        if child_id not in known:  # DescribeJobs did not return it: not found, yet
            missing = judge(None, request, config, now, last_delivery=last_delivery)
            children.append(Line(named, child_id, None, missing))

    def judge_child(child: JobSnapshot) -> Verdict:
        if child.job_id in settled:  # its outcome in this request is given: never acted on again
            return skip("settled by an earlier delivery of this request", dry_run)
        return judge(child, request, config, now, last_delivery=last_delivery)

    resolution = resolve(family, judge_child, lambda verdict: verdict.would_terminate)
    ages = [v.age for v in resolution.verdicts.values() if v.age is not None]
    youngest = min(ages, default=None)
    stopped = frozenset(c.job_id for c in resolution.unfinished)
    for child in family.children:  # named with its parent, finished or already stopping
        if child.job_id in named.also_named and child.job_id not in handled | stopped:
            verdict = judge(child, request, config, now, last_delivery=last_delivery)
            children.append(Line(named, child.job_id, child, verdict))
    if resolution.whole:
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
        return lines + children
    chosen = {c.job_id for c in resolution.one_by_one}
    for child in resolution.unfinished:
        verdict = resolution.verdicts[child.job_id]
        target = child.job_id if child.job_id in chosen and verdict.terminate else None
        children.append(Line(named, child.job_id, child, verdict, target))
    return [_parent_line(named, parent, resolution.why_not_whole, children, dry_run), *children]


def _parent_line(
    named: Named,
    parent: JobSnapshot,
    why_not_whole: str | None,
    children: list[Line],
    dry_run: bool,
) -> Line:
    """The parent's own line when it is not terminated as a whole: it waits while a child
    waits; it was terminated if an earlier call of ours stopped what was left of it."""
    parent_id = named.job_id
    if any(c.verdict.decision is Decision.RETRY for c in children):
        waiting = Verdict(Decision.RETRY, "waiting for its children (see their lines)", dry_run)
        return Line(named, parent_id, parent, waiting)
    if children and all(c.confirmed for c in children):
        return Line(named, parent_id, parent, Verdict(Decision.TERMINATE), confirmed=True)
    chosen = any(c.target is not None for c in children)
    how = "its children are terminated one by one" if chosen else "none of its children is"
    why = f"array not terminated as a whole: {why_not_whole}; {how}"
    return Line(named, parent_id, parent, skip(why, dry_run))
