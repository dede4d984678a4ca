"""Parsing and validation of termination requests: strict, with errors a person can act on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batch_terminator.contract import JobStatus, Source
from batch_terminator.logic.parse import InvalidRequest, parse_record, parse_request, parse_source

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
        (body(jobId=JOB, reason="   "), "reason: must not be blank"),
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
