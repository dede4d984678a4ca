"""Sweeper: on a schedule, evaluate the policies and enqueue a request per selected job.

While the system is paused (`pausing.py`) a sweep does nothing but log one `paused` line; if the
pause switch cannot be read the sweep fails (its schedule's retries, then its failure queue):
a policy path never acts while it cannot know whether it may."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_terminator.batch_api import BatchApi
from batch_terminator.clients import batch_client, dynamodb_client, sqs_client
from batch_terminator.config import load_config
from batch_terminator.contract import (
    LEDGER_TABLE_ENV,
    METRICS_NAMESPACE,
    REQUEST_QUEUE_URL_ENV,
    SERVICE_NAME,
)
from batch_terminator.decisions import DecisionEvents, decision_events_from_environment
from batch_terminator.logging_setup import make_logger
from batch_terminator.logic.evaluate import Scheduled
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.pausing import read_pause
from batch_terminator.reporting import report_paused, report_policy_run
from batch_terminator.sweeping import PolicyRun, run_policies

logger = make_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

SWEEPS_PAUSED: Final = "SweepsPaused"


@dataclass(frozen=True)
class Dependencies:
    config: PoliciesFile
    batch_client: Any
    sqs_client: Any
    request_queue_url: str
    # The ledger table's client and name, for the pause switch.
    dynamodb_client: Any
    ledger_table: str
    # Where capped runs are published as decision events; None: not published.
    decisions: DecisionEvents | None = None


@cache
def dependencies() -> Dependencies:
    return Dependencies(
        load_config(),
        batch_client(),
        sqs_client(),
        os.environ[REQUEST_QUEUE_URL_ENV],
        dynamodb_client(),
        os.environ[LEDGER_TABLE_ENV],
        decision_events_from_environment(),
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sweep(
        dependencies(), run_id=str(event.get("id") or context.aws_request_id), now=datetime.now(UTC)
    )


def sweep(deps: Dependencies, run_id: str, now: datetime) -> dict[str, Any]:
    """One sweep: its summary. Paused: `{"paused": True, ...}`, nothing evaluated or sent.
    Raises botocore errors when the pause switch cannot be read (the sweep is retried)."""
    pause = read_pause(deps.dynamodb_client, deps.ledger_table)
    if pause is not None:
        # Every sweep reports a metric: a paused one says so (an alarm on it sees data).
        metrics.add_metric(name=SWEEPS_PAUSED, unit=MetricUnit.Count, value=1)
        return report_paused(pause, logger, path="sweep", run_id=run_id)
    api = BatchApi(deps.batch_client)
    run = run_policies(api, deps.config, now, Scheduled())
    return report_run(run, deps.sqs_client, deps.request_queue_url, run_id, api, deps.decisions)


def report_run(
    run: PolicyRun,
    sqs: Any,
    queue_url: str,
    run_id: str,
    api: BatchApi,
    decisions: DecisionEvents | None = None,
) -> dict[str, Any]:
    """Enqueue the run's requests, then log its summary and count capped policies."""
    return report_policy_run(run, sqs, queue_url, run_id, api, logger, metrics, decisions)
