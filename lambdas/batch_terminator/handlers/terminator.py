"""Terminator: the SQS consumer, and the only function that terminates jobs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_terminator.batch_api import BatchApi
from batch_terminator.clients import batch_client, sqs_client
from batch_terminator.config import load_config
from batch_terminator.contract import ERROR_ATTRIBUTE, METRICS_NAMESPACE, SERVICE_NAME
from batch_terminator.logging_setup import make_logger
from batch_terminator.logic.parse import ParsedRecord, parse_record
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.reporting import count_outcomes, write_audit
from batch_terminator.terminations import process

logger = make_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)


@dataclass(frozen=True)
class Dependencies:
    config: PoliciesFile
    batch_client: Any
    sqs_client: Any
    dlq_url: str


@cache
def dependencies() -> Dependencies:
    return Dependencies(load_config(), batch_client(), sqs_client(), os.environ["DLQ_URL"])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_event(event, dependencies())


def process_event(event: dict[str, Any], deps: Dependencies) -> dict[str, Any]:
    records = [parse_record(record) for record in event.get("Records", [])]
    batch = BatchApi(deps.batch_client)
    result = process(records, batch, deps.config, datetime.now(UTC))
    unparked = park_rejected(deps, result.rejected)
    write_audit(logger, result.audit)
    for message_id, policy, limited in result.limited:
        logger.warning(
            "selector limit reached",
            extra={"message_id": message_id, "policy": policy, "left_for_later": limited},
        )
    count_outcomes(metrics, result.audit, capped=_capped_by_policy(result.limited) or None)
    retry = result.retry_message_ids | unparked
    logger.info(
        "batch processed",
        extra={"records": len(records), "retried": len(retry), "batch_calls": dict(batch.calls)},
    )
    return {
        "batchItemFailures": [
            {"itemIdentifier": r.message_id} for r in records if r.message_id in retry
        ]
    }


def _capped_by_policy(limited: list[tuple[str, str | None, int]]) -> dict[str | None, int]:
    capped: dict[str | None, int] = {}
    for _, policy, _count in limited:
        capped[policy] = capped.get(policy, 0) + 1
    return capped


def park_rejected(deps: Dependencies, rejected: list[ParsedRecord]) -> set[str]:
    """Invalid requests go straight to the DLQ with their error: retrying cannot fix them.

    Returns the ids of messages that could not be parked; SQS redelivers those.
    """
    unparked: set[str] = set()
    for record in rejected:
        try:
            deps.sqs_client.send_message(
                QueueUrl=deps.dlq_url,
                MessageBody=record.body or "<empty>",
                MessageAttributes={
                    ERROR_ATTRIBUTE: {
                        "DataType": "String",
                        "StringValue": record.error or "invalid",
                    },
                    "rejectedMessageId": {"DataType": "String", "StringValue": record.message_id},
                },
            )
        except Exception:  # any failure: keep the message, SQS will redeliver it
            logger.exception(
                "could not park rejected request", extra={"message_id": record.message_id}
            )
            unparked.add(record.message_id)
    return unparked
