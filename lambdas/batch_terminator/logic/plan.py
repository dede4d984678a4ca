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
    # A parent not terminated as a whole: its outcome follows its children's in this delivery
    # (failed while one of them failed), so it never gets two final lines.
    follows_children: bool = False

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
    earlier: Earlier | None = None,
) -> list[Line]:
    """The lines of one named job: one line, or for an array parent one per child it concerns
    plus the parent's own; children named with it get theirs too. `earlier`: what earlier
    deliveries of this request left (settled, open and attempted jobs)."""
    earlier = earlier or Earlier()
    job = jobs.get(named.job_id)
    prefix = f"{named.job_id}:"
    open_children = {i for i in earlier.open if i.startswith(prefix)}
    if job is not None and job.is_array_parent:
        family = families.get(named.job_id)
        if family is None:  # its children could not all be read in this invocation's time
            unread = Verdict(
                Decision.RETRY,
                "not decided: the array's children could not be read in this invocation's time",
            )
            return [Line(named, named.job_id, job, unread)]
        stopped_since = {
            c.job_id
            for c in family.children
            if earlier.since is not None and _stopped_since(c, earlier.since)
        }
        must_answer = (named.also_named | open_children | stopped_since) - earlier.settled
        context = _Context(named, config, now, last_delivery, earlier)
        lines = _decide_array(context, family, frozenset(must_answer))
        return [
            line
            for line in lines
            if line.job_id == named.job_id or line.job_id not in earlier.settled
        ]
    context = _Context(named, config, now, last_delivery, earlier)
    lines = [context.one(named.job_id, job)]
    # Children named with a job that turned out not to be an array (or is unknown), and children
    # left open by an earlier delivery of an array that DescribeJobs does not return now.
    lines.extend(
        context.one(child_id, jobs.get(child_id))
        for child_id in sorted((named.also_named | open_children) - earlier.settled)
    )
    return lines


def _stopped_since(job: JobSnapshot, since: datetime) -> bool:
    """Finished after `since`, or being stopped now."""
    if job.termination_in_progress and not job.status.is_final:
        return True
    return job.status.is_final and job.stopped_at is not None and job.stopped_at >= since


@dataclass(frozen=True)
class Earlier:
    """What earlier deliveries of a request left: jobs with their final outcome (`settled`),
    jobs that had only `failed` lines (`open`), and jobs a call may have stopped without saying
    so, its reply lost (`attempted`)."""

    settled: frozenset[str] = frozenset()
    open: frozenset[str] = frozenset()
    attempted: frozenset[str] = frozenset()
    # On a redelivery: when the request was first delivered. A child that finished or began to
    # stop after it may have had a line then, and must get its final one even if the ledger
    # lost what it was.
    since: datetime | None = None


@dataclass(frozen=True)
class _Context:
    named: Named
    config: PoliciesFile
    now: datetime
    last_delivery: bool
    earlier: Earlier

    def judge(self, job: JobSnapshot | None) -> Verdict:
        return judge(
            job, self.named.request, self.config, self.now, last_delivery=self.last_delivery
        )

    def one(self, job_id: str, job: JobSnapshot | None) -> Line:
        """A job judged on its own (a plain job, a child or node named directly)."""
        if job is not None and job_id in self.earlier.attempted:
            after = _after_lost_reply(self.named, job, self.last_delivery)
            if after is not None:
                return after
        verdict = self.judge(job)
        return Line(self.named, job_id, job, verdict, job_id if verdict.terminate else None)


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
    context: _Context, family: ArrayFamily, must_answer: frozenset[str]
) -> list[Line]:
    named, parent, earlier = context.named, family.parent, context.earlier
    dry_run = dry_run_level(named.request, context.config) is not None
    known = {c.job_id: c for c in family.children}
    children: list[Line] = []
    # Children our earlier call covered, its reply lost: ours only if Batch shows our reason.
    for child in family.children:
        if child.job_id in earlier.attempted:
            after = _after_lost_reply(named, child, context.last_delivery)
            if after is not None:
                children.append(after)
    unsafe = safety_skip(parent, context.config, dry_run, parent_of_array=True)
    if unsafe is not None:
        answered = {line.job_id for line in children}
        children.extend(context.one(i, known.get(i)) for i in sorted(must_answer - answered))
        ours = parent.job_id in earlier.attempted
        return [_parent_line(named, parent, unsafe, children, ours), *children]
    for index in range(parent.array_size or 0):
        child_id = f"{parent.job_id}:{index}"
        if child_id not in known:  # DescribeJobs did not return it: not found, yet
            children.append(Line(named, child_id, None, context.judge(None)))

    def judge_child(child: JobSnapshot) -> Verdict:
        if child.job_id in earlier.settled:  # its outcome in this request is given already
            return skip("settled by an earlier delivery of this request", dry_run)
        return context.judge(child)

    resolution = resolve(family, judge_child, lambda verdict: verdict.would_terminate)
    ages = [v.age for v in resolution.verdicts.values() if v.age is not None]
    youngest = min(ages, default=None)
    lines: list[Line] = []
    if resolution.whole:
        stopped = frozenset(c.job_id for c in resolution.unfinished)
        if dry_run:
            level = dry_run_level(named.request, context.config)
            parent_verdict = Verdict(
                Decision.SKIP, f"dry run ({level})", True, held_by_dry_run=True, age=youngest
            )
            target = None
        else:
            parent_verdict = Verdict(Decision.TERMINATE, age=youngest)
            target = parent.job_id
        lines.append(Line(named, parent.job_id, parent, parent_verdict, target, stopped))
        children.extend(
            Line(named, c.job_id, c, resolution.verdicts[c.job_id], target)
            for c in resolution.unfinished
        )
    else:
        chosen = {c.job_id for c in resolution.one_by_one}
        for child in resolution.unfinished:
            verdict = resolution.verdicts[child.job_id]
            target = child.job_id if child.job_id in chosen and verdict.terminate else None
            children.append(Line(named, child.job_id, child, verdict, target))
    # Children that must be answered and are neither open to act on nor answered above: named
    # with their parent, or open after an earlier delivery, and finished or stopping since.
    answered = {line.job_id for line in children}
    children.extend(context.one(i, known.get(i)) for i in sorted(must_answer - answered))
    if not lines:
        why = f"array not terminated as a whole: {resolution.why_not_whole}"
        ours = parent.job_id in earlier.attempted
        lines.append(_parent_line(named, parent, skip(why, dry_run), children, ours))
    return lines + children


def _parent_line(
    named: Named, parent: JobSnapshot, otherwise: Verdict, children: list[Line], ours: bool
) -> Line:
    """The parent's own line when it is not terminated as a whole now: it waits while a child
    waits; it was terminated if our earlier call named it (`ours`) and Batch shows every child
    it stopped stopped with our reason; otherwise its outcome follows its children's."""
    if any(c.verdict.decision is Decision.RETRY for c in children):
        waiting = Verdict(
            Decision.RETRY, "waiting for its children (see their lines)", otherwise.dry_run
        )
        return Line(named, parent.job_id, parent, waiting)
    if ours and children and all(c.confirmed for c in children):
        return Line(named, parent.job_id, parent, Verdict(Decision.TERMINATE), confirmed=True)
    verdict = otherwise
    if otherwise.why and otherwise.why.startswith("array not terminated as a whole"):
        chosen = any(c.target is not None for c in children)
        how = "its children are terminated one by one" if chosen else "none of its children is"
        verdict = skip(f"{otherwise.why}; {how}", otherwise.dry_run)
    return Line(named, parent.job_id, parent, verdict, follows_children=True)
