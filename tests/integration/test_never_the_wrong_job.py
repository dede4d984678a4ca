"""Never the wrong job: each input of the "never the wrong job" issue, through the real handlers
on an emulator that omits and delays what real Batch omits and delays (its default)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox

PROTECT = "batch-terminator:protect"


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def stopped(control: BatchControl) -> dict[str, str]:
    """Every job a Batch call really stopped, with the reason it was stopped with."""
    return {event.job_id: event.reason for event in control.terminations()}


def outcomes(box: Sandbox, job_id: str) -> list[str]:
    return [line["outcome"] for line in box.audit if line["job_id"] == job_id]


POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"]},
    "policies": [
        {
            "name": "gpu-runtime-cap",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "12h"},
        },
        {"name": "stuck", "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "6h"}},
    ],
}


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(POLICIES)


# ---- 1. arrays ------------------------------------------------------------------------------


def test_input_a_a_sweep_never_terminates_an_array_for_some_of_its_children(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("train", "gpu-training", "RUNNING", age=hours(13), array_size=4)
    for index in (2, 3):
        world.age(f"{parent}:{index}", "RUNNABLE", timedelta(minutes=30))

    pipeline.run_sweeper()
    pipeline.run_terminator()

    assert set(stopped(control)) == {f"{parent}:0", f"{parent}:1"}
    for index in (2, 3):
        assert world.final(f"{parent}:{index}")["status"] == "RUNNABLE"
    for index in (0, 1):  # each child a termination stops has its own audit line
        assert outcomes(pipeline, f"{parent}:{index}") == ["terminated"]


def test_input_a_running_children_under_the_limit_are_not_dropped_from_the_listing() -> None:
    from batch_terminator_cli.sandbox import sandbox

    quiet = PoliciesFile.model_validate(
        {**POLICIES, "settings": {**POLICIES["settings"], "maxRuntimeTag": False}}
    )
    with sandbox(quiet) as box:
        parent = box.world.job("train", "gpu-training", "RUNNING", age=hours(13), array_size=2)
        box.world.age(f"{parent}:1", "RUNNING", hours(1))
        box.run_sweeper()
        box.run_terminator()
        assert set(stopped(box.control)) == {f"{parent}:0"}
        assert box.world.final(f"{parent}:1")["status"] == "RUNNING"


def test_input_b_a_parent_is_rechecked_against_its_children_not_its_pending(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("render", "spot-cpu", "RUNNABLE", age=hours(7), array_size=3)

    summary = pipeline.run_sweeper()
    assert summary["policies"]["stuck"]["enqueued"] == 3  # the array counts its 3 children
    for index in range(3):
        world.age(f"{parent}:{index}", "RUNNING", timedelta(minutes=1))
    pipeline.run_terminator()

    assert stopped(control) == {}
    parent_line = pipeline.decision(parent)
    assert parent_line["outcome"] == "skipped"
    assert parent_line["skip_reason"].startswith("array not terminated as a whole")
    child_line = pipeline.decision(f"{parent}:0")
    assert child_line["skip_reason"] == (
        "precondition failed: status RUNNING is not in ifStatus [RUNNABLE]"
    )


def test_an_array_whose_children_all_match_is_terminated_once_with_a_line_per_child(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("render", "spot-cpu", "RUNNABLE", age=hours(7), array_size=3)
    control.reset_calls()

    pipeline.run_sweeper()
    pipeline.run_terminator()

    events = control.terminations()
    assert {e.job_id for e in events} - {parent} == {f"{parent}:{i}" for i in range(3)}
    assert {e.named_id for e in events} == {parent}  # one call, on the parent
    for index in range(3):
        assert outcomes(pipeline, f"{parent}:{index}") == ["terminated"]
    assert outcomes(pipeline, parent) == ["terminated"]


def test_a_by_id_request_for_a_parent_spares_a_protected_child(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("render", "spot-cpu", "RUNNABLE", age=hours(2), array_size=3)
    child = f"{parent}:2"
    world.batch.tag_resource(resourceArn=world.describe(child)["jobArn"], tags={PROTECT: "1"})

    pipeline.send({"jobId": parent, "reason": "drop the render"})
    pipeline.run_terminator()

    assert set(stopped(control)) == {f"{parent}:0", f"{parent}:1"}
    assert pipeline.decision(child)["skip_reason"].startswith("protected")


# ---- 2. decisions are re-checked against what they were based on ------------------------------


def test_input_c_a_selector_is_expanded_once_and_its_limit_holds_across_deliveries(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job(f"etl-{i}", "spot-cpu", "RUNNABLE", age=hours(10 - i)) for i in range(6)]
    control.fail_in_bulk(jobs[1], "ClientException", "injected", times=1)

    pipeline.send(
        {
            "selector": {"jobQueues": ["spot-cpu"], "statuses": ["RUNNABLE"]},
            "reason": "drain",
            "limit": 2,
        }
    )
    pipeline.run_terminator(max_invocations=1)
    # Before the redelivery, more (older) jobs match: the selector must not pick them.
    for i in range(3):
        world.job(f"late-{i}", "spot-cpu", "RUNNABLE", age=hours(20))
    pipeline.run_terminator()

    assert set(stopped(control)) == set(jobs[:2])
    assert outcomes(pipeline, jobs[1]) == ["failed", "terminated"]
    assert outcomes(pipeline, jobs[0]) == ["terminated"]  # settled: not judged again


def test_input_c_a_throttled_chunk_never_makes_a_selector_pick_new_jobs(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    world.queue("spot-cpu")
    world.definition("etl")
    now = datetime.now(UTC)
    control.add_jobs(
        "spot-cpu",
        "etl",
        [(f"etl-{i}", "RUNNABLE", now - hours(2) - timedelta(seconds=i), None) for i in range(120)],
    )
    control.throttle("TerminateJobs", times=1)  # the first chunk of 50 fails as a whole

    pipeline.send({"selector": {"jobQueues": ["spot-cpu"]}, "reason": "drain", "limit": 60})
    pipeline.run_terminator()

    assert len(stopped(control)) == 60
    assert pipeline.queued() == 0


def test_input_d_a_retried_job_is_aged_from_its_previous_attempt(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    retried = world.retried_job(
        "train",
        "spot-cpu",
        created_ago=hours(7),
        first_attempt_ran=hours(7),
        reclaimed_ago=timedelta(minutes=2),
    )

    pipeline.run_sweeper()
    pipeline.send(
        {"jobId": retried, "reason": "claims the policy", "policy": "stuck", "ifStatus": "RUNNABLE"}
    )
    pipeline.run_terminator()

    assert stopped(control) == {}
    assert pipeline.decision(retried)["skip_reason"].startswith(
        "precondition failed: policy stuck would not select the job now: RUNNABLE 2m"
    )


def test_a_sweep_decision_is_rechecked_when_the_job_was_retried_in_between(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNABLE", age=hours(7), retry_attempts=3)

    pipeline.run_sweeper()
    control.set_state(job, "STARTING")
    control.set_state(job, "RUNNING")
    control.retry(job)  # reclaimed: RUNNABLE again, for a minute, not for 7 hours
    pipeline.run_terminator()

    assert stopped(control) == {}
    assert "would not select the job now" in pipeline.decision(job)["skip_reason"]


def test_input_e_a_starting_job_is_aged_from_when_it_became_runnable(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    starting = world.job("etl", "spot-cpu", "STARTING", age=hours(8))
    assert "startedAt" not in world.describe(starting)

    pipeline.run_sweeper()
    pipeline.run_terminator()

    assert set(stopped(control)) == {starting}
    line = pipeline.decision(starting)
    assert line["reason"] == "batch-terminator: policy stuck: STARTING > 6h"
    assert line["age_seconds"] > 8 * 3600


# ---- 3. fail closed on facts Batch did not give -------------------------------------------------


def test_input_f_a_job_describejobs_does_not_see_yet_is_retried_not_dropped(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "SUBMITTED", age=timedelta(0))

    pipeline.send({"jobId": job, "reason": "workflow aborted right after submit"})
    first, _ = pipeline.run_terminator()

    assert first.failed_ids
    assert outcomes(pipeline, job) == ["failed", "terminated"]
    assert set(stopped(control)) == {job}


def test_input_f_not_found_is_concluded_on_the_last_delivery_only(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING", age=hours(1))
    control.hide_from_describe(job, times=3)

    pipeline.send({"jobId": job, "reason": "gone?"})
    pipeline.run_terminator()

    assert outcomes(pipeline, job) == ["failed", "failed", "skipped"]
    assert pipeline.decision(job)["skip_reason"].startswith("not found")
    assert pipeline.dead_letters() == []
    assert stopped(control) == {}


def test_input_g_a_job_listed_but_not_described_is_never_terminated(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    protected = world.job("etl", "spot-cpu", "RUNNABLE", age=hours(9), tags={PROTECT: "1"})
    plain = world.job("etl-2", "spot-cpu", "RUNNABLE", age=hours(9))
    control.hide_from_describe(protected, times=10)

    pipeline.send({"selector": {"jobQueues": ["spot-cpu"]}, "reason": "drain"})
    pipeline.run_terminator()

    assert set(stopped(control)) == {plain}
    assert pipeline.decision(protected)["skip_reason"].startswith("facts unknown")


# ---- 4. patterns match what they name ------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["*batch*", "*queue*", "*east*"])
def test_a_queue_name_pattern_never_matches_through_the_arn(pattern: str) -> None:
    from batch_terminator_cli.sandbox import sandbox

    file = PoliciesFile.model_validate({"version": 1, "settings": {"jobQueues": [pattern]}})
    with sandbox(file) as box:
        job = box.world.job("salaries", "payroll", "RUNNING")
        box.send({"jobId": job, "reason": "oops"})
        box.run_terminator()
        assert box.decision(job)["skip_reason"].startswith("queue not allowed")
        assert stopped(box.control) == {}


# ---- 5. one message never fails a batch; a half-done batch loses no record ------------------------


def test_hostile_bodies_are_rejected_alone_and_the_rest_of_the_batch_goes_on(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING")
    pipeline.send("[" * 100_000 + "]" * 100_000)
    pipeline.send({"selector": {"jobQueues": ["spot-cpu"], "minAge": "1000000000d"}, "reason": "r"})
    pipeline.send({"selector": {"jobQueues": ["no-such-queue"]}, "reason": "r"})
    pipeline.send({"jobId": job, "reason": "fine"})

    [invocation] = pipeline.run_terminator()

    assert invocation.failed_ids == set()
    assert set(stopped(control)) == {job}
    errors = sorted(m["MessageAttributes"]["error"]["StringValue"] for m in pipeline.dead_letters())
    assert len(errors) == 3
    assert any("nested too deeply" in e for e in errors)
    assert any("at most 366d" in e for e in errors)
    assert any("job queue no-such-queue does not exist" in e for e in errors)


def test_a_huge_max_runtime_tag_never_stops_a_sweep(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    world.job(
        "odd", "gpu-training", "RUNNING", tags={"batch-terminator:max-runtime": "1000000000d"}
    )
    runaway = world.job("train", "gpu-training", "RUNNING", age=hours(13))

    summary = pipeline.run_sweeper()
    pipeline.run_terminator()

    assert set(stopped(control)) == {runaway}
    assert list(summary["invalid_max_runtime_tags"].values()) == ["1000000000d"]
    [warning] = [
        line
        for line in pipeline.sweeper_logs
        if line["message"] == "jobs ignored by the policy run"
    ]
    assert warning["level"] == "WARNING"


def test_a_timeout_on_the_second_chunk_loses_no_audit_line(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job(f"etl-{i}", "spot-cpu", "RUNNING", age=hours(1)) for i in range(60)]
    pipeline.send({"jobIds": jobs[:50], "reason": "cleanup"})
    pipeline.send({"jobIds": jobs[50:], "reason": "cleanup"})
    # The first call goes through; the second times out after Batch acted on it.
    control.timeout("TerminateJobs", after=1, applied=True)

    [first] = pipeline.run_terminator(max_invocations=1)
    assert len(first.failed_ids) == 1  # only the second message is delivered again
    assert [outcomes(pipeline, j) for j in jobs[:50]] == [["terminated"]] * 50
    assert [outcomes(pipeline, j) for j in jobs[50:]] == [["failed"]] * 10
    control.settle()  # the visibility timeout passes: Batch has stopped them, with our reason
    pipeline.run_terminator()

    assert set(stopped(control)) == set(jobs)
    for job in jobs[50:]:  # the redelivery sees our reason on them: ours, none contradicting
        assert outcomes(pipeline, job) == ["failed", "terminated"]
    assert control.calls()["TerminateJobs"] == 2  # never terminated twice


def test_a_job_stopped_by_someone_else_after_our_lost_call_is_not_claimed(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING", age=hours(1))
    control.timeout("TerminateJobs", applied=False)  # our call never reached Batch

    pipeline.send({"jobId": job, "reason": "ours"})
    pipeline.run_terminator(max_invocations=1)
    world.batch.terminate_job(jobId=job, reason="manual, from the console")
    control.settle()
    pipeline.run_terminator()

    assert outcomes(pipeline, job) == ["failed", "skipped"]
    assert pipeline.decision(job)["skip_reason"] == "already finished: FAILED"


def test_time_running_low_stops_starting_calls_and_retries_the_rest(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    from batch_terminator_cli.emulator.lambda_runtime import LambdaContext

    first = world.job("a", "spot-cpu", "RUNNING")
    second = world.job("b", "gpu-training", "RUNNING")
    pipeline.send({"jobId": first, "reason": "one"})
    pipeline.send({"jobId": second, "reason": "two"})
    answers = iter([120_000, 120_000, 1_000])

    def running_out() -> LambdaContext:
        return LambdaContext(remaining_millis=lambda: next(answers, 120_000))

    invocations = pipeline.run_terminator(context=running_out)

    assert invocations[0].failed_ids  # what it could not start is retried
    assert set(stopped(control)) == {first, second}
    assert outcomes(pipeline, second) == ["failed", "terminated"]
    failed = next(line for line in pipeline.audit if line["job_id"] == second)
    assert "time ran low" in failed["error"]


# ---- 6. every request gets its own outcome --------------------------------------------------------


def test_input_h_a_dry_run_never_swallows_a_real_request_for_the_same_job(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING")
    pipeline.send({"jobId": job, "reason": "preview", "dryRun": True})
    pipeline.send({"jobId": job, "reason": "kill it"})

    pipeline.run_terminator()

    assert stopped(control) == {job: "kill it"}
    assert sorted(outcomes(pipeline, job)) == ["skipped", "terminated"]


def test_a_failed_precondition_never_swallows_another_request_for_the_same_job(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING")
    pipeline.send({"jobId": job, "reason": "only if waiting", "ifStatus": "RUNNABLE"})
    pipeline.send({"jobId": job, "reason": "kill it"})

    pipeline.run_terminator()

    assert stopped(control) == {job: "kill it"}


def test_identical_requests_share_one_call_and_each_gets_its_line(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING")
    for _ in range(2):
        pipeline.send({"jobId": job, "reason": "same"})
    control.reset_calls()

    pipeline.run_terminator()

    assert control.calls().get("TerminateJobs") == 1
    # One terminated line per job: the other request is told which one terminated it.
    first, second = (line for line in pipeline.audit if line["job_id"] == job)
    assert (first["outcome"], second["outcome"]) == ("terminated", "skipped")
    assert second["skip_reason"] == (
        f"already terminated by request message {first['message_id']} (the same call)"
    )


def test_two_reasons_for_one_job_make_one_call_and_the_other_is_told_why(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING")
    pipeline.send({"jobId": job, "reason": "first"})
    pipeline.send({"jobId": job, "reason": "second"})

    pipeline.run_terminator()

    assert stopped(control) == {job: "first"}
    lines = [line for line in pipeline.audit if line["job_id"] == job]
    assert [line["outcome"] for line in lines] == ["terminated", "skipped"]
    assert lines[1]["skip_reason"].startswith("already terminated: another request")


# ---- 7. strict input; the audit says who sent it -------------------------------------------------


def test_the_audit_records_the_sqs_sender_and_a_claimed_policy_is_rechecked(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    young = world.job("train", "gpu-training", "RUNNING", age=hours(1))
    pipeline.send(
        {"jobId": young, "reason": "pretend", "policy": "gpu-runtime-cap", "requestedBy": "cron"}
    )
    pipeline.run_terminator()

    line = pipeline.decision(young)
    assert line["sender"]  # the SQS SenderId, whatever requestedBy claims
    assert line["requested_by"] == "cron"
    assert line["skip_reason"].startswith(
        "precondition failed: policy gpu-runtime-cap would not select the job now"
    )
    assert stopped(control) == {}


def test_an_eventbridge_request_of_another_account_is_rejected(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNING")
    foreign = {
        "version": "0",
        "id": "1",
        "detail-type": "Batch Job Termination Request",
        "source": "batch-terminator",
        "account": "999999999999",
        "time": "2026-11-29T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"jobId": job, "reason": "r"},
    }
    pipeline.send(json.dumps(foreign))
    pipeline.run_terminator()
    assert stopped(control) == {}
    [parked] = pipeline.dead_letters()
    assert "account '999999999999'" in parked["MessageAttributes"]["error"]["StringValue"]


# ---- 8. Batch's shape ------------------------------------------------------------------------------


def test_terminations_are_grouped_by_queue_and_reason(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job("a", "spot-cpu", "RUNNING"), world.job("b", "gpu-training", "RUNNING")]
    pipeline.send({"jobIds": jobs, "reason": "same reason"})
    control.reset_calls()

    pipeline.run_terminator()

    assert control.calls()["TerminateJobs"] == 2  # "up to 50 jobs in a job queue"
    assert set(stopped(control)) == set(jobs)


def test_a_multi_node_job_protects_its_nodes(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    main = world.multinode_job("mpi", "gpu-training", tags={PROTECT: "1"})
    assert PROTECT not in world.describe(f"{main}#1").get("tags", {})

    pipeline.send({"jobIds": [f"{main}#1", f"{main}#2"], "reason": "node by node"})
    pipeline.run_terminator()

    assert stopped(control) == {}
    assert pipeline.decision(f"{main}#1")["skip_reason"].startswith("protected")


def test_the_audit_keeps_the_status_reason_batch_overwrites(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNABLE", age=hours(9))
    before = world.describe(job).get("statusReason")

    pipeline.send({"jobId": job, "reason": "replace me"})
    pipeline.run_terminator()

    assert pipeline.decision(job)["status_reason_before"] == before
    assert world.final(job)["statusReason"] == "replace me"


# ---- 10. lingering terminations --------------------------------------------------------------------


def test_a_lingering_cancelled_job_never_uses_up_a_policy_cap() -> None:
    from batch_terminator_cli.emulator import Behaviour
    from batch_terminator_cli.sandbox import sandbox

    capped = PoliciesFile.model_validate(
        {
            "version": 1,
            "settings": {"jobQueues": ["spot-cpu"]},
            "policies": [{**POLICIES["policies"][1], "maxPerRun": 1}],
        }
    )
    with sandbox(capped) as box:
        box.control.configure(Behaviour(linger_reads=100))
        old = box.world.job("a", "spot-cpu", "RUNNABLE", age=hours(30))
        young = box.world.job("b", "spot-cpu", "RUNNABLE", age=hours(7))
        box.run_sweeper()
        box.run_terminator()
        assert box.world.describe(old)["status"] == "RUNNABLE"  # still lingering
        box.run_sweeper()
        box.run_terminator()
        assert set(stopped(box.control)) == {old, young}


# ---- found in review: every child gets its outcome; a redrive keeps a selector's limit -----------


def test_children_describejobs_does_not_see_yet_are_retried_not_dropped(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("render", "spot-cpu", "SUBMITTED", age=timedelta(0), array_size=3)

    pipeline.send({"jobId": parent, "reason": "workflow aborted right after submit"})
    pipeline.run_terminator()

    assert set(stopped(control)) == {f"{parent}:{i}" for i in range(3)}
    for index in range(3):
        assert outcomes(pipeline, f"{parent}:{index}")[-1] == "terminated"
    assert outcomes(pipeline, parent)[-1] == "terminated"


def test_a_child_hidden_for_a_read_is_retried_and_its_siblings_go_one_by_one(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("render", "spot-cpu", "RUNNING", age=hours(2), array_size=3)
    control.hide_from_describe(f"{parent}:2", times=1)

    pipeline.send({"jobId": parent, "reason": "drop it"})
    pipeline.run_terminator()

    assert set(stopped(control)) == {f"{parent}:{i}" for i in range(3)}
    assert outcomes(pipeline, f"{parent}:2") == ["failed", "terminated"]
    assert outcomes(pipeline, f"{parent}:0") == ["terminated"]


def test_a_finished_child_named_with_its_parent_gets_its_own_line(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("render", "spot-cpu", "RUNNING", age=hours(2), array_size=2)
    world.age(f"{parent}:1", "SUCCEEDED", hours(1))

    pipeline.send({"jobIds": [parent, f"{parent}:1"], "reason": "drop it"})
    pipeline.run_terminator()

    assert pipeline.decision(f"{parent}:1")["skip_reason"] == "already finished: SUCCEEDED"
    assert outcomes(pipeline, f"{parent}:0") == ["terminated"]


def redrive(pipeline: Sandbox) -> int:
    """What SQS's message move task does (moto lacks StartMessageMoveTask): every DLQ message
    back to the request queue with its body and attributes, under a new message id."""
    sqs, moved = pipeline.sqs, 0
    for message in pipeline.dead_letters():
        attributes = {
            name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
            for name, value in message.get("MessageAttributes", {}).items()
        }
        sqs.send_message(
            QueueUrl=pipeline.deployment.request_queue_url,
            MessageBody=message["Body"],
            MessageAttributes=attributes,
        )
        got = sqs.receive_message(QueueUrl=pipeline.deployment.dlq_url, MaxNumberOfMessages=10)
        for received in got.get("Messages", []):
            sqs.delete_message(
                QueueUrl=pipeline.deployment.dlq_url, ReceiptHandle=received["ReceiptHandle"]
            )
        moved += 1
    return moved


def test_a_selector_redriven_from_the_dlq_keeps_its_limit(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job(f"etl-{i}", "spot-cpu", "RUNNABLE", age=hours(10 - i)) for i in range(4)]
    control.fail_in_bulk(jobs[1], "ClientException", "not now", times=3)
    body = {"selector": {"jobQueues": ["spot-cpu"], "statuses": ["RUNNABLE"]}, "reason": "drain"}
    pipeline.send({**body, "limit": 2})
    pipeline.run_terminator()
    [dead] = pipeline.dead_letters()
    attributes = dead["MessageAttributes"]
    assert attributes["error"]["StringValue"].startswith("1 failed on the last delivery")
    assert attributes["ledgerKey"]["StringValue"].startswith("message#")

    assert redrive(pipeline) == 1  # a new message id; the ledger key comes along
    pipeline.run_terminator()

    assert set(stopped(control)) == set(jobs[:2])
    assert outcomes(pipeline, jobs[2]) == ["skipped"]  # "limit reached", once
    assert outcomes(pipeline, jobs[1])[-1] == "terminated"


def test_the_same_selector_sent_again_is_a_new_request(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job(f"etl-{i}", "spot-cpu", "RUNNABLE", age=hours(10 - i)) for i in range(3)]
    body = {"selector": {"jobQueues": ["spot-cpu"]}, "reason": "hourly drain", "limit": 1}
    for _ in range(2):
        pipeline.send(body)
        pipeline.run_terminator()
        control.settle()

    assert set(stopped(control)) == set(jobs[:2])


def test_a_forged_ledger_key_resumes_nothing(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job(f"etl-{i}", "spot-cpu", "RUNNABLE", age=hours(10 - i)) for i in range(3)]
    control.fail_in_bulk(jobs[0], "ClientException", "not now", times=3)
    pipeline.send({"selector": {"jobQueues": ["spot-cpu"]}, "reason": "drain", "limit": 1})
    pipeline.run_terminator()
    [dead] = pipeline.dead_letters()
    key = dead["MessageAttributes"]["ledgerKey"]["StringValue"]

    pipeline.sqs.send_message(  # another request claiming that request's ledger item
        QueueUrl=pipeline.deployment.request_queue_url,
        MessageBody=json.dumps({"selector": {"jobQueues": ["spot-cpu"]}, "reason": "mine"}),
        MessageAttributes={"ledgerKey": {"DataType": "String", "StringValue": key}},
    )
    pipeline.run_terminator()

    assert {e.reason for e in control.terminations()} == {"mine"}
    assert len(stopped(control)) == 3  # its own expansion, its own default limit


def test_a_job_still_stopping_after_our_lost_call_waits_then_says_so(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    from batch_terminator_cli.emulator import Behaviour

    control.configure(Behaviour(linger_reads=100))  # Batch takes its time to stop it
    job = world.job("etl", "spot-cpu", "RUNNING", age=hours(1))
    control.timeout("TerminateJobs", applied=True)

    pipeline.send({"jobId": job, "reason": "ours"})
    pipeline.run_terminator(settle_before_redelivery=False)

    lines = [line for line in pipeline.audit if line["job_id"] == job]
    assert [line["outcome"] for line in lines] == ["failed", "failed", "skipped"]
    assert lines[1]["error"].startswith("being terminated after our earlier call")
    assert lines[2]["skip_reason"].endswith(
        "our earlier call, whose reply was lost, may have done it"
    )
    assert control.calls()["TerminateJobs"] == 1  # never called twice


# ---- found in the second review ------------------------------------------------------------------


def test_a_parent_is_not_settled_while_a_child_is_open(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(2), array_size=3)
    world.age(f"{parent}:2", "RUNNABLE", timedelta(minutes=30))
    control.throttle("TerminateJobs", times=1)

    pipeline.send({"jobId": parent, "reason": "ops cleanup", "ifStatus": ["RUNNING"]})
    pipeline.run_terminator()

    assert set(stopped(control)) == {f"{parent}:0", f"{parent}:1"}
    for index in (0, 1):
        assert outcomes(pipeline, f"{parent}:{index}") == ["failed", "terminated"]
    assert outcomes(pipeline, f"{parent}:2") == ["skipped"]


def test_a_multi_node_job_and_its_node_with_other_reasons_make_one_call(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    main = world.multinode_job("mpi", "spot-cpu", age=hours(2))
    pipeline.send({"jobId": main, "reason": "reason-one"})
    pipeline.send({"jobId": f"{main}#1", "reason": "reason-two"})

    pipeline.run_terminator()

    assert set(stopped(control).values()) == {"reason-one"}
    node = [line for line in pipeline.audit if line["job_id"] == f"{main}#1"]
    assert [line["outcome"] for line in node] == ["skipped"]
    assert node[0]["skip_reason"].startswith("already terminated: another request")


def test_children_named_with_a_parent_always_get_their_line(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    protected = world.job("a", "spot-cpu", "RUNNING", array_size=3, tags={PROTECT: "yes"})
    other = world.job("b", "spot-cpu", "RUNNING", array_size=3)
    pipeline.send({"jobIds": [protected, f"{protected}:0", f"{protected}:1"], "reason": "p"})
    pipeline.send({"jobIds": [other, f"{other}:7"], "reason": "q"})

    pipeline.run_terminator()

    for child in (f"{protected}:0", f"{protected}:1"):
        assert pipeline.decision(child)["skip_reason"].startswith("protected")
    assert pipeline.decision(f"{other}:7")["skip_reason"].startswith("not found")
    assert set(stopped(control)) == {f"{other}:{i}" for i in range(3)}


def test_a_child_that_finished_between_deliveries_gets_its_final_line(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(2), array_size=3)
    control.throttle("TerminateJobs", times=1)
    pipeline.send({"jobId": parent, "reason": "cleanup"})
    pipeline.run_terminator(max_invocations=1)
    control.set_state(f"{parent}:0", "SUCCEEDED")
    world.batch.terminate_job(jobId=f"{parent}:1", reason="someone else")

    pipeline.run_terminator()

    assert outcomes(pipeline, f"{parent}:0") == ["failed", "skipped"]
    assert outcomes(pipeline, f"{parent}:1") == ["failed", "skipped"]
    assert outcomes(pipeline, f"{parent}:2") == ["failed", "terminated"]


def test_a_lost_reply_never_claims_a_child_stopped_before(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(2), array_size=3)
    pipeline.send({"jobId": f"{parent}:0", "reason": "cleanup", "requestId": "A"})
    pipeline.run_terminator()
    control.settle()
    control.timeout("TerminateJobs", applied=False)

    pipeline.send({"jobId": parent, "reason": "cleanup", "requestId": "B"})
    pipeline.run_terminator()

    b_lines = [line for line in pipeline.audit if line["request_id"] == "B"]
    assert not [
        line
        for line in b_lines
        if line["job_id"] == f"{parent}:0" and line["outcome"] == "terminated"
    ]


def test_a_node_whose_main_job_is_not_described_is_never_terminated(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    main = world.multinode_job("mnp", "spot-cpu", "RUNNABLE", age=hours(1), tags={PROTECT: "1"})
    control.hide_from_describe(main, times=3)

    pipeline.send({"jobId": f"{main}#1", "reason": "should never happen"})
    pipeline.run_terminator()

    assert stopped(control) == {}
    assert outcomes(pipeline, f"{main}#1") == ["failed", "failed", "skipped"]
    assert pipeline.decision(f"{main}#1")["skip_reason"].startswith("facts unknown")


def test_a_whole_array_call_whose_reply_was_lost_is_confirmed_for_every_child(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(2), array_size=3)
    control.timeout("TerminateJobs", applied=True)

    pipeline.send({"jobId": parent, "reason": "drop"})
    pipeline.run_terminator()

    for job in (parent, *(f"{parent}:{i}" for i in range(3))):
        assert outcomes(pipeline, job) == ["failed", "terminated"], job


def test_a_big_array_never_starves_the_rest_of_its_batch(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    from batch_terminator_cli.emulator.lambda_runtime import LambdaContext

    big = world.job("big", "spot-cpu", "RUNNING", age=hours(2), array_size=500)
    victim = world.job("victim", "spot-cpu", "RUNNING", age=hours(2))
    pipeline.send({"jobId": big, "reason": "too big for the time left"})
    pipeline.send({"jobId": victim, "reason": "fine"})
    clock = {"left": 120_000}

    def slow_context() -> LambdaContext:
        clock["left"] = 120_000

        def remaining() -> int:  # each Batch call costs 10 seconds
            clock["left"] -= 10_000
            return clock["left"]

        return LambdaContext(remaining_millis=remaining)

    [first, *_] = pipeline.run_terminator(max_invocations=1, context=slow_context)

    assert set(stopped(control)) == {victim}
    assert outcomes(pipeline, big) == ["failed"]
    assert "could not be read" in pipeline.decision(big)["error"]
    assert len(first.failed_ids) == 1


# ---- found in the third review -------------------------------------------------------------------


def final_lines(pipeline: Sandbox) -> dict[tuple[str, str], list[str]]:
    """(message, job) -> the outcomes that are final (not `failed`)."""
    found: dict[tuple[str, str], list[str]] = {}
    for line in pipeline.audit:
        if line["job_id"] and line["outcome"] in ("terminated", "skipped"):
            found.setdefault((line["message_id"], line["job_id"]), []).append(line["outcome"])
    return found


def test_a_parent_gets_one_final_line_when_a_child_call_fails(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(1), array_size=4)
    for index in (2, 3):
        world.age(f"{parent}:{index}", "RUNNABLE", hours(1))
    control.fail_in_bulk(f"{parent}:0", "ClientException", "not now", times=1)

    pipeline.send({"jobId": parent, "reason": "kill runners", "ifStatus": ["RUNNING"]})
    pipeline.run_terminator()

    assert all(len(finals) == 1 for finals in final_lines(pipeline).values())
    assert outcomes(pipeline, parent) == ["failed", "skipped"]
    assert set(stopped(control)) == {f"{parent}:0", f"{parent}:1"}


def test_a_parent_our_call_never_named_is_never_claimed(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(1), array_size=3)
    world.age(f"{parent}:2", "RUNNABLE", hours(1))
    control.timeout("TerminateJobs", applied=True)  # the children's call acts, its reply is lost
    pipeline.send({"jobId": parent, "reason": "kill runners", "ifStatus": ["RUNNING"]})
    pipeline.run_terminator(max_invocations=1)
    control.set_state(f"{parent}:2", "SUCCEEDED")

    pipeline.run_terminator()

    assert "terminated" not in outcomes(pipeline, parent)
    for index in (0, 1):
        assert outcomes(pipeline, f"{parent}:{index}") == ["failed", "terminated"]


def test_a_main_node_and_another_node_with_other_reasons_make_one_call(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    main = world.multinode_job("mpi", "spot-cpu", age=hours(2))
    pipeline.send({"jobId": f"{main}#0", "reason": "A"})
    pipeline.send({"jobId": f"{main}#1", "reason": "B"})

    pipeline.run_terminator()

    node = [line for line in pipeline.audit if line["job_id"] == f"{main}#1"]
    assert [line["outcome"] for line in node] == ["skipped"]
    assert set(stopped(control).values()) == {"A"}


def flaky_ledger(method: str, failures: int) -> Any:
    """The running terminator's ledger client, failing `method` the next `failures` times."""
    from botocore.exceptions import ClientError

    from batch_terminator.handlers import terminator

    ledger = terminator.dependencies().ledger
    real, left = ledger._client, {"n": failures}

    class Flaky:
        def __getattr__(self, name: str) -> Any:
            if name == method and left["n"] > 0:

                def fail(**_: Any) -> Any:
                    left["n"] -= 1
                    error = {"Error": {"Code": "InternalServerError", "Message": "injected"}}
                    raise ClientError(error, method)  # type: ignore[arg-type]

                return fail
            return getattr(real, name)

    ledger._client = Flaky()
    return ledger


@pytest.mark.parametrize("method", ["batch_get_item", "update_item"])
def test_a_ledger_failure_never_leaves_a_child_without_its_final_line(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl, method: str
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(1), array_size=3)
    world.age(f"{parent}:2", "RUNNABLE", hours(1))
    control.fail_in_bulk(f"{parent}:0", "ClientException", "not now", times=1)
    pipeline.send({"jobId": parent, "reason": "kill runners", "ifStatus": ["RUNNING"]})
    if method == "update_item":
        flaky_ledger(method, 1)  # what the first delivery settled is lost
    pipeline.run_terminator(max_invocations=1)
    control.set_state(f"{parent}:0", "SUCCEEDED")
    if method == "batch_get_item":
        flaky_ledger(method, 1)  # the second delivery cannot read what the first settled

    pipeline.run_terminator()

    assert outcomes(pipeline, f"{parent}:0")[-1] == "skipped"  # finished on its own meanwhile


def test_children_left_open_get_their_line_when_the_parent_vanishes(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job("arr", "spot-cpu", "RUNNING", age=hours(1), array_size=3)
    world.age(f"{parent}:2", "RUNNABLE", hours(1))
    control.fail_in_bulk(f"{parent}:0", "ClientException", "not now", times=1)
    pipeline.send({"jobId": parent, "reason": "kill runners", "ifStatus": ["RUNNING"]})
    pipeline.run_terminator(max_invocations=1)
    control.hide_from_describe(parent, times=10)

    pipeline.run_terminator()

    child = outcomes(pipeline, f"{parent}:0")
    assert child[-1] in ("terminated", "skipped"), child
    assert child.count("terminated") + child.count("skipped") == 1


def test_parking_is_tried_again_so_a_redriven_selector_keeps_its_key(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    from batch_terminator.handlers import terminator

    jobs = [world.job(f"etl-{i}", "spot-cpu", "RUNNABLE", age=hours(10 - i)) for i in range(4)]
    control.fail_in_bulk(jobs[1], "ClientException", "not now", times=3)
    deps = terminator.dependencies()
    real, hiccups = deps.sqs_client, {"left": 1}

    class Hiccup:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def send_message(self, **kwargs: Any) -> Any:
            if hiccups["left"]:
                hiccups["left"] -= 1
                raise ConnectionError("SQS hiccup")
            return real.send_message(**kwargs)

    object.__setattr__(deps, "sqs_client", Hiccup())
    pipeline.send({"selector": {"jobQueues": ["spot-cpu"]}, "reason": "drain", "limit": 2})
    pipeline.run_terminator()

    [dead] = pipeline.dead_letters()
    assert "ledgerKey" in dead["MessageAttributes"]
    redrive(pipeline)
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs[:2])
