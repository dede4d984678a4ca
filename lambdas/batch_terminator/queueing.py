"""Put termination requests on the request queue: the one path every decision takes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from batch_terminator.contract import SOURCE_ATTRIBUTE, Source

# SendMessageBatch takes at most 10 entries a call.
SEND_BATCH_MAX: Final = 10
ATTEMPTS: Final = 3


class EnqueueFailed(Exception):
    """Some requests could not be queued after retries; the next run re-evaluates them."""


def enqueue(sqs: Any, queue_url: str, bodies: Sequence[dict[str, Any]], source: Source) -> int:
    """Send every body (10 a call), retrying the entries SQS reports failed; returns calls made."""
    calls = 0
    for start in range(0, len(bodies), SEND_BATCH_MAX):
        pending = {str(i): body for i, body in enumerate(bodies[start : start + SEND_BATCH_MAX])}
        for _ in range(ATTEMPTS):
            calls += 1
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {
                        "Id": entry_id,
                        "MessageBody": json.dumps(body),
                        "MessageAttributes": {
                            SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": source.value}
                        },
                    }
                    for entry_id, body in pending.items()
                ],
            )
            failed = {f["Id"] for f in response.get("Failed", []) if not f.get("SenderFault")}
            sender_faults = [f for f in response.get("Failed", []) if f.get("SenderFault")]
            if sender_faults:
                raise EnqueueFailed(f"SQS refused requests: {sender_faults}")
            pending = {entry_id: pending[entry_id] for entry_id in failed}
            if not pending:
                break
        if pending:
            raise EnqueueFailed(
                f"{len(pending)} requests could not be queued after {ATTEMPTS} attempts"
            )
    return calls
