"""Deadline function: Batch job events (through the events queue) in; schedules, requests that
are due, and termination confirmations out. See `batch_terminator.deadlines`."""

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
from batch_terminator.clients import batch_client, dynamodb_client, scheduler_client, sqs_client
from batch_terminator.config import load_config
from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    LEDGER_TABLE_ENV,
    METRICS_NAMESPACE,
    REGION_ENV,
    REQUEST_QUEUE_URL_ENV,
    SCHEDULE_DLQ_ARN_ENV,
    SCHEDULE_GROUP_ENV,
    SCHEDULER_ROLE_ARN_ENV,
    SERVICE_NAME,
)
from batch_terminator.deadlines import DeadlineContext, DeadlineRun, run
from batch_terminator.ledger import Ledger
from batch_terminator.logging_setup import make_logger
from batch_terminator.logic.bodies import InvalidRequest, load_json
from batch_terminator.logic.events import Ignored, JobEvent, parse_job_event
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.scheduling import Schedules

logger = make_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

# Brake claims and termination records live as long as the terminator's ledger items.
LEDGER_TTL_SECONDS: Final = 19 * 86_400
TERMINATION_LATENCY: Final = "TerminationLatency"
SCHEDULES_CREATED: Final = "SchedulesCreated"


@dataclass(frozen=True)
class Dependencies:
    config: PoliciesFile
    batch_client: Any
    sqs_client: Any
    scheduler_client: Any
    ledger: Ledger
    queue_url: str
    group: str
    role_arn: str
    dead_letter_arn: str
    account: str | None
    # The function's region (Lambda sets AWS_REGION): events of any other are ignored.
    region: str | None = None


@cache
def dependencies() -> Dependencies:
    return Dependencies(
        config=load_config(),
        batch_client=batch_client(),
        sqs_client=sqs_client(),
        scheduler_client=scheduler_client(),
        ledger=Ledger(dynamodb_client(), os.environ[LEDGER_TABLE_ENV], LEDGER_TTL_SECONDS),
        queue_url=os.environ[REQUEST_QUEUE_URL_ENV],
        group=os.environ[SCHEDULE_GROUP_ENV],
        role_arn=os.environ[SCHEDULER_ROLE_ARN_ENV],
        dead_letter_arn=os.environ[SCHEDULE_DLQ_ARN_ENV],
        account=os.environ.get(ACCOUNT_ID_ENV) or None,
        region=os.environ.get(REGION_ENV) or None,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_event(event, dependencies(), datetime.now(UTC))


def parse_body(body: Any, account: str | None, region: str | None = None) -> JobEvent | Ignored:
    """An SQS body holding one EventBridge event of this account and region (each checked when
    given: a job id names a job in one region only); never raises."""
    if not isinstance(body, str):
        return Ignored("the message has no body")
    try:
        return parse_job_event(load_json(body), account, region)
    except InvalidRequest as exc:
        return Ignored(f"the body is not JSON: {exc}")
    except Exception as exc:  # any body (a 5,000-digit number, say): one line, never the batch
        return Ignored(f"the body cannot be read: {type(exc).__name__}: {str(exc)[:200]}")


def process_event(event: dict[str, Any], deps: Dependencies, now: datetime) -> dict[str, Any]:
    raw = event.get("Records") if isinstance(event, dict) else None
    records = [r for r in (raw if isinstance(raw, list) else []) if isinstance(r, dict)]
    parsed = [
        (str(r.get("messageId", "")), parse_body(r.get("body"), deps.account, deps.region))
        for r in records
    ]
    schedules = Schedules(
        deps.scheduler_client, deps.group, deps.role_arn, deps.dead_letter_arn, deps.queue_url
    )
    batch = BatchApi(deps.batch_client)
    result = run(
        parsed,
        DeadlineContext(
            batch=batch,
            config=deps.config,
            schedules=schedules,
            ledger=deps.ledger,
            sqs=deps.sqs_client,
            queue_url=deps.queue_url,
            now=now,
        ),
    )
    report(result, batch, schedules)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(result.retry)]}


def report(result: DeadlineRun, batch: BatchApi, schedules: Schedules) -> None:
    """One line per event, one per confirmed termination, one summary; latency metrics."""
    for line in result.lines:
        logger.info("deadline event", extra=line)
    for confirmed in result.confirmations:
        logger.info(
            "termination confirmed",
            extra={
                "job_id": confirmed.job_id,
                "seconds_to_stop": confirmed.seconds,
                "policy": confirmed.policy,
                "request_id": confirmed.request_id,
                "source": confirmed.source,
            },
        )
        metrics.add_metric(
            name=TERMINATION_LATENCY, unit=MetricUnit.Seconds, value=confirmed.seconds
        )
    metrics.add_metric(name=SCHEDULES_CREATED, unit=MetricUnit.Count, value=schedules.created)
    logger.info(
        "deadline batch",
        extra={
            "events": len(result.lines),
            "retried": len(result.retry),
            "enqueued": result.enqueued,
            "schedules_created": schedules.created,
            "schedules_updated": schedules.updated,
            "schedules_deleted": schedules.deleted,
            "scheduler_calls": schedules.calls,
            "batch_calls": dict(batch.calls),
            "confirmed": len(result.confirmations),
        },
    )
