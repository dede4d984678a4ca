"""Find jobs the way policies and selectors need them: per queue, per status, every page;
tags read with DescribeJobs only for the jobs that could be selected."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from batch_terminator.batch_api import BatchApi
from batch_terminator.contract import JobStatus
from batch_terminator.logic.matching import queue_matches
from batch_terminator.models.job import JobSnapshot


@dataclass
class Listing:
    """The jobs found, and what finding them cost."""

    jobs: list[JobSnapshot]
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


def list_jobs(
    api: BatchApi,
    queue_statuses: dict[str, set[JobStatus]],
    worth_describing: Callable[[JobSnapshot], bool],
) -> Listing:
    """List every (queue, status) pair, follow array parents to their children, then describe the
    jobs worth describing (100 ids a call) so their tags and full facts are known."""
    listed: list[JobSnapshot] = []
    for queue, statuses in queue_statuses.items():
        for status in sorted(statuses):
            listed.extend(api.list_jobs(queue, status))
        if statuses - {JobStatus.SUBMITTED, JobStatus.PENDING}:
            # Array parents sit in PENDING while their children run; queue listings never show
            # children, so find the parents to list their children by arrayJobId.
            listed.extend(
                job
                for job in api.list_jobs(queue, JobStatus.PENDING)
                if job.array_size and JobStatus.PENDING not in statuses
            )
    parents = [job for job in listed if job.array_size]
    children = [
        child
        for parent in parents
        for status in sorted(set().union(*queue_statuses.values()))
        for child in api.list_array_children(parent, status)
    ]
    candidates = [job for job in [*listed, *children] if worth_describing(job)]
    to_describe = {job.job_id for job in candidates} | {
        job.array_parent_id for job in candidates if job.array_parent_id
    }
    described = api.describe_jobs(sorted(i for i in to_describe if i))
    jobs = [_merge(job, described) for job in [*parents, *candidates]]
    return Listing(
        jobs=list({job.job_id: job for job in jobs}.values()),
        listed=len(listed) + len(children),
        described=len(described),
    )


def describe_with_parents(api: BatchApi, job_ids: list[str]) -> dict[str, JobSnapshot]:
    """DescribeJobs for these ids; an array child also gets its parent's tags, so a protect tag
    on the array protects every child of it."""
    parents = {job_id.split(":", 1)[0] for job_id in job_ids if ":" in job_id}
    described = api.describe_jobs([*job_ids, *sorted(parents - set(job_ids))])
    return {
        job_id: _merge(job, described) for job_id, job in described.items() if job_id in job_ids
    }


def _merge(job: JobSnapshot, described: dict[str, JobSnapshot]) -> JobSnapshot:
    """The described facts where known; array children also carry their parent's tags."""
    full = described.get(job.job_id, job)
    if job.array_parent_id:
        parent = described.get(job.array_parent_id)
        inherited = (parent.tags or {}) if parent is not None else {}
        full = replace(
            full, tags={**inherited, **(full.tags or {})}, array_parent_id=job.array_parent_id
        )
    return full if full.job_queue else replace(full, job_queue=job.job_queue)


def statuses_for(
    queue: str, policy_filters: Iterable[tuple[list[str] | None, Iterable[JobStatus]]]
) -> set[JobStatus]:
    """The statuses some policy needs listed in this queue."""
    needed: set[JobStatus] = set()
    for queues, statuses in policy_filters:
        if queues is None or queue_matches(queue, queues):
            needed.update(statuses)
    return needed
