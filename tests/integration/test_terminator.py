"""The terminator, through the real handler, on the emulator: every outcome of the contract."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox as Pipeline

REASON = "Terminating job."


def test_sqs_request_terminates_running_job_with_exactly_that_reason(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    job = world.job("train-runaway", "gpu-training", "RUNNING", age=timedelta(days=3))

    pipeline.send({"reason": REASON, "jobId": job})
    pipeline.run_terminator()

    described = world.final(job)
    assert described["status"] == "FAILED"
    assert described["statusReason"] == REASON
    assert described["isTerminated"] is True
    line = pipeline.decision(job)
    assert line["outcome"] == "terminated"
    assert line["status_before"] == "RUNNING"
    assert line["job_name"] == "train-runaway"
    assert line["source"] == "request"
    assert line["reason"] == REASON


def test_eventbridge_request_is_routed_by_the_rule_and_cancels_runnable_job(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    job = world.job("etl-stuck", "spot-cpu", "RUNNABLE", age=timedelta(hours=9))

    pipeline.put_event({"reason": REASON, "jobId": job})
    pipeline.run_terminator()

    described = world.final(job)
    assert (described["status"], described["statusReason"], described["isCancelled"]) == (
        "FAILED",
        REASON,
        True,
    )
    assert pipeline.outcome(job) == "terminated"


def test_events_of_other_sources_never_reach_the_queue(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING")
    pipeline.put_event({"reason": REASON, "jobId": job}, source="someone-else")
    assert pipeline.run_terminator() == []
    assert world.final(job)["status"] == "RUNNING"


def test_second_delivery_is_harmless(pipeline: Pipeline, world: BatchWorld) -> None:
    job = world.job("train", "gpu-training", "RUNNING")
    body = {"reason": REASON, "jobId": job}
    pipeline.send(body)
    pipeline.run_terminator()
    pipeline.send(body)
    pipeline.run_terminator()

    outcomes = [line["outcome"] for line in pipeline.audit if line["job_id"] == job]
    assert outcomes == ["terminated", "skipped"]
    # Batch marks the job at once; it may linger in RUNNING a while before it is FAILED.
    assert pipeline.decision(job)["skip_reason"] in (
        "already terminating: RUNNING and marked terminated",
        "already finished: FAILED",
    )
    assert world.final(job)["statusReason"] == REASON


def test_already_finished_unknown_protected_and_disallowed_jobs_are_skipped_with_the_why(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    finished = world.job("report", "spot-cpu", "SUCCEEDED")
    protected = world.job(
        "golden", "gpu-training", "RUNNING", tags={"batch-terminator:protect": "yes"}
    )
    elsewhere = world.job("sim", "research", "RUNNING")
    unknown = "0f2d1f8e-0000-4000-8000-000000000000"

    pipeline.send({"jobIds": [finished, protected, elsewhere, unknown], "reason": REASON})
    pipeline.run_terminator()

    why = {
        job: pipeline.decision(job)["skip_reason"]
        for job in (finished, protected, elsewhere, unknown)
    }
    assert why[finished] == "already finished: SUCCEEDED"
    assert why[protected].startswith("protected")
    assert why[elsewhere].startswith("queue not allowed")
    assert why[unknown].startswith("not found")
    assert {pipeline.outcome(j) for j in why} == {"skipped"}
    for job in (protected, elsewhere):
        assert world.final(job)["status"] == "RUNNING"
    assert pipeline.queued() == 0


def test_if_status_precondition(pipeline: Pipeline, world: BatchWorld) -> None:
    running = world.job("a", "spot-cpu", "RUNNING")
    runnable = world.job("b", "spot-cpu", "RUNNABLE")

    pipeline.send({"jobIds": [running, runnable], "reason": REASON, "ifStatus": ["RUNNABLE"]})
    pipeline.run_terminator()

    assert (
        pipeline.decision(running)["skip_reason"]
        == "precondition failed: status RUNNING is not in ifStatus [RUNNABLE]"
    )
    assert world.final(running)["status"] == "RUNNING"
    assert pipeline.outcome(runnable) == "terminated"


def test_dry_run_request_decides_and_terminates_nothing(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    job = world.job("a", "spot-cpu", "RUNNING")

    pipeline.send({"jobId": job, "reason": REASON, "dryRun": True})
    pipeline.run_terminator()

    line = pipeline.decision(job)
    assert (line["outcome"], line["dry_run"], line["skip_reason"]) == (
        "skipped",
        True,
        "dry run (request)",
    )
    assert world.final(job)["status"] == "RUNNING"


def test_invalid_request_goes_to_dlq_with_its_error_and_the_rest_of_the_batch_goes_on(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    job = world.job("a", "spot-cpu", "RUNNING")
    bad = {"jobId": job, "reason": REASON, "dryrun": True}

    pipeline.send(bad)
    pipeline.send({"jobId": job, "reason": REASON})
    invocations = pipeline.run_terminator()

    assert len(invocations) == 1
    assert invocations[0].failed_ids == set()
    parked = pipeline.dead_letters()
    assert len(parked) == 1
    assert json.loads(parked[0]["Body"]) == bad
    error = parked[0]["MessageAttributes"]["error"]["StringValue"]
    assert "unknown key 'dryrun'" in error
    assert "did you mean 'dryRun'?" in error
    rejected = [line for line in pipeline.audit if line["outcome"] == "rejected"]
    assert len(rejected) == 1
    assert "dryrun" in rejected[0]["error"]
    assert pipeline.outcome(job) == "terminated"


def test_throttled_describe_is_a_batch_item_failure_then_succeeds_on_redelivery(
    pipeline: Pipeline, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("a", "spot-cpu", "RUNNING")
    control.throttle("DescribeJobs", times=1)

    pipeline.send({"jobId": job, "reason": REASON})
    first, second = pipeline.run_terminator()

    assert len(first.failed_ids) == 1
    outcomes = [line["outcome"] for line in pipeline.audit if line["job_id"] == job]
    assert outcomes == ["failed", "terminated"]
    assert "TooManyRequestsException" in pipeline.audit[0]["error"]
    assert second.failed_ids == set()


def test_throttled_terminate_is_retried(
    pipeline: Pipeline, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("a", "spot-cpu", "RUNNING")
    control.throttle("TerminateJobs", times=1)

    pipeline.send({"jobId": job, "reason": REASON})
    pipeline.run_terminator()

    assert [line["outcome"] for line in pipeline.audit if line["job_id"] == job] == [
        "failed",
        "terminated",
    ]


def test_bulk_errors_entry_is_failed_for_that_job_only_and_ends_in_dlq(
    pipeline: Pipeline, world: BatchWorld, control: BatchControl
) -> None:
    stubborn = world.job("stubborn", "spot-cpu", "RUNNING")
    fine = world.job("fine", "spot-cpu", "RUNNING")
    control.fail_in_bulk(stubborn, "ClientException", "job cannot be terminated", times=3)

    pipeline.send({"jobId": stubborn, "reason": REASON})
    pipeline.send({"jobId": fine, "reason": REASON})
    pipeline.run_terminator()

    assert pipeline.outcome(fine) == "terminated"
    failures = [line for line in pipeline.audit if line["job_id"] == stubborn]
    assert [line["outcome"] for line in failures] == ["failed"] * 3
    assert failures[0]["error"] == "ClientException: job cannot be terminated"
    assert world.final(stubborn)["status"] == "RUNNING"
    parked = pipeline.dead_letters()
    assert [json.loads(m["Body"])["jobId"] for m in parked] == [stubborn]


def test_child_of_a_protected_array_is_protected_even_without_the_tag_itself(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    parent = world.job(
        "render", "spot-cpu", "RUNNABLE", array_size=2, tags={"batch-terminator:protect": "yes"}
    )
    child = f"{parent}:1"
    world.age(child, "RUNNING", timedelta(hours=1))
    # Whatever Batch reports on the child itself, the array's protect tag must hold.
    child_arn = world.final(child)["jobArn"]
    world.batch.untag_resource(resourceArn=child_arn, tagKeys=["batch-terminator:protect"])
    assert "batch-terminator:protect" not in world.final(child).get("tags", {})

    pipeline.send({"jobId": child, "reason": REASON})
    pipeline.run_terminator()

    assert pipeline.decision(child)["skip_reason"].startswith("protected")
    assert world.final(child)["status"] == "RUNNING"


def _rejected_bodies(jobs: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Rejected bodies that name valid jobs, and the jobs their lines must name."""
    one, two = jobs
    arn = f"arn:aws:batch:us-east-1:123456789012:job/{one}"
    return {
        "invalid JSON around a jobId": (f'{{"jobId": "{one}", "reason": }}', [one]),
        "jobId with an unknown key": (
            json.dumps({"jobId": one, "reason": REASON, "dryrun": True}),
            [one],
        ),
        "jobIds with an unknown key": (
            json.dumps({"jobIds": [one, two], "reason": REASON, "force": True}),
            [one, two],
        ),
        "invalid JSON around jobIds": (
            f'{{"jobIds": ["{one}", "{two}"], "reason": 1,,}}',
            [one, two],
        ),
        "a job ARN without a reason": (json.dumps({"jobId": arn}), [one]),
        "an EventBridge detail with a wrong type": (
            json.dumps(
                {
                    "source": "batch-terminator",
                    "detail-type": "Batch Job Termination Request",
                    "account": "123456789012",
                    "region": "us-east-1",
                    "detail": {"jobId": one, "reason": REASON, "dryRun": "yes"},
                }
            ),
            [one],
        ),
        "no job at all": (json.dumps({"jobId": "not-a-job-id", "reason": REASON}), []),
    }


def test_a_rejected_request_s_lines_name_the_jobs_its_body_names(
    pipeline: Pipeline, world: BatchWorld
) -> None:
    jobs = [world.job(f"j{i}", "spot-cpu", "RUNNING") for i in range(2)]
    cases = _rejected_bodies(jobs)
    sent = {pipeline.send(body): (case, named) for case, (body, named) in cases.items()}

    pipeline.run_terminator()

    rejected = [line for line in pipeline.audit if line["outcome"] == "rejected"]
    by_message: dict[str, list[str | None]] = {}
    for line in rejected:
        by_message.setdefault(line["message_id"], []).append(line["job_id"])
    assert set(by_message) == set(sent)
    for message_id, (case, named) in sent.items():
        assert by_message[message_id] == (named or [None]), case
    assert len(pipeline.dead_letters()) == len(cases)
    for job in jobs:
        assert world.final(job)["status"] == "RUNNING"


@given(
    ids=st.lists(st.uuids().map(str), min_size=1, max_size=5, unique=True),
    junk=st.text(max_size=20),
    as_arn=st.booleans(),
)
def test_rejected_lines_name_exactly_the_valid_jobs_a_body_names(
    ids: list[str], junk: str, as_arn: bool
) -> None:
    """Whatever breaks a body, its lines name the job ids it lists and nothing else."""
    from batch_terminator.logic.parse import parse_record

    prefix = "arn:aws:batch:us-east-1:123456789012:job/" if as_arn else ""
    named = [prefix + i for i in ids]
    bodies = [
        json.dumps({"jobIds": named, "reason": REASON, "junk": junk}),
        json.dumps({"jobIds": named, "reason": REASON})[:-1] + junk,
    ]
    for body in bodies:
        record = parse_record({"messageId": "m", "body": body})
        if record.request is None:
            assert record.named_job_ids == tuple(ids)
