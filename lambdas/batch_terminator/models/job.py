"""A job as the core sees it: the facts Batch gave about it, typed, and which facts are missing.

Two sources, told apart by `described`:

- DescribeJobs (`JobDetail`): the full facts. Decisions are made on these only.
- ListJobs (`JobSummary`): what a listing returns. It never carries tags or the job queue, and
  AWS has acknowledged that it sometimes omits `jobDefinition` (botocore's Batch model, shape
  `JobSummary`). A summary only says which jobs are worth describing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from batch_terminator.contract import JobStatus


def from_epoch_ms(value: Any) -> datetime | None:
    """Batch timestamps are milliseconds since the epoch, UTC; anything else is unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Attempt:
    """One finished attempt from DescribeJobs `attempts[]` (Batch lists finished attempts only)."""

    started_at: datetime | None
    stopped_at: datetime | None
    status_reason: str | None = None


@dataclass(frozen=True)
class JobSnapshot:
    job_id: str
    job_name: str
    # The queue's ARN; None when unknown (ListJobs summaries carry no queue).
    job_queue: str | None
    status: JobStatus
    created_at: datetime | None
    # Top-level startedAt/stoppedAt belong to the LAST attempt: after a retry they are stale.
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    # None when the source did not say (ListJobs sometimes omits it).
    job_definition: str | None = None
    # None when unknown: tags are known only from DescribeJobs.
    tags: dict[str, str] | None = None
    is_terminated: bool = False
    is_cancelled: bool = False
    status_reason: str | None = None
    # Array jobs: a parent has a size; a child has its parent's id and its index.
    array_size: int | None = None
    array_parent_id: str | None = None
    array_status_summary: dict[str, int] = field(default_factory=dict)
    # Multi-node parallel jobs: the main job has a node count; a node (`id#N`) its main job's id.
    num_nodes: int | None = None
    main_node_job_id: str | None = None
    # A node that is its job's main node: the job ends when it does (Batch user guide,
    # "Multi-node parallel jobs": "The job is finished only if the main node exits").
    is_main_node: bool = False
    attempts: tuple[Attempt, ...] = ()
    depends_on: tuple[str, ...] = ()
    # When every dependency had finished (the latest stoppedAt), resolved by the shell from
    # DescribeJobs of the dependencies; None while unknown.
    dependencies_done_at: datetime | None = None
    # True when the facts come from DescribeJobs.
    described: bool = False

    @property
    def termination_in_progress(self) -> bool:
        """Batch marks a job at once when it is terminated; it may linger in its status a while."""
        return self.is_terminated or self.is_cancelled

    @property
    def is_array_parent(self) -> bool:
        return bool(self.array_size) and self.array_parent_id is None

    @property
    def inherits_from(self) -> str | None:
        """The job whose tags and queue this one inherits: an array's parent, an MNP's main job."""
        return self.array_parent_id or self.main_node_job_id

    @property
    def attempt(self) -> int:
        """The current attempt, counted from 0: the number of finished attempts."""
        return len(self.attempts)

    @classmethod
    def from_description(cls, job: dict[str, Any]) -> JobSnapshot:
        """From one DescribeJobs `jobs[]` entry (botocore shape `JobDetail`)."""
        attempts = tuple(
            Attempt(
                from_epoch_ms(a.get("startedAt")),
                from_epoch_ms(a.get("stoppedAt")),
                a.get("statusReason"),
            )
            for a in job.get("attempts") or []
            if isinstance(a, dict)
        )
        depends_on = tuple(
            str(d["jobId"])
            for d in job.get("dependsOn") or []
            if isinstance(d, dict) and d.get("jobId")
        )
        tags = job.get("tags")
        return cls._build(
            job,
            job_queue=str(job["jobQueue"]) if job.get("jobQueue") else None,
            tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
            attempts=attempts,
            depends_on=depends_on,
            described=True,
        )

    @classmethod
    def from_event(cls, detail: dict[str, Any]) -> JobSnapshot:
        """From a Batch job event's `detail`: DescribeJobs' shape, except that `detail.tags`
        holds `resourceArn`, not the job's tags, so tags stay unknown; and an event may be late
        or out of order, so its facts only say which jobs are worth describing."""
        return replace(cls.from_description(detail), tags=None, described=False)

    @classmethod
    def from_summary(cls, summary: dict[str, Any], listed_in: str | None) -> JobSnapshot:
        """From one ListJobs `jobSummaryList[]` entry. `listed_in` is the queue the listing asked
        for (a summary names none); tags stay unknown."""
        return cls._build(
            summary, job_queue=listed_in, tags=None, attempts=(), depends_on=(), described=False
        )

    @classmethod
    def _build(
        cls,
        job: dict[str, Any],
        *,
        job_queue: str | None,
        tags: dict[str, str] | None,
        attempts: tuple[Attempt, ...],
        depends_on: tuple[str, ...],
        described: bool,
    ) -> JobSnapshot:
        job_id = str(job["jobId"])
        array = job.get("arrayProperties") or {}
        nodes = job.get("nodeProperties") or {}
        parent = job_id.split(":", 1)[0] if ":" in job_id else None
        main = job_id.split("#", 1)[0] if "#" in job_id else None
        size = array.get("size") if "index" not in array and parent is None else None
        num_nodes = nodes.get("numNodes") if main is None else None
        node = job.get("nodeDetails") or job.get("nodeProperties") or {}
        is_main_node = main is not None and node.get("isMainNode") is True
        return cls(
            job_id=job_id,
            job_name=str(job.get("jobName", "")),
            job_queue=job_queue,
            status=JobStatus(job["status"]),
            created_at=from_epoch_ms(job.get("createdAt")),
            started_at=from_epoch_ms(job.get("startedAt")),
            stopped_at=from_epoch_ms(job.get("stoppedAt")),
            job_definition=str(job["jobDefinition"]) if job.get("jobDefinition") else None,
            tags=tags,
            is_terminated=job.get("isTerminated") is True,
            is_cancelled=job.get("isCancelled") is True,
            status_reason=job.get("statusReason"),
            array_size=int(size) if isinstance(size, int) and size > 0 else None,
            array_parent_id=parent,
            array_status_summary={
                str(k): int(v)
                for k, v in (array.get("statusSummary") or {}).items()
                if isinstance(v, int)
            },
            num_nodes=int(num_nodes) if isinstance(num_nodes, int) and num_nodes > 0 else None,
            main_node_job_id=main,
            is_main_node=is_main_node,
            attempts=attempts,
            depends_on=depends_on,
            described=described,
        )
