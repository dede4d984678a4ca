"""Run a handler the way Lambda's SQS event source mapping would: batches, partial failures."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "batch-terminator-terminator"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:batch-terminator-terminator"
    )
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/batch-terminator-terminator"
    log_stream_name: str = "emulated"

    # What get_remaining_time_in_millis answers: a number, or a function asked each time.
    remaining_millis: int | Callable[[], int] = 120_000

    def get_remaining_time_in_millis(self) -> int:
        left = self.remaining_millis
        return left() if callable(left) else left


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event from ReceiveMessage results (attribute names as Lambda spells them)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: _event_attribute(value)
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


@dataclass
class Invocation:
    event: dict[str, Any]
    response: dict[str, Any]

    @property
    def failed_ids(self) -> set[str]:
        return {f["itemIdentifier"] for f in self.response.get("batchItemFailures", [])}


def receive_batch(sqs: Any, queue_url: str, batch_size: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while len(messages) < batch_size:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, batch_size - len(messages)),
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        messages.extend(got)
    return messages


def drain(
    sqs: Any,
    queue_url: str,
    handler: Handler,
    *,
    batch_size: int = 100,
    max_invocations: int = 100,
    region: str = "us-east-1",
    context: Callable[[], Any] = LambdaContext,
    time_passes: Callable[[], object] | None = None,
) -> list[Invocation]:
    """Invoke `handler` until the queue is empty; failed items become visible again at once.

    Like the event source mapping with ReportBatchItemFailures: successes are deleted, items the
    handler reports as failures stay, and SQS's redrive policy moves them to the DLQ in the end.
    In SQS a failed item comes back only after its visibility timeout; `time_passes` is called
    before failed items are delivered again, to let the world move on meanwhile.
    """
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    invocations: list[Invocation] = []
    for _ in range(max_invocations):
        messages = receive_batch(sqs, queue_url, batch_size)
        if not messages:
            break
        event = sqs_event(messages, queue_arn, region)
        response = handler(event, context()) or {}
        invocation = Invocation(event, response)
        invocations.append(invocation)
        if invocation.failed_ids and time_passes is not None:
            time_passes()
        for message in messages:
            if message["MessageId"] in invocation.failed_ids:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return invocations


class CapturedLogs:
    """JSON log lines a Powertools Logger wrote while captured."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        import json

        out = []
        # Lambda cuts a function's output into log events at '\n' only; str.splitlines() would
        # also cut at U+2028 and other separators that a JSON line may carry unescaped.
        for raw in self.buffer.getvalue().split("\n"):
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return out

    def audit(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("message") == "termination"]


class capture_logs:  # noqa: N801 - used as a context manager, named like one
    """Redirect a Powertools Logger's output (bound to the stream it saw at import) to a buffer."""

    def __init__(self, logger: Any) -> None:
        self._handler = logger.registered_handler
        self.captured = CapturedLogs()
        self._previous: Any = None

    def __enter__(self) -> CapturedLogs:
        self._previous = self._handler.setStream(self.captured.buffer)
        return self.captured

    def __exit__(self, *exc: object) -> None:
        self._handler.setStream(self._previous)


def _event_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event carries it: a Binary value base64-encoded in
    `binaryValue` (AWS Lambda developer guide, "Using Lambda with Amazon SQS", example event)."""
    shaped: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if value.get("StringValue") is not None:
        shaped["stringValue"] = value["StringValue"]
    if value.get("BinaryValue") is not None:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return shaped
