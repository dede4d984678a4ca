"""The emulator's clock: time passes without anyone sleeping.

The handlers read the real time (`datetime.now(UTC)`), as they do in Lambda. To let an emulated
hour pass in no time, `advance(delta)` moves the emulated world `delta` into the past instead:

- every job timestamp: createdAt, each status entry of its history (so startedAt, the time it
  entered its status, RUNNABLE since ...), each finished attempt's startedAt and stoppedAt, the
  job's stoppedAt, and the records of the terminations made so far;
- every one-time schedule's `at(...)` time (rounded up to the second, never earlier).

For everything that reads the real clock, now is then now + delta: a job's age grows by
`delta`, a schedule `delta` ahead is due. What does not move: SQS (message delays, visibility
timeouts, retention), DynamoDB TTLs, CloudWatch Logs timestamps, events already published, and
whatever a handler remembers itself.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from batch_terminator_cli.emulator import scheduler
from batch_terminator_cli.emulator.batch import EmulatedBatchBackend
from batch_terminator_cli.emulator.jobs import EmulatedJob
from batch_terminator_cli.emulator.truth import JobTruth


def advance(backend: EmulatedBatchBackend, delta: timedelta) -> None:
    """Let `delta` pass for the backend's jobs and the same account and region's schedules."""
    if delta < timedelta(0):
        raise ValueError("time only moves forward")
    with backend.lock:
        for job in list(backend._jobs.values()):
            if isinstance(job, EmulatedJob):
                _shift_job(job, delta)
        backend.termination_log[:] = [
            replace(event, at=event.at - delta, before=_shift_truth(event.before, delta))
            for event in backend.termination_log
        ]
    scheduler.shift(backend.account_id, backend.region_name, delta)


def _shift_job(job: EmulatedJob, delta: timedelta) -> None:
    job.job_created_at -= delta
    job.history = [replace(entry, entered_at=entry.entered_at - delta) for entry in job.history]
    for attempt in job.finished_attempts:
        attempt.stopped_at -= delta
        if attempt.started_at is not None:
            attempt.started_at -= delta
    if job.attempt_started_at is not None:
        job.attempt_started_at -= delta
    if job.stopped_at is not None:
        job.stopped_at -= delta


def _shift_truth(truth: JobTruth, delta: timedelta) -> JobTruth:
    return replace(
        truth,
        entered_at=truth.entered_at - delta,
        created_at=truth.created_at - delta,
        runnable_since=truth.runnable_since - delta if truth.runnable_since else None,
    )
