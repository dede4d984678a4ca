"""Requests enqueued by the policy paths: SendMessageBatch, 10 a call, marked with their source."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from batch_terminator.contract import Source
from batch_terminator.queueing import EnqueueFailed, enqueue
from batch_terminator_cli.sandbox import Sandbox


def test_enqueue_sends_ten_a_call_with_the_source_attribute(pipeline: Sandbox) -> None:
    bodies = [{"jobId": f"00000000-0000-4000-8000-{i:012d}", "reason": "r"} for i in range(25)]

    calls = enqueue(pipeline.sqs, pipeline.deployment.request_queue_url, bodies, Source.SWEEP)

    assert calls == 3
    received = []
    while messages := pipeline.sqs.receive_message(
        QueueUrl=pipeline.deployment.request_queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        received.extend(messages)
    assert sorted(json.loads(m["Body"])["jobId"] for m in received) == sorted(
        b["jobId"] for b in bodies
    )
    assert {m["MessageAttributes"]["source"]["StringValue"] for m in received} == {"sweep"}


def test_a_request_sqs_refuses_is_an_error_not_a_silent_drop(pipeline: Sandbox) -> None:
    too_big = [{"jobId": "00000000-0000-4000-8000-000000000001", "reason": "x" * 1_100_000}]
    with pytest.raises(ClientError, match="BatchRequestTooLong"):
        enqueue(pipeline.sqs, pipeline.deployment.request_queue_url, too_big, Source.SWEEP)


def test_entries_sqs_keeps_failing_are_retried_then_reported() -> None:
    """SQS can fail single entries of a batch (moto never does): retried, then an error."""

    class RefusingQueue:
        def send_message_batch(self, **_: object) -> dict[str, object]:
            return {"Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]}

    with pytest.raises(EnqueueFailed, match="1 requests could not be queued after 3 attempts"):
        enqueue(RefusingQueue(), "url", [{"jobId": "x"}], Source.SWEEP)
