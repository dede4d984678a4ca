"""From an SQS record to a validated request, or to the reason it is rejected. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from batch_terminator.contract import (
    EVENT_SOURCE,
    LEDGER_KEY_ATTRIBUTE,
    REQUEST_DETAIL_TYPE,
    SOURCE_ATTRIBUTE,
    Source,
)
from batch_terminator.models.base import describe_validation_error
from batch_terminator.models.request import ORIGIN_CONTEXT, Origin, TerminationRequest


class InvalidRequest(ValueError):
    """The request can never succeed as written: it goes to the DLQ with this message."""


@dataclass(frozen=True)
class ParsedRecord:
    message_id: str
    body: str
    request: TerminationRequest | None
    source: Source
    error: str | None = None
    # The SQS SenderId system attribute: who really sent the message (an IAM principal's id).
    sender: str | None = None
    # ApproximateReceiveCount: 1 on the first delivery.
    receive_count: int = 1
    # A job id the body names, even when the request is rejected (for the audit line).
    named_job_id: str | None = None
    # The ledger key a redriven request carries (message attribute `ledgerKey`), unverified.
    carried_key: str | None = None
    # ApproximateFirstReceiveTimestamp: when the message was first delivered (UTC).
    first_received_at: datetime | None = None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`{"dryRun": true, "dryRun": false}` is ambiguous: JSON parsers disagree on which wins."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidRequest(f"key {key!r} is given twice")
        seen[key] = value
    return seen


def load_json(body: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN or Infinity; raises InvalidRequest."""

    def no_constants(name: str) -> Any:
        raise InvalidRequest(f"{name} is not JSON")

    try:
        return json.loads(body, object_pairs_hook=_no_duplicate_keys, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise InvalidRequest("body is nested too deeply to be a request") from exc


def parse_request(body: str, origin: Origin | None = None) -> TerminationRequest:
    """A request body, or an EventBridge event (EventBridge → SQS delivers the whole event).
    Raises InvalidRequest with every problem in one line."""
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise InvalidRequest(f"body must be a JSON object, got {type(payload).__name__}")
    if "detail-type" in payload:
        payload = _unwrap_event(payload, origin or Origin())
    try:
        return TerminationRequest.model_validate(
            payload, context={ORIGIN_CONTEXT: origin or Origin()}
        )
    except ValidationError as exc:
        raise InvalidRequest("; ".join(describe_validation_error(exc))) from exc


def _unwrap_event(event: dict[str, Any], origin: Origin) -> Any:
    source, detail_type = event.get("source"), event.get("detail-type")
    if source != EVENT_SOURCE or detail_type != REQUEST_DETAIL_TYPE:
        raise InvalidRequest(
            f"EventBridge event {source!r} / {detail_type!r} is not a termination request "
            f"(expected {EVENT_SOURCE!r} / {REQUEST_DETAIL_TYPE!r})"
        )
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or not isinstance(region, str):
        raise InvalidRequest("EventBridge event has no account or region")
    try:
        origin.check("EventBridge event", account, region)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    if "detail" not in event:
        raise InvalidRequest("EventBridge event has no detail")
    return event["detail"]


def parse_source(message_attributes: dict[str, Any] | None) -> Source:
    """The path a request came from, as internal senders mark it; people's requests are `request`."""
    attribute = (message_attributes or {}).get(SOURCE_ATTRIBUTE)
    if not attribute:
        return Source.REQUEST
    value = attribute.get("stringValue") or attribute.get("StringValue")
    try:
        return Source(value)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in Source)
        raise InvalidRequest(f"message attribute source={value!r} is not one of {allowed}") from exc


def _first_received_at(attributes: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(
            int(attributes["ApproximateFirstReceiveTimestamp"]) / 1000, tz=UTC
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _receive_count(attributes: dict[str, Any]) -> int:
    try:
        return max(int(attributes.get("ApproximateReceiveCount", 1)), 1)
    except (TypeError, ValueError):
        return 1


def _named_job_id(body: str) -> str | None:
    """Best effort, for a rejected request's audit line: the body's `jobId`, if it is a string."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(payload, dict) and isinstance(payload.get("detail"), dict):
        payload = payload["detail"]
    job_id = payload.get("jobId") if isinstance(payload, dict) else None
    return job_id[:256] if isinstance(job_id, str) else None


def _attribute(message_attributes: Any, name: str) -> str | None:
    attribute = message_attributes.get(name) if isinstance(message_attributes, dict) else None
    value = attribute.get("stringValue") if isinstance(attribute, dict) else None
    return value if isinstance(value, str) else None


def parse_record(record: dict[str, Any], origin: Origin | None = None) -> ParsedRecord:
    """One Lambda SQS event record. Never raises: whatever is wrong with one record (bad JSON,
    a bug in validation) rejects that record alone."""
    message_id = str(record.get("messageId", ""))
    body = record.get("body")
    body = body if isinstance(body, str) else ""
    raw_attributes = record.get("attributes")
    attributes: dict[str, Any] = raw_attributes if isinstance(raw_attributes, dict) else {}
    sender = attributes.get("SenderId") if isinstance(attributes.get("SenderId"), str) else None
    receive_count = _receive_count(attributes)
    try:
        source = parse_source(record.get("messageAttributes"))
        request = parse_request(body, origin)
    except InvalidRequest as exc:
        error = str(exc)
    except Exception as exc:  # a record must never fail its batch
        error = f"could not be read: {type(exc).__name__}: {exc}"
    else:
        return ParsedRecord(
            message_id,
            body,
            request,
            source,
            sender=sender,
            receive_count=receive_count,
            carried_key=_attribute(record.get("messageAttributes"), LEDGER_KEY_ATTRIBUTE),
            first_received_at=_first_received_at(attributes),
        )
    return ParsedRecord(
        message_id,
        body,
        None,
        Source.REQUEST,
        error,
        sender=sender,
        receive_count=receive_count,
        named_job_id=_named_job_id(body),
    )
