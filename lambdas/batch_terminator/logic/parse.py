"""From an SQS record to a validated request, or to the reason it is rejected. Pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batch_terminator.contract import (
    EVENT_SOURCE,
    LEDGER_KEY_ATTRIBUTE,
    MAX_JOB_IDS_PER_REQUEST,
    REQUEST_DETAIL_TYPE,
    SOURCE_ATTRIBUTE,
    Source,
)

# InvalidRequest and load_json live in the pydantic-free `bodies`, re-exported here.
from batch_terminator.logic.bodies import InvalidRequest, load_json
from batch_terminator.models.request import Origin, TerminationRequest, validate_request

__all__ = [
    "InvalidRequest",
    "ParsedRecord",
    "load_json",
    "parse_record",
    "parse_request",
    "parse_source",
]


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
    # The job ids the body names, even when the request is rejected (for its audit lines).
    named_job_ids: tuple[str, ...] = ()
    # The ledger key a redriven request carries (message attribute `ledgerKey`), unverified.
    carried_key: str | None = None
    # ApproximateFirstReceiveTimestamp: when the message was first delivered (UTC).
    first_received_at: datetime | None = None

    @property
    def named_job_id(self) -> str | None:
        """The first job id the body names, if any."""
        return self.named_job_ids[0] if self.named_job_ids else None


def parse_request(body: str, origin: Origin | None = None) -> TerminationRequest:
    """A request body, or an EventBridge event (EventBridge → SQS delivers the whole event).
    Raises InvalidRequest with every problem in one line."""
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise InvalidRequest(f"body must be a JSON object, got {type(payload).__name__}")
    if "detail-type" in payload:
        payload = _unwrap_event(payload, origin or Origin())
    return validate_request(payload, origin or Origin())


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


# What a rejected request's lines may name: Batch job ids (UUIDs; `uuid:index` for an array
# child, `uuid#node` for a node; Batch user guide, "Array jobs", "Multi-node parallel jobs"),
# alone or at the end of a job ARN.
_UUID_TEXT = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_JOB_ID_TEXT = rf"{_UUID_TEXT}(?::(?:0|[1-9][0-9]{{0,4}})|#(?:0|[1-9][0-9]{{0,4}}))?"
_NAMED_JOB = re.compile(rf"(?:arn:aws[a-z-]*:batch:[a-z0-9-]+:[0-9]{{12}}:job/)?({_JOB_ID_TEXT})")
# `"jobId": "…"` or `"jobIds": [ … ]` in a body that is not valid JSON.
_JOB_KEYS = re.compile(r'"jobIds?"\s*:\s*(\[[^\]]{0,20000}\]?|"[^"]{0,300}")')


def _job_ids_in(values: list[Any]) -> list[str]:
    found = []
    for value in values:
        match = _NAMED_JOB.fullmatch(value) if isinstance(value, str) else None
        if match:
            found.append(match.group(1))
    return found


def _named_job_ids(body: str) -> tuple[str, ...]:
    """Best effort, for a rejected request's audit lines: the job ids its `jobId` and `jobIds`
    name (a job ARN as its id), at most MAX_JOB_IDS_PER_REQUEST; in a body that is not JSON,
    what such keys seem to name. Strings that are no job id are left out."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        texts = [m.group(1) for m in _JOB_KEYS.finditer(body[:262_144])]
        ids = [m.group(1) for text in texts for m in _NAMED_JOB.finditer(text)]
    else:
        if isinstance(payload, dict) and isinstance(payload.get("detail"), dict):
            payload = payload["detail"]
        if not isinstance(payload, dict):
            return ()
        listed = payload.get("jobIds")
        ids = _job_ids_in([payload.get("jobId"), *(listed if isinstance(listed, list) else [])])
    return tuple(dict.fromkeys(ids))[:MAX_JOB_IDS_PER_REQUEST]


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
        named_job_ids=_named_job_ids(body),
    )
