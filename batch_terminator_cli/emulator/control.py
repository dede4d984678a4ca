"""Test and demo controls that Batch itself has no API for: time, state, behaviour, faults, the
events Batch sends, and the ground truth (what really happened, whatever Batch shows)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from moto.core.models import DEFAULT_ACCOUNT_ID

from batch_terminator_cli.emulator import clock, scheduler
from batch_terminator_cli.emulator.batch import EmulatedBatchBackend, emulated_batch_backends
from batch_terminator_cli.emulator.behaviour import Behaviour
from batch_terminator_cli.emulator.faults import BulkError
from batch_terminator_cli.emulator.jobs import ALL_STATUSES, FINAL, STARTED, EmulatedJob
from batch_terminator_cli.emulator.responses import install
from batch_terminator_cli.emulator.truth import JobTruth, StatusEntry, TerminationEvent

# How long the steps before a job's current status took, in the stories below.
QUEUED: Final = timedelta(minutes=3)  # RUNNABLE before it started
LAUNCH: Final = timedelta(seconds=30)  # STARTING before RUNNING
RAN: Final = timedelta(minutes=3)  # RUNNING before a finished job stopped
# The statusReason Batch gives an attempt whose Spot instance was reclaimed.
HOST_TERMINATED: Final = "Host EC2 (instance i-0123456789abcdef0) terminated."


def story(status: str, since: datetime) -> tuple[datetime, list[tuple[str, datetime]]]:
    """(createdAt, [(status, entered_at)]) of a first-attempt job that entered `status` at `since`.

    SUBMITTED / PENDING / RUNNABLE: created then. STARTING: RUNNABLE since created, QUEUED
    earlier. RUNNING: the same, STARTING for LAUNCH, RUNNING (startedAt) since `since`.
    SUCCEEDED / FAILED: ran for RAN and stopped at `since`.
    """
    if status not in ALL_STATUSES:
        raise ValueError(f"unknown status {status}")
    if status == "SUBMITTED":
        return since, []
    if status in ("PENDING", "RUNNABLE"):
        return since, [(status, since)]
    started = since - RAN if status in FINAL else since
    created = started - QUEUED
    if status == "STARTING":
        return created, [("RUNNABLE", created), ("STARTING", since)]
    steps = [("RUNNABLE", created), ("STARTING", started - LAUNCH), ("RUNNING", started)]
    return created, steps + ([(status, since)] if status in FINAL else [])


class BatchControl:
    def __init__(self, account_id: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> None:
        install()
        self.account_id = account_id
        self.region = region

    @property
    def backend(self) -> EmulatedBatchBackend:
        return emulated_batch_backends[self.account_id][self.region]

    def job(self, job_id: str) -> EmulatedJob:
        job = self.backend.find(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def jobs(self) -> Iterable[EmulatedJob]:
        return [j for j in self.backend._jobs.values() if isinstance(j, EmulatedJob)]

    # -- behaviour -------------------------------------------------------------------------
    @property
    def behaviour(self) -> Behaviour:
        return self.backend.behaviour

    def configure(self, behaviour: Behaviour) -> None:
        """How realistic this account and region's Batch is from now on (default: realistic)."""
        self.backend.behaviour = behaviour

    # -- moving jobs -----------------------------------------------------------------------
    def set_state(
        self,
        job_id: str,
        status: str,
        *,
        entered_at: datetime | None = None,
        created_at: datetime | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """The job enters `status` at `entered_at` (now unless given).

        `created_at` rewrites the job's past first: it was submitted then and nothing happened
        since. startedAt is set on entering RUNNING only (`started_at`, else `entered_at`).
        A multi-node job moves its nodes: the main node to `status`, the others too once the
        main node runs (they are launched only then; RUNNABLE before). An array parent's status
        follows its children: only PENDING (with `created_at`) is accepted for it.
        """
        if status not in ALL_STATUSES:
            raise ValueError(f"unknown status {status}")
        at = entered_at or datetime.now(UTC)
        with self.backend.events.scope():  # one event per job for where it ends
            job = self.job(job_id)
            if created_at is not None:
                job.restart(created_at)
            if job._child_jobs:
                if status != "PENDING":
                    raise ValueError("an array parent's status follows its children: move them")
                return
            if not job.nodes:
                job.enter(status, at, started_at=started_at)
                return
            main = job.main_node
            for node in sorted(job.nodes, key=lambda n: n is main):  # the main node last
                if created_at is not None:
                    node.restart(created_at)
                moved = status
                if node is not main and status not in ("RUNNING", *FINAL):
                    moved = "RUNNABLE" if status == "STARTING" else status
                if node._status != moved:
                    node.enter(moved, at, started_at=started_at)

    def retry(
        self, job_id: str, *, stopped_at: datetime | None = None, reason: str = HOST_TERMINATED
    ) -> None:
        """End the current attempt (STARTING or RUNNING) as a failure the retry strategy retries:
        the attempt goes to `attempts[]` and the job is RUNNABLE again from `stopped_at`.

        A multi-node job retries as a whole; its nodes must all be STARTING or RUNNING.
        """
        at = stopped_at or datetime.now(UTC)
        with self.backend.events.scope():
            job = self.job(job_id)
            if job._child_jobs:
                raise ValueError("an array parent does not retry: retry its children")
            for target in job.nodes or [job]:
                if target._status not in STARTED:
                    raise ValueError(f"{target.job_id} is {target._status}, not STARTING/RUNNING")
            for target in job.nodes or [job]:
                target.retry(at, reason)

    def block(self, job_id: str, reason: str, *, at: datetime | None = None) -> None:
        """Batch finds the RUNNABLE job blocking its queue: its statusReason becomes `reason`
        (DescribeJobs and ListJobs show it until the job leaves RUNNABLE) and a Batch Job Queue
        Blocked event is published at `at` (now unless given). A multi-node job's reason is its
        main node's."""
        with self.backend.lock:
            job = self.job(job_id)
            if job._child_jobs:
                raise ValueError("an array parent is PENDING, never blocked: block its children")
            if job.status != "RUNNABLE":
                raise ValueError(f"{job_id} is {job.status}: only RUNNABLE jobs block a queue")
            job.timing.status_reason = reason
            job.timing.blocked = True
            self.backend.events.blocked(job, at or datetime.now(UTC))

    def settle(self) -> list[str]:
        """Every lingering termination lands now: those jobs are FAILED. Returns their ids."""
        return self.backend.settle()

    # -- ground truth ----------------------------------------------------------------------
    def truth(self, job_id: str) -> JobTruth:
        with self.backend.lock:
            return self.job(job_id).truth()

    def history(self, job_id: str) -> list[StatusEntry]:
        """Every status the job entered, when, and in which attempt (a leaf job's own; a
        multi-node job's main node's; an array parent has only its SUBMITTED entry)."""
        with self.backend.lock:
            job = self.job(job_id)
            return list(job.timing.history)

    def terminations(self) -> list[TerminationEvent]:
        """Every job a TerminateJob / TerminateJobs (or CancelJob) call stopped, in order.

        Jobs that run containers: plain jobs, array children (also when stopped through their
        parent, `named_id` = the parent) and nodes (also through their multi-node job). The
        array parent or multi-node job itself is not listed: its status only follows them.
        No-ops (finished, already stopping or unknown jobs) are not listed either.
        """
        return list(self.backend.termination_log)

    def add_jobs(
        self,
        queue: str,
        definition: str,
        jobs: Iterable[tuple[str, str, datetime, dict[str, str] | None]],
    ) -> list[str]:
        """Seed many jobs at once, straight into the backend (benchmarks need 100,000 quickly).

        Each item is (name, status, since, tags): the job entered `status` at `since`, with the
        history `story` gives. Queue and definition must exist already. Each job publishes one
        event for its status (SUBMITTED none); `publish_events(False)` first to skip them.
        """
        backend = self.backend
        job_queue = backend.get_job_queue(queue)
        job_definition = backend.get_job_definition(definition)
        if job_queue is None or job_definition is None:
            raise ValueError(f"create queue {queue} and job definition {definition} first")
        ids = []
        with self.staging():
            for name, status, since, tags in jobs:
                job = backend.new_job(name, job_definition, job_queue, tags=tags)
                created, steps = story(status, since)
                job.restart(created)
                for step, at in steps:
                    job.enter(step, at)
                ids.append(job.job_id)
        return ids

    # -- time ------------------------------------------------------------------------------
    def advance(self, delta: timedelta) -> None:
        """Let `delta` pass without sleeping: every job timestamp and every one-time schedule
        of this account and region move `delta` into the past (see `clock.py`)."""
        clock.advance(self.backend, delta)

    # -- events ----------------------------------------------------------------------------
    @contextmanager
    def staging(self) -> Iterator[None]:
        """Jobs moved inside publish one Batch Job State Change event each, for the status they
        end in, when the block ends: a job given a past publishes as if its earlier events had
        been missed."""
        with self.backend.events.scope():
            yield

    def publish_events(self, enabled: bool = True) -> None:
        """Whether Batch publishes events to EventBridge (default on; off for big benchmarks)."""
        self.backend.events.enabled = enabled

    def published_events(self) -> list[dict[str, Any]]:
        """The events published so far (the last 10,000), each once however often delivered."""
        return list(self.backend.events.published)

    def duplicate_events(self, times: int = 1, copies: int = 1) -> None:
        """The next `times` events are delivered `copies` more times, same id: EventBridge
        delivers at least once."""
        self.backend.events.duplicate(times, copies)

    def delay_events(self, times: int = 1) -> None:
        """The next `times` events are held back until a later event has been delivered (or
        `release_events`): EventBridge does not keep their order."""
        self.backend.events.delay(times)

    def release_events(self) -> int:
        """Deliver the events held back now; how many deliveries that made."""
        return self.backend.events.release()

    def fail_schedule_targets(self, times: int = 1, code: str = "ThrottlingException") -> None:
        """The next `times` target invocations of EventBridge Scheduler fail with `code`."""
        scheduler.fail_targets(self.account_id, self.region, times, code)

    # -- faults ----------------------------------------------------------------------------
    def throttle(
        self, operation: str, times: int = 1, code: str = "TooManyRequestsException"
    ) -> None:
        """The next `times` calls of `operation` fail as a whole (429 by default, or ServerException)."""
        self.backend.faults.throttles[operation].extend([code] * times)

    def fail_in_bulk(
        self, job_id: str, code: str = "ClientException", message: str = "injected", times: int = 1
    ) -> None:
        """The next `times` TerminateJobs calls naming `job_id` report it in `errors[]` and leave it."""
        self.backend.faults.bulk_errors[job_id] = BulkError(code, message, times)

    def timeout(
        self, operation: str, times: int = 1, *, applied: bool = False, after: int = 0
    ) -> None:
        """After `after` calls that go through, the next `times` requests of `operation` time
        out: the client raises `botocore.exceptions.ReadTimeoutError` (in process;
        `ConnectionClosedError` under the moto server, see `faults.time_out`).

        `applied=True`: the call takes effect before its answer is lost, as a real read timeout
        allows (a TerminateJobs that timed out may have terminated the jobs). Each HTTP attempt
        counts: with botocore retries on, a retry consumes the next one.
        """
        pending = self.backend.faults.timeouts[operation]
        pending.extend([None] * after)
        pending.extend([applied] * times)

    def hide_from_describe(self, job_id: str, times: int = 1) -> None:
        """The next `times` DescribeJobs calls naming `job_id` leave it out; ListJobs still
        lists it (ListJobs lists a job DescribeJobs does not return)."""
        job = self.job(job_id)
        self.backend.faults.hidden[job.job_id] = times

    def calls(self) -> dict[str, int]:
        return dict(self.backend.faults.calls)

    def reset_calls(self) -> None:
        self.backend.faults.calls.clear()
