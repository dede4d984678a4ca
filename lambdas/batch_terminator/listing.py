"""Find the jobs that policies and selectors need: list every (queue, status) page, keep the
summaries worth a look, then describe them, so that every decision is made on DescribeJobs facts.

ListJobs lists one queue and one status a call and never lists array children by queue
(botocore's Batch model, ListJobs `jobStatus`: array parents sit in PENDING "while child jobs
are running"). So PENDING is listed too wherever some other status is needed, to find the
array parents; each parent whose children might matter is described with all its children.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from batch_terminator import facts as job_facts
from batch_terminator.batch_api import BatchApi
from batch_terminator.contract import ACTIVE_STATUSES, JobStatus
from batch_terminator.logic.arrays import ArrayFamily
from batch_terminator.logic.matching import queue_matches
from batch_terminator.models.job import JobSnapshot


@dataclass
class Listing:
    """The jobs found, described; and what finding them cost."""

    jobs: list[JobSnapshot] = field(default_factory=list)
    families: list[ArrayFamily] = field(default_factory=list)
    # Listed and worth a look, but DescribeJobs did not return them: their facts are unknown.
    unknown: list[JobSnapshot] = field(default_factory=list)
    listed: int = 0
    described: int = 0


def resolve_queues(api: BatchApi, patterns: Iterable[str]) -> list[str]:
    """Queue ARNs matching any of the patterns (names, ARNs, globs)."""
    wanted = list(patterns)
    return [
        q["jobQueueArn"]
        for q in api.describe_job_queues()
        if queue_matches(q["jobQueueArn"], wanted)
    ]


def _as_children(parent: JobSnapshot) -> list[JobSnapshot]:
    """What a parent's summary tells of its children: one stand-in per status it has children
    in (they share its name, queue and creation time), to ask whether any could matter."""
    summary = parent.array_status_summary
    statuses = (
        [s for s in ACTIVE_STATUSES if summary.get(s.value, 0) > 0]
        if summary
        else list(ACTIVE_STATUSES)
    )
    return [
        replace(parent, status=s, array_size=None, array_status_summary={}, started_at=None)
        for s in statuses
    ]


def _to_list(statuses: set[JobStatus]) -> list[JobStatus]:
    """The statuses to list: PENDING too, where array parents wait, if children could matter."""
    wanted = set(statuses)
    if wanted - {JobStatus.SUBMITTED, JobStatus.PENDING}:
        wanted.add(JobStatus.PENDING)
    return sorted(wanted)


def find_jobs(
    api: BatchApi,
    queue_statuses: dict[str, set[JobStatus]],
    worth_a_look: Callable[[JobSnapshot], bool],
) -> Listing:
    """List, filter the summaries with `worth_a_look` (unknown facts must pass it), describe."""
    listing = Listing()
    # By id: a job that moves between two ListJobs calls may be listed twice.
    candidates: dict[str, JobSnapshot] = {}
    parents: dict[str, JobSnapshot] = {}
    for queue, statuses in queue_statuses.items():
        for status in _to_list(statuses):
            for job in api.list_jobs(queue, status):
                listing.listed += 1
                if job.is_array_parent:
                    if any(worth_a_look(child) for child in _as_children(job)):
                        parents[job.job_id] = job
                elif status in statuses and worth_a_look(job):
                    candidates[job.job_id] = job
    found = job_facts.describe(api, [*candidates, *parents])
    listing.described = len(found.jobs)
    for job in candidates.values():
        described = found.jobs.get(job.job_id)
        if described is None:
            listing.unknown.append(job)
        else:
            listing.jobs.append(described)
    for parent in parents.values():
        family = found.families.get(parent.job_id)
        if family is None:
            listing.unknown.append(parent)
        else:
            listing.families.append(family)
    return listing


def statuses_for(
    queue: str, policy_filters: Iterable[tuple[list[str] | None, Iterable[JobStatus]]]
) -> set[JobStatus]:
    """The statuses some policy needs listed in this queue."""
    needed: set[JobStatus] = set()
    for queues, statuses in policy_filters:
        if queues is None or queue_matches(queue, queues):
            needed.update(statuses)
    return needed
