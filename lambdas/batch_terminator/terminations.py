"""The terminating code path: read current state, apply the safety rules, terminate, account."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from batch_terminator.batch_api import BatchApi, BatchCallFailed, TerminateResult
from batch_terminator.contract import Outcome
from batch_terminator.logic.parse import ParsedRecord
from batch_terminator.logic.plan import Named, PlannedJob, by_reason, plan
from batch_terminator.logic.safety import Verdict
from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.policies import PoliciesFile

UNDECIDED = Verdict(terminate=False, skip_reason=None)


@dataclass
class BatchResult:
    """What happened to one SQS batch: the audit lines, and which messages SQS must redeliver."""

    audit: list[AuditRecord] = field(default_factory=list)
    retry_message_ids: set[str] = field(default_factory=set)
    rejected: list[ParsedRecord] = field(default_factory=list)


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


def process(records: Sequence[ParsedRecord], batch: BatchApi, config: PoliciesFile) -> BatchResult:
    result = BatchResult()
    named: list[Named] = []
    for record in records:
        if record.request is None:
            result.rejected.append(record)
            result.audit.append(rejected_audit(record))
            continue
        named.extend(
            Named(record.message_id, record.request, record.source, job_id)
            for job_id in record.request.job_id_list
        )
    if not named:
        return result
    try:
        jobs = batch.describe_jobs(item.job_id for item in named)
    except BatchCallFailed as exc:
        _fail_all(result, named, str(exc))
        return result
    planned = plan(named, jobs, config)
    results = _terminate(planned, batch)
    for item in planned:
        result.audit.append(_account(item, results, result))
    return result


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
