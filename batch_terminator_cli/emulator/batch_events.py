"""The events the emulated Batch sends to EventBridge, delivered through moto's rules.

"Anytime that an existing (previously submitted) job changes states, an event is created ...
Events aren't created for the initial job submission." The `detail` "resembles the JobDetail
object that's returned from a DescribeJobs API operation" (AWS Batch user guide, "Job state
change events", https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html); its
`tags` holds `resourceArn`, not the job's tags (the sample events in the user guide).
"Anytime that AWS Batch detects a job in the RUNNABLE state and thus blocking a queue" a `Batch
Job Queue Blocked` event names the job and its queue in `resources`, with the blocking reason in
`statusReason` (https://docs.aws.amazon.com/batch/latest/userguide/batch-job-queue-blocked-events.html).

How jobs publish:

- every change of a job's status is made inside a scope (`BatchEvents.scope`, opened by the job
  itself or around a whole operation); the jobs touched in it are compared before and after,
  and each job whose status (or current status entry) changed publishes ONE event for the
  status it ends in, timed when it entered that status. A live transition (a job that starts,
  retries, or whose termination lands as FAILED) is one event; a job staged with a past history
  (`BatchControl.staging`, `add_jobs`, `BatchWorld`) publishes one event for where it ends, as if
  the earlier ones had been missed. SUBMITTED publishes nothing;
- an array parent publishes when its status, which follows its children, changes; a multi-node
  job when its main node's does; array children and nodes publish their own;
- `enabled = False` publishes nothing (big benchmarks);
- EventBridge delivers events from AWS services at least once ("Durable delivery means the
  service will successfully attempt to deliver events to EventBridge at least once", EventBridge
  user guide, "Event delivery from AWS services") and in no guaranteed order: `duplicate` makes
  the next events arrive twice (same id), `delay` holds the next events back until a later one
  has been delivered (or `release`).

`published` keeps the last events published (one entry per event, however many copies were
delivered), for tests.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from batch_terminator.contract import BATCH_EVENT_SOURCE, JOB_QUEUE_BLOCKED, JOB_STATE_CHANGE
from batch_terminator_cli.emulator import eventbridge
from batch_terminator_cli.emulator.shapes import job_detail

if TYPE_CHECKING:
    from batch_terminator_cli.emulator.jobs import EmulatedJob

# How many published events `published` keeps (the oldest are dropped first).
KEPT: Final = 10_000


def _state(job: EmulatedJob) -> tuple[str, Any]:
    """What an event reports a change of: the status, and the entry it was entered with (a job
    restaged into the same status at another time changed too). An array parent has no entries
    of its own: its status follows its children."""
    if job._child_jobs:
        return job.status, None
    return job.status, job.timing.history[-1]


def _entered_at(job: EmulatedJob) -> datetime:
    if job._child_jobs:
        return job.truth().entered_at
    return job.timing.history[-1].entered_at


def _time(moment: datetime) -> str:
    """EventBridge's `time`: ISO 8601 UTC to the second, as in the user guide's samples."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _detail(job: EmulatedJob) -> dict[str, Any]:
    detail = job_detail(job)
    detail["tags"] = {"resourceArn": job.arn}
    return detail


class BatchEvents:
    """The events of one emulated Batch backend (account and region)."""

    def __init__(self, account_id: str, region: str, lock: threading.RLock) -> None:
        self.account_id = account_id
        self.region = region
        self.enabled = True
        self.published: deque[dict[str, Any]] = deque(maxlen=KEPT)
        # Rules whose targets failed (moto raises for target types it does not deliver to);
        # real EventBridge never fails the service that sent the event.
        self.delivery_errors: list[str] = []
        self._lock = lock
        self._depth = 0
        self._before: dict[str, tuple[EmulatedJob, tuple[str, Any]]] = {}
        self._duplicates: deque[int] = deque()
        self._to_hold = 0
        self._held: list[dict[str, Any]] = []

    # -- what changed ----------------------------------------------------------------------
    @contextmanager
    def scope(self) -> Iterator[None]:
        """Changes made inside publish when the outermost scope ends: one event per job."""
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    before, self._before = self._before, {}
                    self._publish_changes(before)

    def touch(self, job: EmulatedJob) -> None:
        """`job` is about to change (inside a scope): remember how it, and the array or
        multi-node job whose status follows it, were."""
        if not self.enabled:
            return
        for target in (job, job.parent, job.main_job):
            if target is not None and target.job_id not in self._before:
                self._before[target.job_id] = (target, _state(target))

    def _publish_changes(self, before: dict[str, tuple[EmulatedJob, tuple[str, Any]]]) -> None:
        if not self.enabled:
            return
        events = []
        # Jobs that run containers first, then the array or multi-node jobs that follow them.
        for job, was in sorted(before.values(), key=lambda item: bool(item[0].members)):
            now = _state(job)
            if now != was and now[0] != "SUBMITTED":
                events.append(
                    self._envelope(JOB_STATE_CHANGE, [job.arn], _detail(job), _entered_at(job))
                )
        self._deliver(events)

    def blocked(self, job: EmulatedJob, at: datetime) -> dict[str, Any] | None:
        """Publish a Batch Job Queue Blocked event for `job` (RUNNABLE, its reason set)."""
        if not self.enabled:
            return None
        with self._lock:
            event = self._envelope(
                JOB_QUEUE_BLOCKED, [job.arn, job.job_queue.arn], _detail(job), at
            )
            self._deliver([event])
            return event

    def _envelope(
        self, detail_type: str, resources: list[str], detail: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": BATCH_EVENT_SOURCE,
            "account": self.account_id,
            "time": _time(at),
            "region": self.region,
            "resources": resources,
            "detail": detail,
        }

    # -- delivery and its faults -----------------------------------------------------------
    def duplicate(self, times: int, copies: int) -> None:
        self._duplicates.extend([copies] * times)

    def delay(self, times: int) -> None:
        self._to_hold += times

    def release(self) -> int:
        """Deliver the events held back now; how many deliveries that made."""
        with self._lock:
            held, self._held = self._held, []
            for event in held:
                self._send(event)
            return len(held)

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.published.append(event)
            copies = [event] * (1 + (self._duplicates.popleft() if self._duplicates else 0))
            if self._to_hold > 0:
                self._to_hold -= 1
                self._held.extend(copies)
                continue
            for copy in copies:
                self._send(copy)
            if self._held:
                self.release()  # a later event went first: the held ones arrive out of order

    def _send(self, event: dict[str, Any]) -> None:
        self.delivery_errors.extend(eventbridge.deliver(self.account_id, self.region, event))
