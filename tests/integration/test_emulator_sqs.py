"""The emulator's SQS sends as SQS does: sizes in UTF-8 bytes with attributes, no empty bodies,
characters outside XML's set replaced (see batch_terminator_cli/emulator/sqs.py for the sources)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_terminator.contract import DLQ_MAX_MESSAGE_BYTES, REQUEST_MAX_MESSAGE_BYTES
from batch_terminator_cli.sandbox import Sandbox

ERROR = {"error": {"DataType": "String", "StringValue": "e" * 100}}


def _send(pipeline: Sandbox, url: str, body: str, attributes: dict[str, object]) -> str | None:
    sqs = pipeline.session.client("sqs")
    try:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def test_the_size_limit_counts_utf8_bytes_and_attributes(pipeline: Sandbox) -> None:
    url = pipeline.deployment.request_queue_url
    assert _send(pipeline, url, "x" * REQUEST_MAX_MESSAGE_BYTES, {}) is None
    # One character, two bytes: moto alone counts characters and would accept it.
    assert _send(pipeline, url, "é" * (REQUEST_MAX_MESSAGE_BYTES // 2 + 1), {}) == (
        "InvalidParameterValue"
    )
    # The body fits alone, not with its attribute.
    assert _send(pipeline, url, "x" * (REQUEST_MAX_MESSAGE_BYTES - 50), ERROR) == (
        "InvalidParameterValue"
    )


def test_the_largest_request_fits_in_the_dlq_with_its_attributes(pipeline: Sandbox) -> None:
    big_error = {
        "error": {"DataType": "String", "StringValue": "e" * 2000},
        "ledgerKey": {"DataType": "String", "StringValue": "message#" + "a" * 128},
    }
    assert REQUEST_MAX_MESSAGE_BYTES + 4000 < DLQ_MAX_MESSAGE_BYTES
    body = "x" * REQUEST_MAX_MESSAGE_BYTES
    assert _send(pipeline, pipeline.deployment.dlq_url, body, big_error) is None


def test_an_empty_body_is_refused(pipeline: Sandbox) -> None:
    assert _send(pipeline, pipeline.deployment.request_queue_url, "", {}) == "MissingParameter"


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.text(min_size=1, max_size=50))
def test_characters_outside_xml_are_stored_as_the_replacement_character(
    pipeline: Sandbox, body: str
) -> None:
    url = pipeline.deployment.request_queue_url
    valid = [
        c
        for c in body
        if c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    ]
    code = _send(pipeline, url, body, {})
    if not valid:
        assert code == "InvalidParameterValue"
        return
    assert code is None
    sqs = pipeline.session.client("sqs")
    message = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    expected = "".join(c if c in valid else "\ufffd" for c in body)
    assert message["Body"] == expected


@pytest.mark.parametrize("body", ["\x00", "\x01\x02", "\ud800"])
def test_a_body_with_no_valid_character_is_refused(pipeline: Sandbox, body: str) -> None:
    assert _send(pipeline, pipeline.deployment.request_queue_url, body, {}) == (
        "InvalidParameterValue"
    )
