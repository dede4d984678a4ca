"""Parsing and validation of termination requests: strict, with errors a person can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from batch_terminator.config import InvalidPolicies, load_config
from batch_terminator.contract import JobStatus, Source
from batch_terminator.handlers.terminator import ERROR_ATTRIBUTE_MAX_BYTES, bounded_error, sqs_text
from batch_terminator.logic.parse import InvalidRequest, parse_record, parse_request, parse_source
from batch_terminator.models.request import Origin, partition_of

JOB = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"


def body(**fields: Any) -> str:
    return json.dumps(fields)


def error_of(text: str) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(text)
    return str(caught.value)


def test_terminate_job_body_is_a_valid_request() -> None:
    request = parse_request(json.dumps({"jobId": JOB, "reason": "Terminating job."}))
    assert request.job_id_list == [JOB]
    assert request.reason == "Terminating job."
    assert request.dry_run is False


def test_job_ids_are_deduplicated_in_order() -> None:
    other = "0f2d1f8e-0000-4000-8000-000000000000"
    request = parse_request(body(jobIds=[JOB, other, JOB], reason="r"))
    assert request.job_id_list == [JOB, other]


def test_job_arn_is_accepted_as_its_id() -> None:
    request = parse_request(
        body(jobId=f"arn:aws:batch:us-east-1:123456789012:job/{JOB}", reason="r")
    )
    assert request.job_id_list == [JOB]


def test_array_child_and_node_ids_are_job_ids() -> None:
    request = parse_request(body(jobIds=[f"{JOB}:3", f"{JOB}#1"], reason="r"))
    assert request.job_id_list == [f"{JOB}:3", f"{JOB}#1"]


def test_eventbridge_event_is_unwrapped() -> None:
    event = {
        "version": "0",
        "id": "1",
        "detail-type": "Batch Job Termination Request",
        "source": "batch-terminator",
        "account": "123456789012",
        "time": "2026-11-29T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"jobId": JOB, "reason": "from events", "requestedBy": "alice"},
    }
    request = parse_request(json.dumps(event))
    assert (request.job_id, request.reason, request.requested_by) == (JOB, "from events", "alice")


def test_event_of_another_kind_is_rejected() -> None:
    event = {
        "source": "aws.batch",
        "detail-type": "Batch Job State Change",
        "detail": {"jobId": JOB},
    }
    message = error_of(json.dumps(event))
    assert "'aws.batch' / 'Batch Job State Change' is not a termination request" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", "body is not JSON"),
        ("[1]", "body must be a JSON object, got list"),
        (body(jobId=JOB, reason="r", dryrun=True), "unknown key 'dryrun' (did you mean 'dryRun'?)"),
        (body(jobId=JOB, reason="r", dryRun="true"), "dryRun: Input should be a valid boolean"),
        (body(jobId=JOB), "reason: Field required"),
        (body(jobId=JOB, reason=""), "reason: String should have at least 1 character"),
        (body(jobId=JOB, reason="   "), "reason: must contain at least one visible character"),
        (body(jobId=JOB, reason="x" * 1025), "reason: String should have at most 1024 characters"),
        (body(reason="r"), "give exactly one of jobId, jobIds or selector"),
        (body(jobId=JOB, jobIds=[JOB], reason="r"), "(got jobId, jobIds)"),
        (body(jobId=JOB, reason="r", limit=5), "limit applies to selector requests only"),
        (body(jobId="not a job", reason="r"), "'not a job' is not a Batch job id"),
        (body(jobId=7, reason="r"), "jobId: Input should be a valid string"),
        (body(jobIds=[], reason="r"), "jobIds: List should have at least 1 item"),
        (body(jobIds=[JOB] * 101, reason="r"), "jobIds: List should have at most 100 items"),
        (body(jobId=JOB, reason="r", ifStatus=["DONE"]), "ifStatus.0: Input should be"),
        (
            body(selector={"statuses": ["RUNNING"]}, reason="r"),
            "selector.jobQueues: Field required",
        ),
        (
            body(selector={"jobQueues": ["q"], "statuses": ["SUCCEEDED"]}, reason="r"),
            "finished jobs cannot be terminated",
        ),
        (
            body(selector={"jobQueues": ["q"], "minAge": "soon"}, reason="r"),
            "invalid duration 'soon'",
        ),
        (
            body(selector={"jobQueues": ["q"], "createdBefore": "2026-01-01T00:00:00"}, reason="r"),
            "timezone",
        ),
        (body(jobId=JOB, reason="r", policy="Not_A_Name"), "policy: String should match pattern"),
    ],
)
def test_invalid_requests_are_rejected_with_a_clear_error(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_reason_of_exactly_1024_characters_is_accepted() -> None:
    assert len(parse_request(body(jobId=JOB, reason="x" * 1024)).reason) == 1024


def test_if_status_accepts_one_status_or_a_list() -> None:
    assert parse_request(body(jobId=JOB, reason="r", ifStatus="RUNNABLE")).if_status == [
        JobStatus.RUNNABLE
    ]
    assert parse_request(
        body(jobId=JOB, reason="r", ifStatus=["RUNNABLE", "RUNNING"])
    ).if_status == [
        JobStatus.RUNNABLE,
        JobStatus.RUNNING,
    ]


def test_selector_request_defaults() -> None:
    request = parse_request(body(selector={"jobQueues": ["spot-cpu"], "minAge": "6h"}, reason="r"))
    assert request.selector is not None
    assert request.selector.statuses == [
        JobStatus(s) for s in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
    ]
    assert request.selector_limit == 100
    assert request.selector.min_age_or_zero.total_seconds() == 6 * 3600


def test_source_attribute() -> None:
    assert parse_source(None) is Source.REQUEST
    assert parse_source({"source": {"stringValue": "sweep", "dataType": "String"}}) is Source.SWEEP
    with pytest.raises(InvalidRequest, match="source='nightly' is not one of"):
        parse_source({"source": {"stringValue": "nightly", "dataType": "String"}})


def test_parse_record_never_raises() -> None:
    record = parse_record({"messageId": "m1", "body": "{"})
    assert record.request is None
    assert record.error is not None
    assert record.error.startswith("body is not JSON")
    assert record.message_id == "m1"


# ---- strict means strict (item 7) and one bad message never fails a batch (item 5) ------------

ORIGIN = Origin(account="123456789012", region="us-east-1")
OTHER_ACCOUNT_ARN = f"arn:aws:batch:us-east-1:999999999999:job/{JOB}"
OTHER_REGION_ARN = f"arn:aws:batch:eu-west-1:123456789012:job/{JOB}"


def envelope(account: str = "123456789012", region: str = "us-east-1") -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "1",
            "detail-type": "Batch Job Termination Request",
            "source": "batch-terminator",
            "account": account,
            "time": "2026-11-29T00:00:00Z",
            "region": region,
            "resources": [],
            "detail": {"jobId": JOB, "reason": "r"},
        }
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f'{{"jobId": "{JOB}", "reason": "r", "dryRun": true, "dryRun": false}}',
            "'dryRun' is given twice",
        ),
        (f'{{"jobId": "{JOB}", "jobId": "{JOB}", "reason": "r"}}', "'jobId' is given twice"),
        (body(jobId=JOB, reason="kill\nit"), "must not contain control characters (U+000A)"),
        (body(jobId=JOB, reason="\x1b[31mred"), "must not contain control characters (U+001B)"),
        (body(jobId=JOB, reason="\u200b\u200b"), "must contain at least one visible character"),
        (
            body(jobId=JOB, reason="ok \u202egnp.exe"),
            "must not contain control characters (U+202E)",
        ),
        (body(jobId=JOB, reason="\u00a0 \t"), "must"),
        (body(jobId=JOB + "\n", reason="r"), "is not a Batch job id"),
        (body(jobId=JOB + " ", reason="r"), "is not a Batch job id"),
        (body(jobId="../../etc", reason="r"), "is not a Batch job id"),
        (
            body(jobId=OTHER_ACCOUNT_ARN, reason="r"),
            "is in account '999999999999', not 123456789012",
        ),
        (body(jobId=OTHER_REGION_ARN, reason="r"), "is in region 'eu-west-1', not us-east-1"),
        (envelope(account="999999999999"), "EventBridge event is in account '999999999999'"),
        (envelope(region="eu-west-1"), "EventBridge event is in region 'eu-west-1'"),
        (body(jobId=JOB, reason="r", ifStatus=["SUCCEEDED"]), "finished jobs cannot be terminated"),
        (body(jobId=JOB, reason="r", dryRun=None), "'dryRun' is null"),
        (body(jobId=JOB, reason="r", ifStatus=None), "'ifStatus' is null"),
        (body(selector={"jobQueues": ["spot-*"]}, reason="r"), "is a pattern"),
        (body(selector={"jobQueues": ["spot?"]}, reason="r"), "is a pattern"),
        (body(selector={"jobQueues": ["spot cpu"]}, reason="r"), "is not a job queue name or ARN"),
        (
            body(
                selector={"jobQueues": ["arn:aws:batch:us-east-1:999999999999:job-queue/q"]},
                reason="r",
            ),
            "is in account '999999999999'",
        ),
        (body(jobId=JOB, reason="r", requestedBy="eve\r\nadmin"), "control characters"),
        (body(selector={"jobQueues": ["q"], "minAge": "1000000000d"}, reason="r"), "at most 366d"),
        (
            body(selector={"jobQueues": ["q"], "minAge": "9" * 5000 + "d"}, reason="r"),
            "invalid duration",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"jobId": NaN, "reason": "r"}', "NaN is not JSON"),
    ],
)
def test_hostile_requests_are_rejected_with_a_clear_error(text: str, expected: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(text, ORIGIN)
    assert expected in str(caught.value)


def test_arns_and_envelopes_of_this_account_and_region_are_accepted() -> None:
    mine = f"arn:aws:batch:us-east-1:123456789012:job/{JOB}"
    assert parse_request(body(jobId=mine, reason="r"), ORIGIN).job_id_list == [JOB]
    assert parse_request(envelope(), ORIGIN).job_id_list == [JOB]


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, "{" * 50_000, '{"a": ' * 30_000, "\x00", "", '"\\ud800"', "1e999999"],
)
def test_no_body_makes_parse_record_raise(text: str) -> None:
    record = parse_record({"messageId": "m1", "body": text, "attributes": {"SenderId": "AIDA1"}})
    assert record.request is None
    assert record.error
    assert record.sender == "AIDA1"


def test_parse_record_keeps_who_sent_it_and_the_delivery_count() -> None:
    record = parse_record(
        {
            "messageId": "m1",
            "body": body(jobId=JOB, reason="r"),
            "attributes": {"SenderId": "AROAEXAMPLE:alice", "ApproximateReceiveCount": "3"},
        }
    )
    assert (record.sender, record.receive_count) == ("AROAEXAMPLE:alice", 3)


def test_a_rejected_request_keeps_the_job_it_names() -> None:
    record = parse_record({"messageId": "m1", "body": body(jobId=JOB, reason="r", dryrun=True)})
    assert record.request is None
    assert record.named_job_id == JOB


def test_dlq_error_text_keeps_only_what_sqs_accepts() -> None:
    from batch_terminator.handlers.terminator import sqs_text

    assert sqs_text("ok\ttab\nline") == "ok\ttab\nline"
    assert sqs_text("bad\x00\x01\ud800end") == "bad\ufffd\ufffd\ufffdend"
    assert sqs_text("emoji \U0001f600") == "emoji \U0001f600"


# ---- line separators, partitions, strict JSON in one module, the parked error -----------------

LINE_BREAKERS = "\u2028\u2029\x85\n\r\x0b\x0c\x1c\x1d\x1e"


@given(
    st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=20),
    st.sampled_from(LINE_BREAKERS),
    st.sampled_from(["reason", "requestedBy", "requestId"]),
)
def test_a_character_that_breaks_a_line_is_refused_in_free_text(
    text: str, breaker: str, key: str
) -> None:
    """Every character Python's str.splitlines splits on (Cc, Zl, Zp) forges a log line."""
    assert len(f"a{breaker}b".splitlines()) == 2
    fields = {"jobId": JOB, "reason": "r", key: text + breaker + text}
    error = error_of(body(**fields))
    assert f"{key}: must not contain control characters (U+{ord(breaker):04X})" in error


@pytest.mark.parametrize("key", ["jobNamePrefix", "jobDefinition"])
def test_a_line_separator_is_refused_in_selector_text(key: str) -> None:
    error = error_of(body(selector={"jobQueues": ["q"], key: "a\u2028b"}, reason="r"))
    assert f"selector.{key}: must not contain control characters (U+2028)" in error


def botocore_partitions() -> list[tuple[str, str]]:
    """(region, partition) for every region botocore's endpoints data lists by name."""
    import botocore.session

    resolver = botocore.session.get_session()._get_internal_component("endpoint_resolver")
    return [
        (region, partition["partition"])
        for partition in resolver._endpoint_data["partitions"]
        for region in partition["regions"]
    ]


@pytest.mark.parametrize(("region", "partition"), botocore_partitions())
def test_a_region_is_in_the_partition_botocore_says(region: str, partition: str) -> None:
    assert partition_of(region) == partition


PARTITIONS = sorted({partition for _, partition in botocore_partitions()})


@given(
    st.sampled_from(sorted({region for region, _ in botocore_partitions()})),
    st.sampled_from(PARTITIONS),
    st.sampled_from(["job/" + JOB, "job-queue/spot-cpu"]),
)
def test_an_arn_is_accepted_only_in_the_functions_partition(
    region: str, partition: str, resource: str
) -> None:
    origin = Origin(account="123456789012", region=region)
    arn = f"arn:{partition}:batch:{region}:123456789012:{resource}"
    fields = {"jobId": arn} if resource.startswith("job/") else {"selector": {"jobQueues": [arn]}}
    text = body(**fields, reason="r")
    if partition == partition_of(region):
        parse_request(text, origin)
    else:
        with pytest.raises(InvalidRequest, match=f"is in partition '{partition}', not "):
            parse_request(text, origin)


def test_one_invalid_request_class_and_a_pydantic_free_body_reader() -> None:
    import subprocess
    import sys

    from batch_terminator.logic import bodies, parse

    assert parse.InvalidRequest is bodies.InvalidRequest
    assert parse.load_json is bodies.load_json
    code = (
        "import sys, batch_terminator.logic.bodies, batch_terminator.logic.events; "
        "print(sorted(m for m in sys.modules if m.startswith(('pydantic', "
        "'batch_terminator.models.request', 'batch_terminator.logic.parse'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "batch_terminator.models.request" not in loaded
    assert "batch_terminator.logic.parse" not in loaded


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "settings": {"dryRun": true}, "settings": {}}',
        '{"version": 1, "settings": {"dryRun": true, "dryRun": false}}',
        '{"version": 1, "policies": [{"name": "a", "name": "b", "when": {"status": "RUNNING"}}]}',
    ],
)
def test_policies_json_with_a_key_given_twice_fails_closed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policies.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidPolicies, match="is given twice"):
        load_config(path)


@example("\u00e9" * 3_000)
@example("x" * 5_000)
@given(st.text(max_size=200) | st.text(min_size=1_400, max_size=6_000))
def test_the_parked_error_is_never_empty_and_at_most_4_kib(error: str) -> None:
    text = bounded_error(error)
    assert text
    assert len(text.encode()) <= ERROR_ATTRIBUTE_MAX_BYTES
    assert text == sqs_text(error) or not error or text.endswith("\u2026")
    if len(sqs_text(error).encode()) > ERROR_ATTRIBUTE_MAX_BYTES:
        assert sqs_text(error).startswith(text.removesuffix("\u2026"))


def test_an_error_about_unknown_keys_stays_short_however_many_and_long_they_are() -> None:
    body = {"jobId": "4c7599ae-0a82-49aa-ba5a-4727fcce14a8", "reason": "r"}
    body.update({f"k{i}" + "x" * 100_000: 1 for i in range(1_000)})
    with pytest.raises(InvalidRequest) as raised:
        parse_request(json.dumps(body))
    message = str(raised.value)
    assert "and 995 more unknown keys" in message
    assert len(message) < 2_000
