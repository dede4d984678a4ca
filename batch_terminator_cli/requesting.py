"""`batch-terminator request`: build valid requests and send them through the deployed stack."""

from __future__ import annotations

import getpass
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from batch_terminator.contract import EVENT_SOURCE, MAX_JOB_IDS_PER_REQUEST, REQUEST_DETAIL_TYPE
from batch_terminator.models.request import validate_request

Via = Literal["sqs", "events"]
# PutEvents and SendMessageBatch take at most 10 entries a call.
MAX_ENTRIES_PER_CALL = 10


@dataclass(frozen=True)
class Sent:
    via: Via
    target: str
    id: str
    body: dict[str, Any]


def build_requests(
    job_ids: list[str],
    reason: str,
    *,
    dry_run: bool = False,
    if_status: list[str] | None = None,
    requested_by: str | None = None,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """One request per 100 ids, validated here exactly as the terminator will validate it
    (`validate_request`). Raises RequestRefused naming each problem."""
    request_id = request_id or str(uuid.uuid4())
    unique = list(dict.fromkeys(job_ids))
    bodies: list[dict[str, Any]] = []
    for start in range(0, len(unique), MAX_JOB_IDS_PER_REQUEST):
        chunk = unique[start : start + MAX_JOB_IDS_PER_REQUEST]
        body: dict[str, Any] = {"jobId": chunk[0]} if len(chunk) == 1 else {"jobIds": chunk}
        body["reason"] = reason
        body["requestId"] = request_id
        if requested_by:
            body["requestedBy"] = requested_by
        if dry_run:
            body["dryRun"] = True
        if if_status:
            body["ifStatus"] = if_status
        validate_request(body)
        bodies.append(body)
    return bodies


def requested_job_ids(bodies: list[dict[str, Any]]) -> list[str]:
    """The job ids the requests name, ARNs turned into ids, in order."""
    ids: list[str] = []
    for body in bodies:
        ids.extend(validate_request(body).job_id_list)
    return list(dict.fromkeys(ids))


def caller(aws: Any) -> str:
    """Who is asking: the caller's ARN where STS answers, else the local user name."""
    try:
        return str(aws.client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError):
        try:
            return getpass.getuser()
        except (OSError, KeyError):
            return "unknown"


def send(
    aws: Any, bodies: list[dict[str, Any]], via: Via, queue_url: str | None, event_bus: str
) -> list[Sent]:
    sent: list[Sent] = []
    for start in range(0, len(bodies), MAX_ENTRIES_PER_CALL):
        chunk = bodies[start : start + MAX_ENTRIES_PER_CALL]
        if via == "sqs":
            if not queue_url:
                raise ValueError("no request queue: give --queue-url or deploy the stack")
            sent.extend(_send_sqs(aws.client("sqs"), queue_url, chunk))
        else:
            sent.extend(_put_events(aws.client("events"), event_bus, chunk))
    return sent


def _send_sqs(sqs: Any, queue_url: str, bodies: list[dict[str, Any]]) -> list[Sent]:
    response = sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(bodies)],
    )
    if response.get("Failed"):
        raise RuntimeError(f"SendMessageBatch failed: {response['Failed']}")
    by_entry = {entry["Id"]: entry["MessageId"] for entry in response.get("Successful", [])}
    return [Sent("sqs", queue_url, by_entry[str(i)], body) for i, body in enumerate(bodies)]


def _put_events(events: Any, event_bus: str, bodies: list[dict[str, Any]]) -> list[Sent]:
    response = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": REQUEST_DETAIL_TYPE,
                "Detail": json.dumps(body),
                "EventBusName": event_bus,
            }
            for body in bodies
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"PutEvents failed: {response['Entries']}")
    return [
        Sent("events", event_bus, entry["EventId"], body)
        for entry, body in zip(response["Entries"], bodies, strict=True)
    ]
