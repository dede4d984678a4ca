"""How long a job has been in its current status, from the facts Batch records. Pure.

Batch records few transition times, so each status has its own rule (all in the job's current
attempt; an attempt ends when its container stops, and a retried job goes back to RUNNABLE):

| status    | entered at                                                                     |
|-----------|--------------------------------------------------------------------------------|
| SUBMITTED | `createdAt`                                                                    |
| PENDING   | `createdAt` (Batch records no time for leaving SUBMITTED, which takes seconds)   |
| RUNNABLE  | first attempt: `createdAt`, or when its last dependency stopped if it has any;  |
|           | a retry: the previous attempt's `stoppedAt` (`attempts[-1]`)                   |
| STARTING  | the same as RUNNABLE: Batch records no time for entering STARTING (`startedAt`  |
|           | is set on STARTING → RUNNING only), so STARTING counts the whole wait to run    |
| RUNNING   | `startedAt`, if it belongs to the current attempt (top-level `startedAt` is the |
|           | last attempt's, so it must be later than the previous attempt's `stoppedAt`)    |

Sources: botocore's Batch model (`JobDetail.startedAt`: "when the job transitioned from the
STARTING state to the RUNNING state"; `attempts`), and the Batch user guide, "Job states" and
"Automated job retries" (a failed attempt with retries left moves the job back to RUNNABLE).

When the rule needs a fact Batch did not give (no `createdAt`, an unresolved dependency, a stale
or missing `startedAt`, facts from a ListJobs summary), the age is unknown (None), and a job of
unknown age is never selected by an age limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from batch_terminator.contract import JobStatus
from batch_terminator.models.job import JobSnapshot


def runnable_since(job: JobSnapshot) -> datetime | None:
    """When the job became RUNNABLE in its current attempt; None when Batch does not say."""
    if job.attempts:
        return job.attempts[-1].stopped_at
    if job.created_at is None:
        return None
    if job.depends_on:
        done = job.dependencies_done_at
        return None if done is None else max(done, job.created_at)
    return job.created_at


def status_entered_at(job: JobSnapshot) -> datetime | None:
    """When the job entered its current status in its current attempt (table above)."""
    if not job.described:
        return None
    status = job.status
    if status in (JobStatus.SUBMITTED, JobStatus.PENDING):
        return job.created_at if not job.attempts else None
    if status in (JobStatus.RUNNABLE, JobStatus.STARTING):
        return runnable_since(job)
    if status is JobStatus.RUNNING:
        started = job.started_at
        previous_stop = job.attempts[-1].stopped_at if job.attempts else None
        if started is None or (previous_stop is not None and started < previous_stop):
            return None
        return started
    return None


def age_in_status(job: JobSnapshot, now: datetime) -> timedelta | None:
    """Time in the current status (never negative); None when unknown."""
    since = status_entered_at(job)
    return None if since is None else max(now - since, timedelta(0))


def at_most_age(job: JobSnapshot, now: datetime) -> timedelta | None:
    """An upper bound of the age, good enough to decide which listed jobs to describe: no status
    is entered before the job exists. None when even that is unknown."""
    if job.described:
        known = age_in_status(job, now)
        if known is not None:
            return known
    if job.status is JobStatus.RUNNING and job.started_at is not None:
        return max(now - job.started_at, timedelta(0))
    return None if job.created_at is None else max(now - job.created_at, timedelta(0))
