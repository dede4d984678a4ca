"""The emulator's SQS sends as SQS does: sizes in UTF-8 bytes with attributes, no empty bodies,
characters outside XML's set replaced in bodies and attribute values, and SendMessageBatch
failing an entry alone (see batch_terminator_cli/emulator/sqs.py for the sources)."""

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


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attribute=st.integers(0, 5000), slack=st.integers(-3, 3))
def test_whatever_the_dlq_takes_the_request_queue_takes_back(
    pipeline: Sandbox, attribute: int, slack: int
) -> None:
    # A parked message (body and attributes) must fit back when it is redriven.
    assert DLQ_MAX_MESSAGE_BYTES == REQUEST_MAX_MESSAGE_BYTES == 1_048_576
    attributes = {"error": {"DataType": "String", "StringValue": "e" * attribute}}
    room = DLQ_MAX_MESSAGE_BYTES - len("error") - len("String") - attribute
    body = "x" * (room + slack)
    deployment = pipeline.deployment
    dlq = _send(pipeline, deployment.dlq_url, body, attributes)
    back = _send(pipeline, deployment.request_queue_url, body, attributes)
    assert dlq == back == (None if slack <= 0 else "InvalidParameterValue")
    for url in (deployment.dlq_url, deployment.request_queue_url):
        while got := pipeline.sqs.receive_message(QueueUrl=url).get("Messages", []):
            pipeline.sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])


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


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(max_size=30).filter(bool))
def test_attribute_values_get_the_bodys_character_rule(pipeline: Sandbox, value: str) -> None:
    url = pipeline.deployment.request_queue_url
    valid = [c for c in value if not _NOT_XML(c)]
    code = _send(pipeline, url, "b", {"a": {"DataType": "String", "StringValue": value}})
    if not valid:
        assert code == "InvalidParameterValue"
        return
    assert code is None
    sqs = pipeline.session.client("sqs")
    [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    expected = "".join(c if c in valid else "\ufffd" for c in value)
    assert message["MessageAttributes"]["a"]["StringValue"] == expected


def _NOT_XML(c: str) -> bool:  # noqa: N802 - a predicate named like the emulator's pattern
    return not (
        c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    )


# What each kind of entry is, and whether SendMessageBatch sends it (the rest fail alone).
ENTRIES: dict[str, tuple[dict[str, object], bool]] = {
    "fine": ({"MessageBody": "fine"}, True),
    "with-attribute": (
        {
            "MessageBody": "a",
            "MessageAttributes": {"source": {"DataType": "String", "StringValue": "deadline"}},
        },
        True,
    ),
    "too-large": ({"MessageBody": "x" * 1100}, False),
    "too-large-with-attribute": (
        {
            "MessageBody": "x" * 1000,
            "MessageAttributes": {"e": {"DataType": "String", "StringValue": "e" * 100}},
        },
        False,
    ),
    "no-valid-character": ({"MessageBody": "\x00\x01"}, False),
    "bad-attribute-type": (
        {
            "MessageBody": "b",
            "MessageAttributes": {"e": {"DataType": "Colour", "StringValue": "red"}},
        },
        False,
    ),
}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kinds=st.lists(st.sampled_from(sorted(ENTRIES)), min_size=1, max_size=10))
def test_send_message_batch_fails_a_bad_entry_alone(pipeline: Sandbox, kinds: list[str]) -> None:
    sqs = pipeline.sqs
    url = sqs.create_queue(QueueName="batch-small", Attributes={"MaximumMessageSize": "1024"})[
        "QueueUrl"
    ]
    try:
        entries = [{"Id": f"e{i}-{kind}", **ENTRIES[kind][0]} for i, kind in enumerate(kinds)]
        answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        good = {e["Id"] for e, k in zip(entries, kinds, strict=True) if ENTRIES[k][1]}
        assert {s["Id"] for s in answer.get("Successful", [])} == good
        failed = answer.get("Failed", [])
        assert {f["Id"] for f in failed} == {e["Id"] for e in entries} - good
        assert all(f["SenderFault"] is True and f["Code"] for f in failed)
        stored: list[str] = []
        while got := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60
        ).get("Messages", []):
            stored.extend(m["Body"] for m in got)
        expected = [str(e["MessageBody"]) for e in entries if e["Id"] in good]
        assert sorted(stored) == sorted(expected)
    finally:
        sqs.delete_queue(QueueUrl=url)


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([{"Id": f"e{i}", "MessageBody": "m"} for i in range(11)], "TooManyEntriesInBatchRequest"),
        ([{"Id": "same", "MessageBody": "m"}] * 2, "BatchEntryIdsNotDistinct"),
        ([{"Id": "no spaces", "MessageBody": "m"}], "InvalidBatchEntryId"),
        (
            [{"Id": f"e{i}", "MessageBody": "m" * 300_000} for i in range(4)],
            "BatchRequestTooLong",
        ),
    ],
)
def test_send_message_batch_request_errors_send_nothing(
    pipeline: Sandbox, entries: list[dict[str, str]], code: str
) -> None:
    sqs = pipeline.sqs
    url = pipeline.deployment.request_queue_url
    with pytest.raises(ClientError) as raised:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert code in raised.value.response["Error"]["Code"]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
