"""Selector requests: list and describe the jobs a selector names, and pick up to its limit.

A selector is expanded once per request (the terminator keeps the picks in its ledger). Jobs are
listed with ListJobs, and decided on DescribeJobs facts only: a job ListJobs lists but
DescribeJobs does not return is never picked. An array is picked whole only when every
unfinished child is named by the selector and would be terminated; it then counts as its
unfinished children against the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from batch_terminator.batch_api import BatchApi
from batch_terminator.facts import Facts
from batch_terminator.listing import find_jobs
from batch_terminator.logic.arrays import resolve
from batch_terminator.logic.matching import resource_name
from batch_terminator.logic.parse import InvalidRequest, ParsedRecord
from batch_terminator.logic.plan import Line, Named
from batch_terminator.logic.safety import Verdict, judge, skip
from batch_terminator.logic.selectors import could_match, selector_selects
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile


@dataclass
class Expansion:
    """The picked ids (to terminate, in order), the lines of the jobs named but not picked,
    how many the limit left, and the facts read on the way."""

    picks: list[str] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    limited: int = 0
    facts: Facts = field(default_factory=Facts)


def expand_selector(
    batch: BatchApi, record: ParsedRecord, config: PoliciesFile, now: datetime
) -> Expansion:
    """Raises InvalidRequest when a queue does not exist, BatchCallFailed or OutOfTime when
    Batch cannot be read."""
    request = record.request
    assert request is not None
    selector = request.selector
    assert selector is not None
    queues = resolve_selector_queues(batch, selector.job_queues)
    listing = find_jobs(
        batch,
        {q: set(selector.statuses) for q in queues},
        lambda job: could_match(job, selector, now),
    )
    expansion = Expansion()
    facts = expansion.facts
    for job in listing.jobs:
        facts.jobs[job.job_id] = job
    for family in listing.families:
        facts.jobs[family.parent.job_id] = family.parent
        facts.jobs.update((c.job_id, c) for c in family.children)
        facts.families[family.parent.job_id] = family

    def line(job_id: str, job: JobSnapshot | None, verdict: Verdict) -> Line:
        return Line(Named(record, job_id), job_id, job, verdict)

    pickable: list[_Pickable] = []
    for job in listing.jobs:
        if not selector_selects(job, selector, now).selected:
            continue
        verdict = judge(job, request, config, now)
        if verdict.would_terminate:
            pickable.append(_Pickable(job.job_id, [line(job.job_id, job, verdict)]))
        else:
            expansion.lines.append(line(job.job_id, job, verdict))
    for family in listing.families:
        resolution = resolve(
            family, lambda c: judge(c, request, config, now), lambda v: v.would_terminate
        )
        children = [
            line(c.job_id, c, resolution.verdicts[c.job_id])
            for c in resolution.unfinished
            if selector_selects(c, selector, now).selected
        ]
        chosen = [c for c in children if c.verdict.would_terminate]
        expansion.lines.extend(c for c in children if not c.verdict.would_terminate)
        if resolution.whole:
            pickable.append(_Pickable(family.parent.job_id, chosen, whole=True))
        else:
            pickable.extend(_Pickable(c.job_id, [c]) for c in chosen)
    unknown = skip("facts unknown: ListJobs lists the job but DescribeJobs did not return it")
    expansion.lines.extend(line(job.job_id, None, unknown) for job in listing.unknown)
    expansion.picks, over = _pick(pickable, request.selector_limit)
    reached = f"limit reached: this request terminates at most {request.selector_limit} jobs"
    expansion.lines.extend(
        Line(o.named, o.job_id, o.job, skip(reached, o.verdict.dry_run, o.verdict.age))
        for o in over
    )
    expansion.limited = len(over)
    return expansion


def resolve_selector_queues(batch: BatchApi, queues: Sequence[str]) -> list[str]:
    """Queue ARNs of the selector's queues (names or ARNs). A queue that does not exist can
    never be drained, so the request is rejected (InvalidRequest) rather than retried."""
    found = batch.describe_job_queues(list(queues))
    known = {q["jobQueueArn"] for q in found} | {q["jobQueueName"] for q in found}
    missing = [q for q in queues if q not in known and resource_name(q) not in known]
    if missing:
        raise InvalidRequest(f"job queue {', '.join(missing)} does not exist")
    return [q["jobQueueArn"] for q in found]


@dataclass(frozen=True)
class _Pickable:
    """What a selector may pick: one job, or a whole array (`lines` are its children)."""

    job_id: str
    lines: list[Line]
    whole: bool = False

    @property
    def age(self) -> float:
        """Seconds; the youngest of an array's children; -1 when unknown (picked last)."""
        ages = [ln.verdict.age.total_seconds() for ln in self.lines if ln.verdict.age is not None]
        return min(ages, default=-1.0)


def _oldest_first(line: Line) -> tuple[float, str]:
    age = line.verdict.age or timedelta(seconds=-1)
    return (-age.total_seconds(), line.job_id)


def _pick(pickable: list[_Pickable], limit: int) -> tuple[list[str], list[Line]]:
    """Oldest first, up to `limit` jobs (an array counts its unfinished children); an array
    that does not fit whole gives way to as many of its oldest children as fit. Returns the
    picked ids and the lines of the jobs left over."""
    picks: list[str] = []
    over: list[Line] = []
    room = limit
    for item in sorted(pickable, key=lambda p: (-p.age, p.job_id)):
        size = len(item.lines) if item.whole else 1
        if size <= room:
            picks.append(item.job_id)
            room -= size
        elif item.whole and room > 0:
            children = sorted(item.lines, key=_oldest_first)
            picks.extend(c.job_id for c in children[:room])
            over.extend(children[room:])
            room = 0
        else:
            over.extend(item.lines)
    return picks, over
