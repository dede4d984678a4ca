"""Decide, for every job named by a batch of requests, whether to terminate it, and account for it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from batch_terminator.contract import Outcome, Source
from batch_terminator.logic.safety import Verdict, judge
from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.models.request import TerminationRequest


@dataclass(frozen=True)
class Named:
    """A job named by one request of one SQS record (by id, or found by a selector)."""

    message_id: str
    request: TerminationRequest
    source: Source
    job_id: str
    # Decided before planning (a selector's limit reached), instead of by the safety rules.
    preset: Verdict | None = None


@dataclass(frozen=True)
class PlannedJob:
    named: Named
    job: JobSnapshot | None
    verdict: Verdict

    def audit(self, outcome: Outcome, error: str | None = None) -> AuditRecord:
        request, job = self.named.request, self.job
        return AuditRecord(
            outcome=outcome,
            job_id=self.named.job_id,
            job_name=job.job_name if job else None,
            job_queue=job.job_queue if job else None,
            status_before=job.status.value if job else None,
            reason=request.reason,
            policy=request.policy,
            source=self.named.source,
            requested_by=request.requested_by,
            request_id=request.request_id,
            dry_run=self.verdict.dry_run,
            error=error,
            skip_reason=None if outcome is not Outcome.SKIPPED else self.verdict.skip_reason,
        )


def plan(
    named: Iterable[Named], jobs: Mapping[str, JobSnapshot], config: PoliciesFile
) -> list[PlannedJob]:
    """Judge each named job once; a job named again in the same batch is skipped as a duplicate."""
    planned: list[PlannedJob] = []
    first_named_by: dict[str, str] = {}
    for item in named:
        job = jobs.get(item.job_id)
        earlier = first_named_by.get(item.job_id)
        if earlier is not None:
            verdict = Verdict(False, f"duplicate: also named by message {earlier} in this batch")
        else:
            first_named_by[item.job_id] = item.message_id
            verdict = item.preset or judge(job, item.request, config)
        planned.append(PlannedJob(item, job, verdict))
    return planned


def by_reason(planned: Sequence[PlannedJob]) -> dict[str, list[str]]:
    """Jobs to terminate, grouped by reason: one bulk call carries one reason."""
    groups: dict[str, list[str]] = defaultdict(list)
    for item in planned:
        if item.verdict.terminate:
            groups[item.named.request.reason].append(item.named.job_id)
    return dict(groups)
