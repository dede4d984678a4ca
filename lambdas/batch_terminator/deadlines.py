"""The deadline path: Batch job events in, one schedule per job deadline out (or, when the
deadline has passed, a request on the queue at once), stale schedules deleted, terminations
confirmed.

Events are late, duplicated and out of order (EventBridge delivers at least once, in no promised
order), so an event only says which job to look at: the deadline is computed on the job's
DescribeJobs facts (its current status, attempt and tags), 100 jobs a call, never on the event's
copy. The terminator judges the request again when the schedule fires.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batch_terminator.batch_api import BatchApi, BatchCallFailed, OutOfTime
from batch_terminator.contract import JobStatus, Source
from batch_terminator.facts import describe
from batch_terminator.ledger import Ledger, LedgerUnavailable
from batch_terminator.logic.deadlines import (
    Deadline,
    deadlines,
    limiting_rules,
    stale_schedule_names,
)
from batch_terminator.logic.events import Ignored, JobEvent
from batch_terminator.logic.matching import queue_matches
from batch_terminator.logic.rules import TAG_LIMIT_STATUSES, could_match
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.queueing import EnqueueFailed, enqueue
from batch_terminator.scheduling import REQUESTED_BY, SchedulerFailed, Schedules

logger = logging.getLogger(__name__)

Rules = tuple[tuple[JobStatus, str, list[str] | None], ...]


@dataclass(frozen=True)
class Confirmation:
    job_id: str
    seconds: float
    policy: str | None
    request_id: str | None
    source: str | None


@dataclass
class DeadlineRun:
    """What one batch of events came to: a line per event, the messages to retry, the
    confirmed terminations."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    retry: set[str] = field(default_factory=set)
    confirmations: list[Confirmation] = field(default_factory=list)
    enqueued: int = 0

    def note(self, message_id: str, job_id: str | None, outcome: str, **extra: Any) -> None:
        self.lines.append({"message_id": message_id, "job_id": job_id, "outcome": outcome, **extra})


@dataclass(frozen=True)
class DeadlineContext:
    batch: BatchApi
    config: PoliciesFile
    schedules: Schedules
    ledger: Ledger
    sqs: Any
    queue_url: str
    now: datetime


def worth_describing(job: JobSnapshot, config: PoliciesFile) -> bool:
    """Could a scheduled rule limit this job in its status? Unknown facts pass."""
    if job.job_queue is not None and not queue_matches(job.job_queue, config.settings.job_queues):
        return False
    if job.is_array_parent or job.main_node_job_id is not None:
        return False
    if config.settings.max_runtime_tag and job.status in TAG_LIMIT_STATUSES:
        return True
    return any(
        could_match(p, job)
        for p in config.policies
        if p.is_scheduled and p.when.older_than is not None
    )


def run(events: Sequence[tuple[str, JobEvent | Ignored]], context: DeadlineContext) -> DeadlineRun:
    """Act on a batch of parsed events, `(message id, event)` each."""
    result = DeadlineRun()
    limited = limiting_rules(context.config)
    to_describe = _triage(events, context, limited, result)
    if not to_describe:
        return result
    try:
        facts = describe(context.batch, list(to_describe), with_children=False)
    except (BatchCallFailed, OutOfTime) as exc:
        for job_id, waiting in to_describe.items():
            for message_id, _ in waiting:
                result.retry.add(message_id)
                result.note(message_id, job_id, "retried", error=f"DescribeJobs: {exc}")
        return result
    due: dict[Source, list[tuple[str, Deadline]]] = defaultdict(list)
    for job_id, waiting in to_describe.items():
        described = facts.jobs.get(job_id)
        # Duplicates of one job's events share one decision; each message gets its line.
        first, *others = waiting
        try:
            outcome = _decide(first[0], first[1], described, context, limited, result, due)
        except Exception as exc:  # one job's facts never fail the batch: delivered again
            result.retry.add(first[0])
            result.note(first[0], job_id, "retried", error=f"{type(exc).__name__}: {exc}")
            outcome = "retried"
        for message_id, _ in others:
            if first[0] in result.retry:
                result.retry.add(message_id)
            result.note(message_id, job_id, "duplicate", same_as=first[0], decided=outcome)
    _enqueue_due(due, context, result)
    return result


def _triage(
    events: Sequence[tuple[str, JobEvent | Ignored]],
    context: DeadlineContext,
    limited: Rules,
    result: DeadlineRun,
) -> dict[str, list[tuple[str, JobEvent]]]:
    """Settle what the event alone settles (ignored, finished, no rule); return, by job id, the
    events whose job must be described."""
    to_describe: dict[str, list[tuple[str, JobEvent]]] = defaultdict(list)
    for message_id, parsed in events:
        if isinstance(parsed, Ignored):
            result.note(message_id, None, "ignored", why=parsed.why)
            continue
        job = parsed.job
        try:
            if job.status.is_final:
                _finished(message_id, job, context, limited, result)
            elif worth_describing(job, context.config):
                to_describe[job.job_id].append((message_id, parsed))
            else:
                _forget(
                    message_id,
                    job,
                    context,
                    limited,
                    result,
                    "no deadline",
                    why="no rule limits it",
                )
        except Exception as exc:  # one event never fails its batch: SQS delivers it again
            result.retry.add(message_id)
            result.note(message_id, job.job_id, "retried", error=f"{type(exc).__name__}: {exc}")
    return to_describe


def _decide(
    message_id: str,
    event: JobEvent,
    described: JobSnapshot | None,
    context: DeadlineContext,
    limited: Rules,
    result: DeadlineRun,
    due: dict[Source, list[tuple[str, Deadline]]],
) -> str:
    job_id = event.job.job_id
    if described is None:
        # Just created jobs may not be visible to DescribeJobs yet: SQS delivers the event again.
        result.retry.add(message_id)
        result.note(message_id, job_id, "retried", error="DescribeJobs did not return the job")
        return "retried"
    if described.status.is_final:
        _forget(message_id, described, context, limited, result, "finished")
        return "finished"
    if described.job_queue is not None and not queue_matches(
        described.job_queue, context.config.settings.job_queues
    ):
        result.note(message_id, job_id, "ignored", why="queue not allowed")
        return "ignored"
    failed_deletes = _delete_stale(described, context, limited)
    found = deadlines(described, context.config)
    extra: dict[str, Any] = {"status": described.status.value, "attempt": described.attempt}
    if failed_deletes:
        extra["stale_schedules_left"] = failed_deletes
    if not found:
        result.note(message_id, job_id, "no deadline", **extra)
        return "no deadline"
    passed = [d for d in found if d.at <= context.now]
    # Of the rules already past, a request each that terminates (if the first is capped, the
    # next still acts; if the first terminates, the terminator skips the others as already
    # terminated), else the earliest dry run. Each future rule gets its schedule.
    real = [d for d in passed if not d.dry_run]
    now = real or passed[:1]
    outcomes = [
        _arm(message_id, event, each, context, result, due, extra)
        for each in [*now, *(d for d in found if d.at > context.now)]
    ]
    return ", ".join(outcomes)


def _arm(
    message_id: str,
    event: JobEvent,
    found: Deadline,
    context: DeadlineContext,
    result: DeadlineRun,
    due: dict[Source, list[tuple[str, Deadline]]],
    extra: dict[str, Any],
) -> str:
    """One rule's deadline: requested now if it has passed, else its schedule."""
    job_id = found.job.job_id
    extra = {**extra, "rule": found.rule, "deadline": found.at.isoformat(), "schedule": found.name}
    if found.at <= context.now:
        due[event.source].append((message_id, found))
        result.note(message_id, job_id, "due now", **extra)
        return "due now"
    try:
        outcome = context.schedules.put(found, event.source)
    except SchedulerFailed as exc:
        result.retry.add(message_id)
        result.note(message_id, job_id, "retried", error=str(exc), **extra)
        return "retried"
    result.note(message_id, job_id, f"schedule {outcome}", **extra)
    return f"schedule {outcome}"


def _enqueue_due(
    due: dict[Source, list[tuple[str, Deadline]]], context: DeadlineContext, result: DeadlineRun
) -> None:
    """Deadlines already past (a policy deployed later, a late event) are requested at once."""
    for source, pairs in due.items():
        try:
            enqueue(
                context.sqs,
                context.queue_url,
                [d.request(REQUESTED_BY) for _, d in pairs],
                source,
            )
        except EnqueueFailed as exc:
            for message_id, found in pairs:
                result.retry.add(message_id)
                result.note(message_id, found.job.job_id, "retried", error=str(exc))
            continue
        result.enqueued += len(pairs)


def _delete_stale(job: JobSnapshot, context: DeadlineContext, limited: Rules) -> list[str]:
    """Delete the schedules the job may have left in earlier statuses (a node has none);
    returns the names that could not be deleted."""
    if job.main_node_job_id is not None:
        return []
    return context.schedules.delete(stale_schedule_names(job, limited))


def _forget(
    message_id: str,
    job: JobSnapshot,
    context: DeadlineContext,
    limited: Rules,
    result: DeadlineRun,
    outcome: str,
    **extra: Any,
) -> None:
    """A job no rule limits now (finished, or in a status none limits): its schedules go."""
    left = _delete_stale(job, context, limited)
    result.note(message_id, job.job_id, outcome, **extra, stale_schedules_left=left or None)


def _finished(
    message_id: str,
    job: JobSnapshot,
    context: DeadlineContext,
    limited: Rules,
    result: DeadlineRun,
) -> None:
    """A finished job: its schedules go; if we terminated it, the termination is confirmed."""
    left = _delete_stale(job, context, limited)
    if job.status is not JobStatus.FAILED:
        result.note(message_id, job.job_id, "finished", stale_schedules_left=left or None)
        return
    stopped = job.stopped_at or context.now
    try:
        record = context.ledger.confirm_termination(job.job_id, int(stopped.timestamp() * 1000))
    except LedgerUnavailable as exc:
        result.retry.add(message_id)
        result.note(message_id, job.job_id, "retried", error=f"ledger: {exc}")
        return
    if record is None:
        result.note(message_id, job.job_id, "finished", stale_schedules_left=left or None)
        return
    seconds = max(stopped.timestamp() - record.accepted_at_ms / 1000, 0.0)
    result.confirmations.append(
        Confirmation(job.job_id, round(seconds, 3), record.policy, record.request_id, record.source)
    )
    result.note(message_id, job.job_id, "termination confirmed", seconds=round(seconds, 3))
