"""The terminating code path: read current state, apply the safety rules, terminate, account."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from batch_terminator.batch_api import BatchApi, BatchCallFailed, TerminateResult
from batch_terminator.contract import Outcome
from batch_terminator.listing import describe_with_parents, list_jobs
from batch_terminator.logic.parse import ParsedRecord
from batch_terminator.logic.plan import Named, PlannedJob, by_reason, plan
from batch_terminator.logic.safety import Verdict, judge
from batch_terminator.logic.selectors import selector_matches
from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile

UNDECIDED = Verdict(terminate=False, skip_reason=None)


@dataclass
class BatchResult:
    """What happened to one SQS batch: the audit lines, and which messages SQS must redeliver."""

    audit: list[AuditRecord] = field(default_factory=list)
    retry_message_ids: set[str] = field(default_factory=set)
    rejected: list[ParsedRecord] = field(default_factory=list)
    # Selector requests whose limit left matching jobs untouched: (message id, policy, how many).
    limited: list[tuple[str, str | None, int]] = field(default_factory=list)


def rejected_audit(record: ParsedRecord) -> AuditRecord:
    return AuditRecord(
        outcome=Outcome.REJECTED,
        job_id=None,
        job_name=None,
        job_queue=None,
        status_before=None,
        reason=None,
        policy=None,
        source=record.source,
        requested_by=None,
        request_id=None,
        dry_run=False,
        error=record.error,
    )


def process(
    records: Sequence[ParsedRecord], batch: BatchApi, config: PoliciesFile, now: datetime
) -> BatchResult:
    result = BatchResult()
    named: list[Named] = []
    known: dict[str, JobSnapshot] = {}
    for record in records:
        request = record.request
        if request is None:
            result.rejected.append(record)
            result.audit.append(rejected_audit(record))
        elif request.selector is not None:
            try:
                found = expand_selector(batch, record, config, now)
            except BatchCallFailed as exc:
                result.retry_message_ids.add(record.message_id)
                result.audit.append(
                    replace(
                        rejected_audit(record),
                        outcome=Outcome.FAILED,
                        error=str(exc),
                        reason=request.reason,
                    )
                )
                continue
            named.extend(found.named)
            known.update(found.jobs)
            if found.limited:
                result.limited.append((record.message_id, request.policy, found.limited))
        else:
            named.extend(
                Named(record.message_id, request, record.source, job_id)
                for job_id in request.job_id_list
            )
    if not named:
        return result
    try:
        # Safety rule 3: the current state of every job is read before anything is terminated.
        jobs = {
            **known,
            **describe_with_parents(batch, [i.job_id for i in named if i.job_id not in known]),
        }
    except BatchCallFailed as exc:
        _fail_all(result, named, str(exc))
        return result
    planned = plan(named, jobs, config)
    results = _terminate(planned, batch)
    for item in planned:
        result.audit.append(_account(item, results, result))
    return result


@dataclass
class Expansion:
    named: list[Named]
    jobs: dict[str, JobSnapshot]
    limited: int = 0


def expand_selector(
    batch: BatchApi, record: ParsedRecord, config: PoliciesFile, now: datetime
) -> Expansion:
    """List the selector's queues and statuses, read the candidates' tags, keep what matches,
    oldest first. Jobs past the request's limit are skipped with the why, never dropped."""
    request = record.request
    assert request is not None
    assert request.selector is not None
    selector = request.selector
    listing = list_jobs(
        batch,
        {queue: set(selector.statuses) for queue in selector.job_queues},
        lambda job: selector_matches(job, selector, now, tags_known=False),
    )
    matched = [job for job in listing.jobs if selector_matches(job, selector, now)]
    matched.sort(key=lambda job: (job.age_since or now, job.job_id))
    named, counted, limited = [], 0, 0
    limit = request.selector_limit
    for job in matched:
        preset = None
        if judge(job, request, config).would_terminate:
            counted += 1
            if counted > limit:
                limited += 1
                preset = Verdict(
                    False, f"limit reached: this request terminates at most {limit} jobs"
                )
        named.append(Named(record.message_id, request, record.source, job.job_id, preset))
    return Expansion(named, {job.job_id: job for job in matched}, limited)


def _terminate(planned: Sequence[PlannedJob], batch: BatchApi) -> dict[str, TerminateResult]:
    results: dict[str, TerminateResult] = {}
    for reason, job_ids in by_reason(planned).items():
        for outcome in batch.terminate(job_ids, reason):
            results[outcome.job_id] = outcome
    return results


def _account(
    item: PlannedJob, results: dict[str, TerminateResult], batch_result: BatchResult
) -> AuditRecord:
    if not item.verdict.terminate:
        return item.audit(Outcome.SKIPPED)
    outcome = results[item.named.job_id]
    if outcome.ok:
        return item.audit(Outcome.TERMINATED)
    # Every failure is retried by SQS and ends in the DLQ after maxReceiveCount; jobs that did
    # terminate meanwhile are skipped as finished or terminating on redelivery.
    batch_result.retry_message_ids.add(item.named.message_id)
    return item.audit(Outcome.FAILED, error=str(outcome.error))


def _fail_all(result: BatchResult, named: Sequence[Named], error: str) -> None:
    """The state could not be read: nothing was decided, every named job is retried."""
    for item in named:
        result.retry_message_ids.add(item.message_id)
        result.audit.append(PlannedJob(item, None, UNDECIDED).audit(Outcome.FAILED, error=error))
