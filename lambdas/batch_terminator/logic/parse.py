"""From an SQS record body to a validated request, or to the reason it is rejected."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from batch_terminator.contract import EVENT_SOURCE, REQUEST_DETAIL_TYPE, Source
from batch_terminator.models.base import describe_validation_error
from batch_terminator.models.request import TerminationRequest


class InvalidRequest(ValueError):
    """The request can never succeed as written: it goes to the DLQ with this message."""


@dataclass(frozen=True)
class ParsedRecord:
    message_id: str
    body: str
    request: TerminationRequest | None
    source: Source
    error: str | None = None


def parse_request(body: str) -> TerminationRequest:
    """A request body, or an EventBridge event (EventBridge → SQS delivers the whole event)."""
    try:
        payload: Any = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(payload, dict):
        raise InvalidRequest(f"body must be a JSON object, got {type(payload).__name__}")
    if "detail-type" in payload:
        payload = _unwrap_event(payload)
    try:
        return TerminationRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest("; ".join(describe_validation_error(exc))) from exc


def _unwrap_event(event: dict[str, Any]) -> Any:
    source, detail_type = event.get("source"), event.get("detail-type")
    if source != EVENT_SOURCE or detail_type != REQUEST_DETAIL_TYPE:
        raise InvalidRequest(
            f"EventBridge event {source!r} / {detail_type!r} is not a termination request "
            f"(expected {EVENT_SOURCE!r} / {REQUEST_DETAIL_TYPE!r})"
        )
    if "detail" not in event:
        raise InvalidRequest("EventBridge event has no detail")
    return event["detail"]


def parse_source(message_attributes: dict[str, Any] | None) -> Source:
    """The path a request came from, as internal senders mark it; people's requests are `request`."""
    attribute = (message_attributes or {}).get("source")
    if not attribute:
        return Source.REQUEST
    value = attribute.get("stringValue") or attribute.get("StringValue")
    try:
        return Source(value)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in Source)
        raise InvalidRequest(f"message attribute source={value!r} is not one of {allowed}") from exc


def parse_record(record: dict[str, Any]) -> ParsedRecord:
    """One Lambda SQS event record; never raises for bad input."""
    message_id = str(record.get("messageId", ""))
    body = str(record.get("body", ""))
    try:
        source = parse_source(record.get("messageAttributes"))
        request = parse_request(body)
    except InvalidRequest as exc:
        return ParsedRecord(message_id, body, None, Source.REQUEST, str(exc))
    return ParsedRecord(message_id, body, request, source)
