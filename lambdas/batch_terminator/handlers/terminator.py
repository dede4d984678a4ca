"""Terminator: the SQS consumer, and the only function that terminates jobs."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_terminator.batch_api import BatchApi
from batch_terminator.clients import (
    CALL_WORST_CASE_SECONDS,
    LEDGER_CALL_WORST_CASE_SECONDS,
    batch_client,
    dynamodb_client,
    sqs_client,
)
from batch_terminator.config import load_config
from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    DEFAULT_MAX_RECEIVE_COUNT,
    DLQ_MAX_MESSAGE_BYTES,
    DLQ_URL_ENV,
    ERROR_ATTRIBUTE,
    LEDGER_KEY_ATTRIBUTE,
    LEDGER_TABLE_ENV,
    LEDGER_TTL_SECONDS_ENV,
    MAX_MESSAGE_ATTRIBUTES,
    MAX_RECEIVE_COUNT_ENV,
    MAX_REQUEST_BODY_BYTES,
    METRICS_NAMESPACE,
    REGION_ENV,
    SERVICE_NAME,
    Outcome,
)
from batch_terminator.decisions import DecisionEvents, decision_events_from_environment
from batch_terminator.ledger import Ledger, LedgerUnavailable, TerminationRecord
from batch_terminator.logging_setup import make_logger
from batch_terminator.logic.parse import ParsedRecord, parse_record
from batch_terminator.models.policies import TAG_LIMIT_CAP, PoliciesFile
from batch_terminator.models.request import Origin
from batch_terminator.pausing import Pause, read_pause
from batch_terminator.reporting import count_outcomes, report_decisions, write_audit
from batch_terminator.terminations import BatchResult, Terminating, process

logger = make_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

# Ledger items outlive the request queue's retention (4 days) and the DLQ's (14 days, for a
# redrive) by a day, unless the stack says otherwise.
DEFAULT_LEDGER_TTL_SECONDS = 19 * 86_400
# No Batch call is started with less time left than one call's worst case, plus what the
# function does after its last call (ledger writes, parking in the DLQ).
RESERVE_MILLIS = (CALL_WORST_CASE_SECONDS + 10) * 1000
# A PutEvents call is started only while its worst case, and a second to return, is left.
PUBLISH_RESERVE_MILLIS = (LEDGER_CALL_WORST_CASE_SECONDS + 1) * 1000
# Array children are read only while this much more is left, for terminating what is decided.
KEEP_FOR_TERMINATING_MILLIS = 30_000


@dataclass(frozen=True)
class Dependencies:
    config: PoliciesFile
    batch_client: Any
    sqs_client: Any
    dlq_url: str
    ledger: Ledger
    # The ledger table's client and name, for the pause switch (`pausing.py`).
    dynamodb_client: Any
    ledger_table: str
    origin: Origin
    max_receive_count: int
    # Where every audit record is also published as a decision event; None: not published.
    decisions: DecisionEvents | None = None


@cache
def dependencies() -> Dependencies:
    dynamodb = dynamodb_client()
    return Dependencies(
        config=load_config(),
        batch_client=batch_client(),
        sqs_client=sqs_client(),
        dlq_url=os.environ[DLQ_URL_ENV],
        ledger=Ledger(
            dynamodb,
            os.environ[LEDGER_TABLE_ENV],
            int(os.environ.get(LEDGER_TTL_SECONDS_ENV) or DEFAULT_LEDGER_TTL_SECONDS),
        ),
        dynamodb_client=dynamodb,
        ledger_table=os.environ[LEDGER_TABLE_ENV],
        origin=Origin(os.environ.get(ACCOUNT_ID_ENV) or None, os.environ.get(REGION_ENV) or None),
        max_receive_count=int(os.environ.get(MAX_RECEIVE_COUNT_ENV) or DEFAULT_MAX_RECEIVE_COUNT),
        decisions=decision_events_from_environment(),
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_event(event, dependencies(), context)


def process_event(
    event: dict[str, Any], deps: Dependencies, context: LambdaContext | None = None
) -> dict[str, Any]:
    raw = event.get("Records")
    raw_records = [r if isinstance(r, dict) else {} for r in (raw if isinstance(raw, list) else [])]
    records = [read_record(record, deps.origin) for record in raw_records]
    # What each message carried, for parking it in the DLQ as it came (with our attributes added).
    carried = {
        record.message_id: carried_attributes(raw_record.get("messageAttributes"))
        for record, raw_record in zip(records, raw_records, strict=True)
    }

    def time_is_low() -> bool:
        return context is not None and context.get_remaining_time_in_millis() < RESERVE_MILLIS

    def enough_time() -> bool:
        return context is None or (
            context.get_remaining_time_in_millis() > RESERVE_MILLIS + KEEP_FOR_TERMINATING_MILLIS
        )

    def lease_until_ms() -> int:
        now_ms = int(time.time() * 1000)
        left = context.get_remaining_time_in_millis() if context is not None else None
        return now_ms + (left if left is not None else 15 * 60 * 1000)

    def pause() -> Pause | None:
        found = read_pause(deps.dynamodb_client, deps.ledger_table)
        if found is not None:
            logger.info(
                "paused",
                extra={
                    "paused_by": found.paused_by,
                    "paused_at": found.paused_at,
                    "pause_reason": found.reason,
                    "path": "terminator",
                },
            )
        return found

    batch = BatchApi(deps.batch_client, time_is_low=time_is_low)
    result = process(
        records,
        Terminating(
            batch=batch,
            config=deps.config,
            now=datetime.now(UTC),
            sink=lambda lines: write_audit(logger, lines),
            ledger=deps.ledger,
            max_receive_count=deps.max_receive_count,
            enough_time=enough_time,
            on_terminated=lambda records: record_terminations(deps.ledger, records),
            lease_until_ms=lease_until_ms,
            read_pause=pause,
            event_cap=lambda policy, jobs: event_path_allowance(deps, policy, jobs),
        ),
    )
    unparked = park_rejected(deps, result.rejected, carried)
    retry = result.retry_message_ids | unparked
    retry -= park_exhausted(deps, records, result, retry, carried)
    for message_id, policy, limited in result.limited:
        logger.warning(
            "selector limit reached",
            extra={"message_id": message_id, "policy": policy, "left_for_later": limited},
        )
    capped = _capped_by_policy(result.limited)
    capped.update(result.capped.items())
    for policy, left in result.capped.items():
        logger.warning(
            "policy cap reached", extra={"policy": policy, "capped": left, "path": "deadline"}
        )
    count_outcomes(metrics, result.audit, capped=capped or None)
    # Last, after every ledger write and DLQ send: a publish that cannot finish in the time left
    # is not started (a timeout now would redeliver the whole batch).
    report_decisions(
        deps.decisions,
        result.audit,
        logger,
        metrics,
        time_left=lambda: (
            context is None or context.get_remaining_time_in_millis() > PUBLISH_RESERVE_MILLIS
        ),
    )
    logger.info(
        "batch processed",
        extra={
            "records": len(records),
            "retried": len(retry),
            "batch_calls": dict(batch.calls),
            "ledger_calls": deps.ledger.calls,
        },
    )
    return {
        "batchItemFailures": [
            {"itemIdentifier": r.message_id} for r in records if r.message_id in retry
        ]
    }


def read_record(record: dict[str, Any], origin: Origin) -> ParsedRecord:
    """One Lambda SQS event record, as `parse_record` reads it, except that a body over
    MAX_REQUEST_BODY_BYTES (UTF-8) is rejected before it is parsed, with its size in the error.
    Never raises."""
    body = record.get("body")
    size = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else 0
    if size <= MAX_REQUEST_BODY_BYTES:
        return parse_record(record, origin)
    # Read everything but the body (receive count, sender, source); the body is not looked at.
    parsed = parse_record({**record, "body": "{}"}, origin)
    return replace(
        parsed,
        body=body if isinstance(body, str) else "",
        request=None,
        error=(
            f"request body is {size:,} bytes; a request is at most "
            f"{MAX_REQUEST_BODY_BYTES:,} bytes (UTF-8)"
        ),
        named_job_ids=(),
        carried_key=None,
    )


def event_path_allowance(deps: Dependencies, policy: str, job_ids: Sequence[str]) -> set[str]:
    """Which of these jobs the deadline path may terminate for `policy` now: at most its
    `maxPerRun` distinct jobs per sweep interval (a fixed window, UTC), kept in the ledger. A
    job counts once per window, however often its request is delivered or its call retried.
    Raises LedgerUnavailable."""
    found = deps.config.policy(policy)
    cap = found.max_per_run if found is not None else TAG_LIMIT_CAP
    window = max(int(deps.config.settings.sweep_interval.total_seconds()), 1)
    start = int(time.time()) // window * window
    hashed = {_short_hash(j): j for j in job_ids}
    admitted = deps.ledger.admit_to_window(
        f"cap#{policy}#{start}", list(hashed), cap, start + window + DEFAULT_LEDGER_TTL_SECONDS
    )
    return {hashed[h] for h in admitted}


def _short_hash(job_id: str) -> str:
    # 12 hex digits: a window of 10,000 jobs stays far below DynamoDB's 400 KB item.
    return hashlib.sha256(job_id.encode()).hexdigest()[:12]


def record_terminations(ledger: Ledger, records: Sequence[TerminationRecord]) -> None:
    """Remember the jobs one TerminateJobs call terminated, as soon as it returned, for the
    deadline function to confirm when their FAILED events arrive; each record is also its
    job's accepted claim. Best effort: a termination stands even if it cannot be recorded (its
    claim then holds other requests off until its lease ends, and Batch shows the job
    terminated by then)."""
    if not records:
        return
    try:
        ledger.record_terminations(records)
    except LedgerUnavailable as exc:
        logger.warning(
            "terminations not recorded for confirmation",
            extra={"jobs": len(records), "error": str(exc)},
        )


def _capped_by_policy(limited: list[tuple[str, str | None, int]]) -> dict[str | None, int]:
    capped: dict[str | None, int] = {}
    for _, policy, _count in limited:
        capped[policy] = capped.get(policy, 0) + 1
    return capped


def sqs_text(value: str) -> str:
    """Text SQS accepts in a message attribute: #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and
    #x10000-#x10FFFF (SQS SendMessage reference); anything else becomes U+FFFD."""
    return "".join(
        c
        if c in "\t\n\r"
        or "\x20" <= c <= "\ud7ff"
        or "\ue000" <= c <= "\ufffd"
        or c >= "\U00010000"
        else "\ufffd"
        for c in value
    )


# A message attribute as SendMessage takes it: {"DataType": ..., "StringValue": str} or
# {"DataType": ..., "BinaryValue": bytes}.
SendAttribute = dict[str, Any]


def carried_attributes(message_attributes: Any) -> dict[str, SendAttribute]:
    """The message attributes of a Lambda SQS record (`{"stringValue", "binaryValue" (base64),
    "dataType"}` each), as SendMessage takes them, so that a parked message keeps every one.
    An attribute without a usable value (SQS always gives one) is left out. Never raises."""
    if not isinstance(message_attributes, dict):
        return {}
    carried: dict[str, SendAttribute] = {}
    for name, attribute in message_attributes.items():
        if not isinstance(name, str) or not isinstance(attribute, dict):
            continue
        data_type = attribute.get("dataType") or attribute.get("DataType")
        if not isinstance(data_type, str) or not data_type:
            continue
        string = attribute.get("stringValue", attribute.get("StringValue"))
        binary = attribute.get("binaryValue", attribute.get("BinaryValue"))
        if data_type.startswith("Binary") and isinstance(binary, str | bytes):
            try:
                # Lambda gives binary values base64-encoded (SQS event, messageAttributes).
                value = base64.b64decode(binary, validate=True)
            except (binascii.Error, ValueError):
                continue
            carried[name] = {"DataType": data_type, "BinaryValue": value}
        elif isinstance(string, str):
            carried[name] = {"DataType": data_type, "StringValue": string}
    return carried


def sqs_message_size(body: str, attributes: Mapping[str, SendAttribute]) -> int:
    """A message's size as SQS counts it against MaximumMessageSize, in bytes: the UTF-8 bytes
    of its body and of each attribute's name, data type and value ("All components of a message
    attribute are included in the message size restriction", SQS developer guide)."""

    def size(value: Any) -> int:
        if isinstance(value, bytes):
            return len(value)
        return len(str(value).encode("utf-8", "surrogatepass"))

    total = size(body)
    for name, attribute in attributes.items():
        total += size(name) + size(attribute.get("DataType", ""))
        for part in ("StringValue", "BinaryValue"):
            if attribute.get(part) is not None:
                total += size(attribute[part])
    return total


def park_rejected(
    deps: Dependencies,
    rejected: list[ParsedRecord],
    carried: Mapping[str, dict[str, SendAttribute]] | None = None,
) -> set[str]:
    """Invalid requests go straight to the DLQ with their error: retrying cannot fix them.
    Each keeps the message attributes it carried (`carried`: message id -> attributes).

    Returns the ids of messages that could not be parked; SQS redelivers those, and moves them
    to the DLQ itself after maxReceiveCount deliveries.
    """
    carried = carried or {}
    return {
        record.message_id
        for record in rejected
        if not _park(
            deps, record, record.error or "invalid", {}, carried.get(record.message_id, {})
        )
    }


def park_exhausted(
    deps: Dependencies,
    records: list[ParsedRecord],
    result: BatchResult,
    retry: set[str],
    carried: Mapping[str, dict[str, SendAttribute]] | None = None,
) -> set[str]:
    """A request that still fails on its last delivery goes to the DLQ with what failed and its
    request ledger key (`ledgerKey`): a redrive, which gives it a new message id, resumes it
    (a selector keeps its picks and its limit). Returns the ids parked; if parking fails, SQS
    moves the message to the DLQ itself, without them. Each keeps the message attributes it
    carried (`carried`: message id -> attributes), its `source` included."""
    carried = carried or {}
    errors: dict[str, list[str]] = {}
    for line in result.audit:
        if line.outcome is Outcome.FAILED and line.message_id and line.error:
            errors.setdefault(line.message_id, []).append(line.error)
    parked = set()
    for record in records:
        if (
            record.message_id in retry
            and record.request is not None
            and record.receive_count >= deps.max_receive_count
        ):
            failed = errors.get(record.message_id, [])
            error = (
                f"{len(failed)} failed on the last delivery; first: {failed[0] if failed else '?'}"
            )
            key = result.ledger_keys.get(record.message_id)
            extra = {LEDGER_KEY_ATTRIBUTE: key} if key else {}
            if _park(deps, record, error, extra, carried.get(record.message_id, {})):
                parked.add(record.message_id)
    return parked


PARK_ATTEMPTS = 3
# The `error` attribute's longest text, in UTF-8 bytes. A message is parked only when its body and
# attributes, this one included, fit DLQ_MAX_MESSAGE_BYTES (contract.py).
ERROR_ATTRIBUTE_MAX_BYTES = 4096
# The attributes parking adds to what the message carried.
ORIGINAL_MESSAGE_ID_ATTRIBUTE = "originalMessageId"
_ELLIPSIS = "\u2026"


def bounded_error(error: str) -> str:
    """The `error` attribute's text: never empty, SQS-safe (`sqs_text`), at most
    ERROR_ATTRIBUTE_MAX_BYTES in UTF-8, cut on a character boundary and ended with an ellipsis
    when it is longer."""
    text = sqs_text(error) or "invalid"
    encoded = text.encode()
    if len(encoded) <= ERROR_ATTRIBUTE_MAX_BYTES:
        return text
    room = ERROR_ATTRIBUTE_MAX_BYTES - len(_ELLIPSIS.encode())
    return encoded[:room].decode(errors="ignore") + _ELLIPSIS


def park_attributes(
    record: ParsedRecord,
    error: str,
    extra: Mapping[str, str],
    carried: Mapping[str, SendAttribute],
) -> dict[str, SendAttribute]:
    """The attributes of a parked message: every one the message carried, and ours
    (`originalMessageId`, `error` bounded by `bounded_error`, and `extra`), which replace
    carried ones of the same name (a request parked again after a redrive)."""
    ours = {ORIGINAL_MESSAGE_ID_ATTRIBUTE: record.message_id, **extra}
    ours[ERROR_ATTRIBUTE] = bounded_error(error)
    attributes = {name: dict(value) for name, value in carried.items() if name not in ours}
    for name, value in ours.items():
        attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes


def _park(
    deps: Dependencies,
    record: ParsedRecord,
    error: str,
    extra: dict[str, str],
    carried: Mapping[str, SendAttribute] | None = None,
) -> bool:
    """Send the request's body to the DLQ with every attribute it carried and why it is there
    (`park_attributes`), tried a few times. Returns False when it was not parked: every attempt
    failed, or the message with these attributes would not fit the DLQ (DLQ_MAX_MESSAGE_BYTES)
    or has more than MAX_MESSAGE_ATTRIBUTES; SQS then redelivers the message, and moves it to
    the DLQ itself, as it was sent, after maxReceiveCount deliveries."""
    body = record.body or "<empty>"
    attributes = park_attributes(record, error, extra, carried or {})
    size = sqs_message_size(body, attributes)
    if size > DLQ_MAX_MESSAGE_BYTES or len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        logger.warning(
            "request too large to park; SQS moves it to the DLQ after its last delivery",
            extra={
                "message_id": record.message_id,
                "bytes": size,
                "attributes": len(attributes),
                "error": bounded_error(error),
            },
        )
        return False
    for attempt in range(1, PARK_ATTEMPTS + 1):
        try:
            deps.sqs_client.send_message(
                QueueUrl=deps.dlq_url, MessageBody=body, MessageAttributes=attributes
            )
        except Exception:  # keep the message: SQS redelivers it, or moves it to the DLQ
            logger.exception(
                "could not park request",
                extra={"message_id": record.message_id, "attempt": attempt},
            )
        else:
            return True
    return False
