"""A Batch job as the emulator keeps it: its true timeline, its attempts and a pending stop.

A job never moves by itself (moto would run it, or mark it SUCCEEDED at once); tests and the
demo move it with `BatchControl`. Three kinds of job share this class:

- a plain job, or an array child (`parent:i`) or a multi-node node (`X#i`): a leaf whose status
  is whatever it last entered;
- an array parent: PENDING while any child is unfinished, then SUCCEEDED if every child
  succeeded, else FAILED (https://docs.aws.amazon.com/batch/latest/userguide/array_jobs.html,
  ListJobs `jobStatus` in the botocore model);
- a multi-node parallel job X: its status, startedAt, stoppedAt, statusReason and attempts are
  the main node's; "the job is finished only if the main node exits. All child nodes are then
  stopped." (https://docs.aws.amazon.com/batch/latest/userguide/multi-node-parallel-jobs.html).

Every change of status goes through `restart`, `enter` or `retry`, each inside a scope of the
backend's `BatchEvents`, which publishes the change as a Batch Job State Change event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from moto.batch.models import Job

from batch_terminator_cli.emulator.truth import JobTruth, StatusEntry

if TYPE_CHECKING:
    from batch_terminator_cli.emulator.batch_events import BatchEvents

ACTIVE: Final = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
BEFORE_STARTING: Final = ("SUBMITTED", "PENDING", "RUNNABLE")
STARTED: Final = ("STARTING", "RUNNING")
FINAL: Final = ("SUCCEEDED", "FAILED")
ALL_STATUSES: Final = (*ACTIVE, *FINAL)
# What Batch copies from ECS when a container exits on its own.
CONTAINER_EXITED: Final = "Essential container in task exited"


@dataclass
class Attempt:
    """A finished attempt, as DescribeJobs lists it in `attempts[]` (AttemptDetail)."""

    started_at: datetime | None  # None: it ended in STARTING, before its container ran
    stopped_at: datetime
    reason: str
    exit_code: int | None  # None when the host or Batch stopped it, not the container
    log_stream: str | None


@dataclass
class PendingStop:
    """A TerminateJob that Batch accepted but that has not landed yet: the job lingers."""

    reason: str
    reads_left: int


class EmulatedJob(Job):
    def __init__(self, *args: Any, retry_strategy: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        now = datetime.now(UTC)
        self._status = "SUBMITTED"
        self.job_created_at = now
        self.history: list[StatusEntry] = [StatusEntry("SUBMITTED", now, 0)]
        self.finished_attempts: list[Attempt] = []
        self.attempt_index = 0
        self.attempt_started_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.status_reason: str | None = None
        # statusReason is a queue-blocking reason (BatchControl.block): it holds while RUNNABLE.
        self.blocked = False
        self.pending_stop: PendingStop | None = None
        # Array parents and multi-node jobs: the reason they were terminated with.
        self.stop_reason: str | None = None
        self.is_cancelled = False
        self.is_terminated = False
        self.retry_strategy = retry_strategy
        self.parent: EmulatedJob | None = None  # an array child's parent
        self.main_job: EmulatedJob | None = None  # a node's multi-node job
        self.node_index: int | None = None
        self.nodes: list[EmulatedJob] | None = None  # a multi-node job's nodes
        self.main_node_index = 0
        self.describe_lag_used = 0

    # -- what kind of job ------------------------------------------------------------------
    @property
    def children(self) -> list[EmulatedJob]:
        return list(self._child_jobs or [])  # type: ignore[arg-type]

    @property
    def members(self) -> list[EmulatedJob]:
        """Array children or multi-node nodes: the jobs a TerminateJob on this one reaches."""
        return self.children or list(self.nodes or [])

    @property
    def main_node(self) -> EmulatedJob | None:
        return self.nodes[self.main_node_index] if self.nodes else None

    @property
    def timing(self) -> EmulatedJob:
        """The job whose timestamps, reason and attempts Batch shows for this one."""
        return self.main_node or self

    # A plain attribute: moto's state manager would advance it on every read.
    @property
    def status(self) -> str:
        if self._child_jobs:
            statuses = [child._status for child in self.children]
            if any(s in ACTIVE for s in statuses):
                return "PENDING"
            return "SUCCEEDED" if all(s == "SUCCEEDED" for s in statuses) else "FAILED"
        main = self.main_node
        return str(main._status if main is not None else self._status)

    @status.setter
    def status(self, value: str) -> None:
        self._status = value

    @property
    def flags(self) -> tuple[bool, bool]:
        """(isCancelled, isTerminated) as Batch shows them."""
        source = self.main_node if self.nodes else self
        assert source is not None
        return source.is_cancelled, source.is_terminated

    def effective_tags(self) -> dict[str, str]:
        own = self.backend.list_tags_for_resource(self.arn)
        owner = self.parent or self.main_job
        return {**owner.effective_tags(), **own} if owner is not None else dict(own)

    @property
    def _events(self) -> BatchEvents:
        """The events of the emulated backend this job lives in (`batch_events.py`)."""
        return self.backend.events  # type: ignore[attr-defined,no-any-return]

    # -- the timeline ----------------------------------------------------------------------
    def restart(self, created_at: datetime) -> None:
        """Rewrite the job's past: it was submitted at `created_at` and nothing happened since."""
        with self._events.scope():
            self._events.touch(self)
            self._restart(created_at)

    def _restart(self, created_at: datetime) -> None:
        self.blocked = False
        self.job_created_at = created_at
        self._status = "SUBMITTED"
        self.history = [StatusEntry("SUBMITTED", created_at, 0)]
        self.finished_attempts = []
        self.attempt_index = 0
        self.attempt_started_at = None
        self.stopped_at = None
        self.status_reason = None
        self.pending_stop = None
        self.stop_reason = None
        self.is_cancelled = self.is_terminated = False

    def enter(
        self,
        status: str,
        at: datetime,
        *,
        started_at: datetime | None = None,
        reason: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        """Move a leaf job to `status` at `at`.

        startedAt is set on entering RUNNING only: it is "when the job transitioned from the
        STARTING state to the RUNNING state" (JobDetail.startedAt, botocore model), so a job in
        STARTING on its first attempt has none. Entering SUCCEEDED or FAILED from STARTING or
        RUNNING ends the attempt and lists it in `attempts[]`.
        """
        with self._events.scope():
            self._events.touch(self)
            self._enter(status, at, started_at=started_at, reason=reason, exit_code=exit_code)

    def _enter(
        self,
        status: str,
        at: datetime,
        *,
        started_at: datetime | None,
        reason: str | None,
        exit_code: int | None,
    ) -> None:
        previous = self._status
        last = self.history[-1]
        if (last.status, last.entered_at) == (status, at):
            return  # the same step twice (a restart at createdAt, then SUBMITTED at createdAt)
        if self.blocked and status != "RUNNABLE":
            self.blocked = False  # what blocked the queue no longer applies to this job
            self.status_reason = None
        if status == "RUNNING":
            self.attempt_started_at = started_at or at
        if status in FINAL:
            self.pending_stop = None  # it ended on its own before a termination landed
            ran = previous in STARTED
            if ran:
                if exit_code is None and reason is None:
                    exit_code = 0 if status == "SUCCEEDED" else 1
                self._end_attempt(at, reason or CONTAINER_EXITED, exit_code)
                self.status_reason = reason or CONTAINER_EXITED
            elif reason is not None:
                self.status_reason = reason
            self.stopped_at = at
        self._status = status
        self.history.append(StatusEntry(status, at, self.attempt_index))
        main = self.main_job
        if status in FINAL and main is not None and main.main_node is self:
            # The main node exited: the job is finished and its other nodes are stopped.
            for node in main.nodes or []:
                if node is not self and node._status not in FINAL:
                    node.enter("FAILED", at, reason=self.status_reason or CONTAINER_EXITED)

    def retry(self, at: datetime, reason: str) -> None:
        """The attempt failed (a Spot reclaim, say) and the retry strategy sends the job back to
        RUNNABLE (https://docs.aws.amazon.com/batch/latest/userguide/job_retries.html). The
        finished attempt goes to `attempts[]`; the top-level startedAt / stoppedAt / statusReason
        keep describing it until the next attempt replaces them."""
        with self._events.scope():
            self._events.touch(self)
            self._retry(at, reason)

    def _retry(self, at: datetime, reason: str) -> None:
        if self._status not in STARTED:
            raise ValueError(f"job {self.job_id} is {self._status}: only STARTING or RUNNING retry")
        if self.pending_stop is not None:
            # "Jobs that are cancelled or terminated aren't retried." (job_retries.html)
            raise ValueError(f"job {self.job_id} is being terminated: it will not be retried")
        allowed = int((self.retry_strategy or {}).get("attempts", 1))
        if self.attempt_index + 1 >= allowed:
            raise ValueError(
                f"job {self.job_id} has no attempts left (retryStrategy attempts {allowed})"
            )
        self._end_attempt(at, reason, None)
        self.status_reason = reason
        self.stopped_at = at
        self.attempt_index += 1
        self.attempt_started_at = None
        self._status = "RUNNABLE"
        self.history.append(StatusEntry("RUNNABLE", at, self.attempt_index))

    def _end_attempt(self, at: datetime, reason: str, exit_code: int | None) -> None:
        started = self.attempt_started_at if self._status == "RUNNING" else None
        stream = self._stream_name if started is not None else None
        self.finished_attempts.append(Attempt(started, at, reason, exit_code, stream))

    # -- termination -----------------------------------------------------------------------
    @property
    def stoppable(self) -> bool:
        """Not finished and not already being stopped: a TerminateJob would change something."""
        if self.members:
            return self.status not in FINAL and self.stop_reason is None
        return self._status not in FINAL and self.pending_stop is None

    def mark_stopping(self, reason: str, linger_reads: int) -> None:
        """Accept a TerminateJob: flag the job at once, let its status linger.

        "Jobs that are in the STARTING or RUNNING state are terminated ... Jobs that have not
        progressed to the STARTING state are cancelled." (TerminateJob, botocore model)
        """
        if self.members:
            # The members carry the stop; a multi-node job shows its main node's flags, and an
            # array parent is PENDING, so it is cancelled.
            self.stop_reason = reason
            self.is_cancelled = bool(self._child_jobs)
            return
        if self._status in BEFORE_STARTING:
            self.is_cancelled = True
        else:
            self.is_terminated = True
        self.pending_stop = PendingStop(reason, linger_reads)
        if linger_reads <= 0:
            self.finish_stopping(datetime.now(UTC))

    def finish_stopping(self, at: datetime) -> bool:
        """The termination lands: FAILED, statusReason = the termination reason."""
        stop = self.pending_stop
        if stop is None:
            return False
        self.enter("FAILED", at, reason=stop.reason)
        return True

    def observe(self) -> None:
        """A read returned this job: one read less to linger (a parent's read counts for its
        children and nodes, whose state it shows)."""
        for member in self.members:
            member.observe()
        stop = self.pending_stop
        if stop is not None:
            stop.reads_left -= 1
            if stop.reads_left <= 0:
                self.finish_stopping(datetime.now(UTC))

    # -- the truth -------------------------------------------------------------------------
    def truth(self) -> JobTruth:
        main = self.main_node
        if main is not None:
            return replace(main.truth(), **self._identity(), main_node_job_id=None)
        if self._child_jobs:
            return self._array_truth()
        current = self.history[-1]
        runnable = next(
            (
                e.entered_at
                for e in reversed(self.history)
                if e.status == "RUNNABLE" and e.attempt == self.attempt_index
            ),
            None,
        )
        return JobTruth(
            status=str(self._status),
            stopping=self.pending_stop is not None,
            entered_at=current.entered_at,
            runnable_since=runnable,
            attempt=self.attempt_index,
            status_reason=self.status_reason,
            main_node_job_id=self.main_job.job_id if self.main_job is not None else None,
            **self._identity(),
        )

    def _array_truth(self) -> JobTruth:
        status, children = self.status, self.children
        if status in FINAL:
            entered = max(child.history[-1].entered_at for child in children)
        else:  # PENDING from the first child that left SUBMITTED
            moves = [e.entered_at for c in children for e in c.history if e.status != "SUBMITTED"]
            entered = min(moves, default=self.job_created_at)
        return JobTruth(
            status=status,
            stopping=any(child.pending_stop is not None for child in children),
            entered_at=entered,
            runnable_since=None,
            attempt=0,
            status_reason=self.stop_reason if status in FINAL else None,
            main_node_job_id=None,
            **self._identity(),
        )

    def _identity(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "created_at": self.job_created_at,
            "queue_arn": self.job_queue.arn,
            "queue_name": self.job_queue.name,
            "job_definition_arn": self.job_definition.arn,
            "job_name": self.job_name,
            "tags": self.effective_tags(),
            "array_parent_id": self.parent.job_id if self.parent is not None else None,
        }
