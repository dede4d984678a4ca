"""The facts decisions are made on: DescribeJobs, with what each job inherits resolved.

- An array child and a multi-node parallel node inherit their parent's (main job's) tags, queue
  and dependencies: a protect tag on an array protects every child of it.
- An array parent named for termination comes with every child (`parent:0..size-1`, described
  by id, 100 a call), because terminating it terminates all of them.
- A job waiting to run on its first attempt with dependencies became RUNNABLE when the last of
  them stopped: their `stoppedAt` is read too (see `logic/ages.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from batch_terminator.batch_api import BatchApi, OutOfTime
from batch_terminator.contract import DESCRIBE_JOBS_MAX_IDS, JobStatus
from batch_terminator.logic.arrays import ArrayFamily
from batch_terminator.models.job import JobSnapshot


@dataclass
class Facts:
    """Described jobs by id (inheritance merged) and the families of named array parents."""

    jobs: dict[str, JobSnapshot] = field(default_factory=dict)
    families: dict[str, ArrayFamily] = field(default_factory=dict)

    def update(self, other: Facts) -> None:
        self.jobs.update(other.jobs)
        self.families.update(other.families)


def _inherit(job: JobSnapshot, source: JobSnapshot | None) -> JobSnapshot:
    """A child's or node's facts merged with its parent's (main job's). When the parent was not
    returned, the tags are unknown (None), never "no tags": its protect tag may be on it."""
    if not job.inherits_from:
        return job
    if source is None:
        return replace(job, tags=None)
    return replace(
        job,
        tags={**(source.tags or {}), **(job.tags or {})},
        job_queue=source.job_queue or job.job_queue,
        depends_on=tuple(dict.fromkeys((*source.depends_on, *job.depends_on))),
        num_nodes=source.num_nodes if job.main_node_job_id else job.num_nodes,
    )


def _waits_on_dependencies(job: JobSnapshot) -> bool:
    return (
        job.status in (JobStatus.RUNNABLE, JobStatus.STARTING)
        and not job.attempts
        and bool(job.depends_on)
    )


def _always() -> bool:
    return True


def describe(
    api: BatchApi,
    job_ids: Iterable[str],
    *,
    with_children: bool = True,
    enough_time: Callable[[], bool] = _always,
) -> Facts:
    """Describe these jobs and what they inherit from; for array parents among them, every
    child. Ids DescribeJobs does not return are absent from `jobs`.

    Children are read smallest array first while `enough_time()` says so: an array whose
    children could not all be read has no family (it is decided on a later delivery), and one
    big array never starves the other requests of a batch. Raises BatchCallFailed, OutOfTime.
    """
    wanted = list(dict.fromkeys(job_ids))
    inherited = {i.split(":", 1)[0] for i in wanted if ":" in i}
    inherited |= {i.split("#", 1)[0] for i in wanted if "#" in i}
    raw = api.describe_jobs([*wanted, *sorted(inherited - set(wanted))])
    parents = sorted(
        (job for job_id, job in raw.items() if job_id in wanted and job.is_array_parent),
        key=lambda p: (p.array_size or 0, p.job_id),
    )
    read: list[JobSnapshot] = []
    for parent in parents if with_children else []:
        child_ids = [f"{parent.job_id}:{i}" for i in range(parent.array_size or 0)]
        if not _read_all(api, [c for c in child_ids if c not in raw], raw, enough_time):
            break
        read.append(parent)
    merged = {
        job_id: _inherit(job, raw.get(job.inherits_from or "")) for job_id, job in raw.items()
    }
    _resolve_dependencies(api, merged)
    facts = Facts(jobs={i: merged[i] for i in merged if i in wanted or ":" in i})
    for parent in read:
        size = parent.array_size or 0
        children = tuple(
            merged[c] for c in (f"{parent.job_id}:{i}" for i in range(size)) if c in merged
        )
        facts.families[parent.job_id] = ArrayFamily(merged[parent.job_id], children)
    return facts


def _read_all(
    api: BatchApi,
    job_ids: list[str],
    into: dict[str, JobSnapshot],
    enough_time: Callable[[], bool],
) -> bool:
    """DescribeJobs, 100 ids a call, while there is time for it; False when time ran out."""
    for start in range(0, len(job_ids), DESCRIBE_JOBS_MAX_IDS):
        if not enough_time():
            return False
        try:
            into.update(api.describe_jobs(job_ids[start : start + DESCRIBE_JOBS_MAX_IDS]))
        except OutOfTime:
            return False
    return True


def _resolve_dependencies(api: BatchApi, jobs: dict[str, JobSnapshot]) -> None:
    waiting = [job for job in jobs.values() if _waits_on_dependencies(job)]
    if not waiting:
        return
    needed = {d for job in waiting for d in job.depends_on}
    known = {d: jobs[d] for d in needed if d in jobs}
    known.update(api.describe_jobs(sorted(needed - set(known))))
    for job in waiting:
        stops = [known[d].stopped_at if d in known else None for d in job.depends_on]
        finished = all(d in known and known[d].status.is_final for d in job.depends_on)
        if finished and all(s is not None for s in stops):
            jobs[job.job_id] = replace(
                job, dependencies_done_at=max(s for s in stops if s is not None)
            )
