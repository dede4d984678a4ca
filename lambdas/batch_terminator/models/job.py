"""A job as the core sees it: the facts from DescribeJobs or ListJobs, typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batch_terminator.contract import JobStatus


def _from_epoch_ms(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=UTC) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class JobSnapshot:
    job_id: str
    job_name: str
    job_queue: str
    status: JobStatus
    created_at: datetime | None
    started_at: datetime | None = None
    job_definition: str = ""
    # None when the source (ListJobs) does not say: tags are known only from DescribeJobs.
    tags: dict[str, str] | None = None
    is_terminated: bool = False
    is_cancelled: bool = False
    status_reason: str | None = None
    # Array jobs: a parent has a size; a child has its parent's id.
    array_size: int | None = None
    array_parent_id: str | None = None
    array_status_summary: dict[str, int] = field(default_factory=dict)

    @property
    def age_since(self) -> datetime | None:
        """RUNNING/STARTING: since startedAt; earlier states: since createdAt."""
        return self.started_at if self.status.is_started else self.created_at

    @property
    def termination_in_progress(self) -> bool:
        return self.is_terminated or self.is_cancelled

    @classmethod
    def from_description(cls, job: dict[str, Any]) -> JobSnapshot:
        """From one DescribeJobs `jobs[]` entry."""
        return cls._build(
            job, job_queue=str(job.get("jobQueue", "")), tags=dict(job.get("tags") or {})
        )

    @classmethod
    def from_summary(cls, summary: dict[str, Any], job_queue: str) -> JobSnapshot:
        """From one ListJobs `jobSummaryList[]` entry, which carries neither queue nor tags."""
        return cls._build(summary, job_queue=job_queue, tags=None)

    @classmethod
    def _build(
        cls, job: dict[str, Any], job_queue: str, tags: dict[str, str] | None
    ) -> JobSnapshot:
        job_id = str(job["jobId"])
        array = job.get("arrayProperties") or {}
        parent = job_id.split(":", 1)[0] if ":" in job_id else None
        return cls(
            job_id=job_id,
            job_name=str(job.get("jobName", "")),
            job_queue=job_queue,
            status=JobStatus(job["status"]),
            created_at=_from_epoch_ms(job.get("createdAt")),
            started_at=_from_epoch_ms(job.get("startedAt")),
            job_definition=str(job.get("jobDefinition", "")),
            tags=tags,
            is_terminated=bool(job.get("isTerminated", False)),
            is_cancelled=bool(job.get("isCancelled", False)),
            status_reason=job.get("statusReason"),
            array_size=array.get("size") if "index" not in array else None,
            array_parent_id=parent,
            array_status_summary=dict(array.get("statusSummary") or {}),
        )
