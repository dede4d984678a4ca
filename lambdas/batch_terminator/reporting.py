"""Audit log lines and EMF metrics for a set of decisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from batch_terminator.contract import METRICS_NAMESPACE, SERVICE_NAME, Outcome
from batch_terminator.decisions import (
    DECISION_EVENTS_FAILED,
    DecisionEvents,
    cap_decision,
    publish_decisions,
)
from batch_terminator.models.audit import AUDIT_MESSAGE, AuditRecord
from batch_terminator.queueing import enqueue

if TYPE_CHECKING:
    from batch_terminator.batch_api import BatchApi
    from batch_terminator.pausing import Pause
    from batch_terminator.sweeping import PolicyRun

METRIC_BY_OUTCOME: Final = {
    Outcome.TERMINATED: "JobsTerminated",
    Outcome.SKIPPED: "JobsSkipped",
    Outcome.FAILED: "TerminationsFailed",
    Outcome.REJECTED: "RequestsRejected",
}
POLICY_CAP_REACHED: Final = "PolicyCapReached"


def write_audit(logger: Logger, records: Iterable[AuditRecord]) -> None:
    for record in records:
        logger.info(AUDIT_MESSAGE, extra=record.fields())


def report_decisions(
    decisions: DecisionEvents | None,
    records: Iterable[AuditRecord],
    logger: Logger,
    metrics: Metrics,
    *,
    time_left: Callable[[], bool] = lambda: True,
) -> None:
    """Publish `records` as decision events (nothing when `decisions` is None); what could not
    be published gets one warning line and counts in DecisionEventsFailed. Never raises."""
    records = list(records)
    if decisions is None or not records:
        return
    published = publish_decisions(decisions.client, records, decisions.member, time_left=time_left)
    if published.failed:
        logger.warning(
            "decision events not published",
            extra={"sent": published.sent, "failed": published.failed, "error": published.error},
        )
        metrics.add_metric(
            name=DECISION_EVENTS_FAILED, unit=MetricUnit.Count, value=published.failed
        )


def count_outcomes(
    metrics: Metrics,
    records: Iterable[AuditRecord],
    capped: Mapping[str | None, int] | Mapping[str, int] | None = None,
) -> None:
    """Totals carry the service dimension; where a policy applies, a second series adds `policy`."""
    by_policy: Counter[tuple[str, str | None]] = Counter(
        (METRIC_BY_OUTCOME[r.outcome], r.policy) for r in records
    )
    for capped_policy, count in (capped or {}).items():
        by_policy[(POLICY_CAP_REACHED, capped_policy)] += count
    totals: Counter[str] = Counter()
    for (name, _), count in by_policy.items():
        totals[name] += count
    if capped is not None:
        totals.setdefault(POLICY_CAP_REACHED, 0)  # every policy run reports, so alarms see data
    for name, count in totals.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    for (name, policy), count in by_policy.items():
        if policy is None:
            continue
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=count,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"service": SERVICE_NAME, "policy": policy},
        ):
            pass


def report_paused(pause: Pause, logger: Logger, *, path: str, **extra: Any) -> dict[str, Any]:
    """A policy path that did not run because the system is paused: its one `paused` line,
    and its summary (`paused: True`, who paused it, since when in s since epoch UTC, why)."""
    summary = {
        "paused": True,
        "path": path,
        "paused_by": pause.paused_by,
        "paused_at": pause.paused_at,
        "pause_reason": pause.reason,
        "enqueued": 0,
        **extra,
    }
    logger.info("paused", extra=summary)
    return summary


def report_policy_run(
    run: PolicyRun,
    sqs: Any,
    queue_url: str,
    run_id: str,
    api: BatchApi,
    logger: Logger,
    metrics: Metrics,
    decisions: DecisionEvents | None = None,
) -> dict[str, Any]:
    """Enqueue a policy run's requests (sweep or brake), then log its summary line, a warning
    per capped policy and per ignored job, count capped policies and publish each cap as a
    decision event. Raises EnqueueFailed."""
    requests = run.requests(run_id)
    send_calls = enqueue(sqs, queue_url, requests, run.source)
    evaluation = run.evaluation
    caps = []
    for name, capped in evaluation.capped_policies.items():
        logger.warning(
            "policy cap reached",
            extra={
                "policy": name,
                "capped": capped,
                "max_per_run": evaluation.counts[name].cap,
                "run_id": run_id,
            },
        )
        dry_run = any(s.dry_run for s in evaluation.selections if s.policy == name)
        caps.append(
            cap_decision(
                name,
                capped,
                evaluation.counts[name].cap,
                run.source,
                run_id=run_id,
                dry_run=dry_run,
            )
        )
    # Each cap is a decision: one audit line in this function's log, and its decision event.
    write_audit(logger, caps)
    report_decisions(decisions, caps, logger, metrics)
    if evaluation.invalid_tags or evaluation.errors:
        # A malformed max-runtime tag, or a job that could not be judged: ignored, run goes on.
        logger.warning(
            "jobs ignored by the policy run",
            extra={
                "invalid_max_runtime_tags": evaluation.invalid_tags,
                "errors": evaluation.errors,
                "run_id": run_id,
            },
        )
    count_outcomes(metrics, [], capped=dict.fromkeys(evaluation.capped_policies, 1))
    summary = {
        **run.summary(),
        "run_id": run_id,
        "source": run.source.value,
        "enqueued": len(evaluation.selections),
        "messages": len(requests),
        "batch_calls": dict(api.calls),
        "send_calls": send_calls,
    }
    logger.info("policy run", extra=summary)
    return {"enqueued": len(evaluation.selections), "capped": evaluation.capped_policies}
