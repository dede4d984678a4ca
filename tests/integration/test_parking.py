"""A request the terminator parks in the DLQ keeps every message attribute it carried (its `source`
included), adding only its own, and always fits back into the request queue: redriven, it is the
same request, under the same policy cap. A message too large to park with its attributes is left
to SQS's own redrive."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_terminator.contract import (
    DLQ_MAX_MESSAGE_BYTES,
    ERROR_ATTRIBUTE,
    LEDGER_KEY_ATTRIBUTE,
    MAX_MESSAGE_ATTRIBUTES,
    MAX_REQUEST_BODY_BYTES,
    REQUEST_MAX_MESSAGE_BYTES,
    SOURCE_ATTRIBUTE,
    Source,
)
from batch_terminator.handlers import terminator
from batch_terminator.logic.parse import ParsedRecord
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.sandbox import Sandbox

OURS = {"originalMessageId", ERROR_ATTRIBUTE, LEDGER_KEY_ATTRIBUTE}
CAPPED = {Source.DEADLINE, Source.BLOCKED}  # the event path's per-policy cap (maxPerRun)


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(
        {
            "version": 1,
            "settings": {"jobQueues": ["gpu-training"]},
            "policies": [
                {
                    "name": "runaway",
                    "match": {"jobQueues": ["gpu-training"]},
                    "when": {"status": "RUNNING", "olderThan": "1h"},
                    "maxPerRun": 1,
                }
            ],
        }
    )


def _body(job: str) -> str:
    return json.dumps(
        {
            "jobId": job,
            "reason": "batch-terminator: policy runaway",
            "policy": "runaway",
            "ifStatus": ["RUNNING"],
            "requestId": f"r-{job[:8]}",
        }
    )


def _send(box: Sandbox, body: str, attributes: dict[str, Any]) -> str:
    return str(
        box.sqs.send_message(
            QueueUrl=box.deployment.request_queue_url,
            MessageBody=body,
            MessageAttributes=attributes,
        )["MessageId"]
    )


def _redrive(box: Sandbox) -> dict[str, Any]:
    sqs = box.sqs

    def arn(url: str) -> str:
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )

    dlq = arn(box.deployment.dlq_url)
    sqs.start_message_move_task(SourceArn=dlq, DestinationArn=arn(box.deployment.request_queue_url))
    for _ in range(200):
        [task] = sqs.list_message_move_tasks(SourceArn=dlq)["Results"]
        if task["Status"] != "RUNNING":
            return dict(task)
        time.sleep(0.02)
    raise AssertionError("the move task did not finish")


@pytest.mark.parametrize("source", list(Source))
def test_a_parked_then_redriven_request_keeps_its_source_and_its_cap(
    pipeline: Sandbox, source: Source
) -> None:
    first = pipeline.world.job("a", "gpu-training", "RUNNING", age=timedelta(hours=3))
    second = pipeline.world.job("b", "gpu-training", "RUNNING", age=timedelta(hours=3))
    carried = {
        SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": source.value},
        "trace": {"DataType": "String.trace", "StringValue": "t-1"},
        "weight": {"DataType": "Number", "StringValue": "42"},
    }
    if source is Source.REQUEST:
        del carried[SOURCE_ATTRIBUTE]  # a person's request carries no source
    # The first request fails on every delivery (maxReceiveCount 3): it is parked.
    sent = _send(pipeline, _body(first), carried)
    pipeline.control.throttle("DescribeJobs", times=3)
    pipeline.run_terminator()
    [parked] = pipeline.dead_letters()
    attributes = {k: v["StringValue"] for k, v in parked["MessageAttributes"].items()}
    expected = {k: v["StringValue"] for k, v in carried.items()}
    assert {k: attributes[k] for k in expected} == expected
    assert set(attributes) == set(expected) | OURS
    assert attributes["originalMessageId"] == sent
    assert parked["MessageAttributes"]["trace"]["DataType"] == "String.trace"
    # The second is processed meanwhile, and takes the policy's one job of this window.
    _send(pipeline, _body(second), carried)
    pipeline.run_terminator()
    assert pipeline.outcome(second) == "terminated"

    assert _redrive(pipeline)["Status"] == "COMPLETED"
    pipeline.audit.clear()
    pipeline.run_terminator()

    [line] = pipeline.decisions(first)
    assert line["source"] == source.value
    if source in CAPPED:
        assert line["outcome"] == "skipped"
        assert "policy cap reached" in line["skip_reason"]
        assert {t.job_id for t in pipeline.control.terminations()} == {second}
    else:
        assert line["outcome"] == "terminated"
    assert pipeline.dead_letters() == []


def test_a_parked_rejected_request_keeps_its_attributes_and_a_second_parking_replaces_ours(
    pipeline: Sandbox,
) -> None:
    carried = {
        SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": "deadline"},
        ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": "an old error"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    _send(pipeline, '{"jobId": "x"}', carried)
    pipeline.run_terminator()
    [parked] = pipeline.dead_letters()
    got = parked["MessageAttributes"]
    assert got[SOURCE_ATTRIBUTE]["StringValue"] == "deadline"
    assert got[ERROR_ATTRIBUTE]["StringValue"] != "an old error"  # ours replaces the carried one
    assert "originalMessageId" in got
    assert got["blob"]["BinaryValue"] == b"\x00\x01"  # binary attributes come through too
    assert set(got) <= {*carried, *OURS}


def test_a_body_over_256_kib_is_rejected_unread_with_its_size(pipeline: Sandbox) -> None:
    body = json.dumps({"jobId": "x", "reason": "r", "pad": "p" * MAX_REQUEST_BODY_BYTES})
    sent = _send(pipeline, body, {})
    pipeline.run_terminator()
    [line] = [a for a in pipeline.audit if a["message_id"] == sent]
    assert line["outcome"] == "rejected"
    size = len(body.encode())
    assert line["error"] == (
        f"request body is {size:,} bytes; a request is at most "
        f"{MAX_REQUEST_BODY_BYTES:,} bytes (UTF-8)"
    )
    [parked] = pipeline.dead_letters()
    assert parked["Body"] == body


def test_a_message_too_large_to_park_is_left_to_sqs_redrive_and_fits_back(
    pipeline: Sandbox,
) -> None:
    carried = {SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": "blocked"}}
    room = REQUEST_MAX_MESSAGE_BYTES - len(SOURCE_ATTRIBUTE) - len("String") - len("blocked")
    body = "x" * room  # exactly the request queue's limit with its attribute
    sent = _send(pipeline, body, carried)
    invocations = pipeline.run_terminator()

    # Reported as a failure on each delivery; SQS then moved it itself, as it was sent.
    failed = [i for i in invocations if sent in i.failed_ids]
    assert len(failed) == 3
    lines = [a for a in pipeline.audit if a["message_id"] == sent]
    assert lines
    assert all(a["outcome"] == "rejected" for a in lines)
    assert all(a["error"].startswith(f"request body is {room:,} bytes") for a in lines)
    [moved] = pipeline.dead_letters()
    assert moved["Body"] == body
    assert {k: v["StringValue"] for k, v in moved["MessageAttributes"].items()} == {
        SOURCE_ATTRIBUTE: "blocked"
    }
    task = _redrive(pipeline)
    assert task["Status"] == "COMPLETED"
    assert task["ApproximateNumberOfMessagesMoved"] == 1


# ---- what `_park` sends, for any body and carried attributes -------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **call: Any) -> dict[str, str]:
        self.sent.append(call)
        return {"MessageId": "m"}


def _deps(client: _Recorder) -> Any:
    class Deps:
        sqs_client = client
        dlq_url = "dlq"

    return Deps()


names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
values = st.one_of(
    st.builds(lambda s: {"dataType": "String", "stringValue": s}, st.text(max_size=200)),
    st.builds(lambda n: {"dataType": "Number", "stringValue": str(n)}, st.integers()),
    st.builds(
        lambda b: {"dataType": "Binary", "binaryValue": base64.b64encode(b).decode()},
        st.binary(max_size=50),
    ),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    carried=st.dictionaries(names, values, max_size=12),
    body_bytes=st.integers(1, DLQ_MAX_MESSAGE_BYTES),
    error=st.text(max_size=300),
)
def test_park_sends_every_carried_attribute_and_only_when_it_fits(
    carried: dict[str, dict[str, str]], body_bytes: int, error: str
) -> None:
    client = _Recorder()
    record = ParsedRecord("mid", "b" * body_bytes, None, Source.REQUEST)
    attributes = terminator.carried_attributes(carried)
    assert set(attributes) == set(carried)
    parked = terminator._park(_deps(client), record, error, {}, attributes)

    expected = terminator.park_attributes(record, error, {}, attributes)
    size = terminator.sqs_message_size(record.body, expected)
    fits = size <= DLQ_MAX_MESSAGE_BYTES and len(expected) <= MAX_MESSAGE_ATTRIBUTES
    assert parked is fits
    assert len(client.sent) == (1 if fits else 0)
    if fits:
        [call] = client.sent
        assert call["MessageAttributes"] == expected
        assert call["MessageBody"] == record.body
    for name, value in carried.items():
        if name in OURS:
            continue
        kept = expected[name]
        assert kept["DataType"] == value["dataType"]
        if "binaryValue" in value:
            assert kept["BinaryValue"] == base64.b64decode(value["binaryValue"])
        else:
            assert kept["StringValue"] == value["stringValue"]
    assert expected["originalMessageId"]["StringValue"] == "mid"
    assert expected[ERROR_ATTRIBUTE]["StringValue"] == terminator.bounded_error(error)
