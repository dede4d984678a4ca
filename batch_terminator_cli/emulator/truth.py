"""What really happened to the emulated jobs, for test oracles: not what Batch shows, what was.

Batch's own answers are delayed (lingering terminations, DescribeJobs lag) and incomplete
(ListJobs summaries, stale timestamps after a retry); a property test compares what the product
did against these records instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StatusEntry:
    """A job entered `status` at `entered_at`, during attempt `attempt` (0-based: the number of
    attempts that had finished, by a retry, before it)."""

    status: str
    entered_at: datetime
    attempt: int


@dataclass(frozen=True)
class JobTruth:
    """A job as it really is now.

    status: the true status; a terminated job still lingering reports that status with
        `stopping=True` (it will become FAILED).
    entered_at: when it entered `status` in the current attempt.
    runnable_since: when it entered RUNNABLE in the current attempt (None if it has not).
    attempt: the current attempt, 0-based (= attempts finished before it).
    tags: the effective tags: an array child's or a node's own tags over its parent's.
    array_parent_id: the array job a child belongs to.
    main_node_job_id: the multi-node parallel job a node (`X#i`) belongs to.
    status_reason: the statusReason Batch shows now.
    """

    job_id: str
    status: str
    stopping: bool
    entered_at: datetime
    runnable_since: datetime | None
    attempt: int
    created_at: datetime
    queue_arn: str
    queue_name: str
    job_definition_arn: str
    job_name: str
    tags: dict[str, str]
    array_parent_id: str | None
    main_node_job_id: str | None
    status_reason: str | None


@dataclass(frozen=True)
class TerminationEvent:
    """A TerminateJob / TerminateJobs (or CancelJob) call stopped `job_id`, a job that runs a
    container (a plain job, an array child, a node).

    named_id is the id the call named: the job itself, or the array parent or multi-node job
    through which a child or node was stopped. `before` is the job just before the call.
    """

    job_id: str
    operation: str
    named_id: str
    reason: str
    at: datetime
    before: JobTruth
