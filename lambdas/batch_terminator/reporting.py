"""Audit log lines and EMF metrics for a set of decisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from batch_terminator.contract import METRICS_NAMESPACE, SERVICE_NAME, Outcome
from batch_terminator.models.audit import AUDIT_MESSAGE, AuditRecord

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
