"""Brake function: a CloudWatch alarm entering ALARM (an EventBridge event, a Lambda alarm
action, or an SNS notification) or an AWS Budgets alert runs the policies whose trigger names
it, once per transition, and enqueues what they select with `source: alarm`.

A transition (alarm name plus state timestamp; budget name plus SNS timestamp) is claimed with a
conditional write in the ledger table before the brake runs, so the same transition delivered
twice, by one path or by several, brakes once, across cold starts. If the run fails, the claim is
given back and the error raised: Lambda retries the invocation (asynchronous invocations: twice,
then the function's failure queue).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_terminator.batch_api import BatchApi
from batch_terminator.clients import batch_client, dynamodb_client, sqs_client
from batch_terminator.config import load_config
from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    LEDGER_TABLE_ENV,
    METRICS_NAMESPACE,
    REQUEST_QUEUE_URL_ENV,
    SERVICE_NAME,
)
from batch_terminator.ledger import Ledger
from batch_terminator.logging_setup import make_logger
from batch_terminator.logic.events import ALARM, BrakeSignal, Ignored, parse_brake_events
from batch_terminator.logic.rules import AlarmFired, BudgetAlerted, Trigger, applicable_policies
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.reporting import report_policy_run
from batch_terminator.sweeping import run_policies

logger = make_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)

LEDGER_TTL_SECONDS: Final = 19 * 86_400
BRAKES_APPLIED: Final = "BrakesApplied"


@dataclass(frozen=True)
class Dependencies:
    config: PoliciesFile
    batch_client: Any
    sqs_client: Any
    ledger: Ledger
    queue_url: str
    account: str | None


@cache
def dependencies() -> Dependencies:
    return Dependencies(
        config=load_config(),
        batch_client=batch_client(),
        sqs_client=sqs_client(),
        ledger=Ledger(dynamodb_client(), os.environ[LEDGER_TABLE_ENV], LEDGER_TTL_SECONDS),
        queue_url=os.environ[REQUEST_QUEUE_URL_ENV],
        account=os.environ.get(ACCOUNT_ID_ENV) or None,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return process_event(event, dependencies(), datetime.now(UTC))


def trigger_of(signal: BrakeSignal) -> Trigger:
    return AlarmFired(signal.name) if signal.kind == "alarm" else BudgetAlerted(signal.name)


def process_event(event: Any, deps: Dependencies, now: datetime) -> dict[str, Any]:
    """Every signal the event carries: braked, duplicate, or ignored, one log line each.
    Raises what a brake run raised (after giving its claim back), so Lambda retries."""
    outcomes: list[str] = []
    failure: Exception | None = None
    try:
        for signal in parse_brake_events(event, deps.account):
            try:
                outcomes.append(_one(signal, deps, now))
            except Exception as exc:  # the other records of the event still brake
                failure = failure or exc
                outcomes.append("failed")
        if failure is not None:
            raise failure
    finally:
        # Every invocation reports, so an alarm on brakes sees data (0 when nothing braked).
        metrics.add_metric(
            name=BRAKES_APPLIED, unit=MetricUnit.Count, value=outcomes.count("braked")
        )
    return {"outcomes": outcomes}


def _one(signal: BrakeSignal | Ignored, deps: Dependencies, now: datetime) -> str:
    if isinstance(signal, Ignored):
        logger.info("brake event ignored", extra={"why": signal.why})
        return "ignored"
    where = {"kind": signal.kind, "trigger": signal.name, "path": signal.path, "key": signal.key}
    if signal.state != ALARM:
        logger.info(
            "brake event ignored", extra={**where, "why": f"state {signal.state}: no brake"}
        )
        return "ignored"
    trigger = trigger_of(signal)
    if not applicable_policies(deps.config, trigger):
        logger.info(
            "brake event ignored",
            extra={**where, "why": f"no policy's trigger names {signal.kind} {signal.name}"},
        )
        return "ignored"
    if not deps.ledger.claim(signal.key, {"path": signal.path, "claimedAt": now.isoformat()}):
        logger.info("brake already applied", extra=where)
        return "duplicate"
    api = BatchApi(deps.batch_client)
    try:
        run = run_policies(api, deps.config, now, trigger)
        summary = report_policy_run(
            run, deps.sqs_client, deps.queue_url, _run_id(signal), api, logger, metrics
        )
    except Exception:
        logger.exception("brake failed: claim released for a retry", extra=where)
        deps.ledger.release(signal.key)
        raise
    logger.info("brake applied", extra={**where, "enqueued": summary["enqueued"]})
    return "braked"


def _run_id(signal: BrakeSignal) -> str:
    return f"{signal.kind} {signal.name} at {signal.at.isoformat(timespec='seconds')}"[:256]
