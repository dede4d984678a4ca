"""The event paths under a flaky AWS and a careless operator: every rule's deadline holds when an
earlier one comes to nothing; a brake brakes once, up to its cap, whatever fails midway; one bad
input never fails the others."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from batch_terminator.handlers import brake
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl, alarms
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox
from tests.integration.test_event_triggers import BLOCKED, lines, stopped

POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"]},
    "policies": [
        {  # an operator trials a tighter cap in dry run first
            "name": "trial-cap",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "2m"},
            "dryRun": True,
        },
        {
            "name": "real-cap",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "10m"},
        },
        {
            "name": "stuck",
            "match": {"jobQueues": ["spot-cpu"]},
            "when": {"status": "RUNNABLE", "olderThan": "6h"},
        },
        {
            "name": "misconfigured",
            "match": {"jobQueues": ["spot-cpu"]},
            "when": {
                "status": "RUNNABLE",
                "statusReasons": ["MISCONFIGURATION:*"],
                "olderThan": "30m",
            },
        },
        {
            "name": "tiny-cap",
            "match": {"jobQueues": ["spot-cpu"], "jobNames": ["tiny-*"]},
            "when": {"status": "RUNNING", "olderThan": "5m"},
            "maxPerRun": 2,
        },
        {
            "name": "spend-brake",
            "trigger": {"alarms": ["batch-spend-critical"]},
            "match": {"jobQueues": ["spot-cpu"]},
            "when": {"status": "RUNNING"},
            "order": "newest-first",
            "maxPerRun": 12,
        },
    ],
}
AT = datetime(2026, 11, 29, 8, 10, tzinfo=UTC)


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(POLICIES)


def walk(box: Sandbox, minutes: int) -> None:
    """Let time pass a minute at a time with every event path running, and no sweep."""
    for _ in range(minutes):
        box.advance(timedelta(minutes=1))
        box.fire_schedules()
        box.run_deadlines()
        box.run_terminator()


# ---- deadlines ------------------------------------------------------------------------------


def test_a_dry_run_rule_never_hides_a_later_real_one(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("train", "gpu-training", "RUNNING", age=timedelta(seconds=30))
    pipeline.run_deadlines()
    walk(pipeline, 12)
    assert [(d["outcome"], d["policy"]) for d in pipeline.decisions(job)] == [
        ("skipped", "trial-cap"),
        ("terminated", "real-cap"),
    ]
    assert job in stopped(control)


def test_a_blocked_reason_that_clears_leaves_the_plain_limit_in_force(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("big-mem", "spot-cpu", "RUNNABLE", age=timedelta(minutes=10))
    control.block(job, BLOCKED)
    pipeline.run_deadlines()
    control.block(job, "Waiting for capacity")  # the compute environment was fixed
    pipeline.run_deadlines()
    walk(pipeline, 25)
    assert job not in stopped(control)  # the 30-minute rule no longer matches: skipped
    pipeline.advance(timedelta(hours=6))
    walk(pipeline, 1)
    assert stopped(control)[job] == "batch-terminator: policy stuck: RUNNABLE > 6h"


def test_the_deadline_path_keeps_the_policys_cap(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """Safety rule 4 on a path without runs: 20 deadlines of a policy capped at 2 in one sweep
    interval terminate 2; the others are skipped with the cap's reason, and the cap is
    reported, never exceeded silently."""
    jobs = [
        world.job(f"tiny-{i}", "spot-cpu", "RUNNING", age=timedelta(minutes=4)) for i in range(20)
    ]
    pipeline.run_deadlines()
    walk(pipeline, 2)
    assert len(set(stopped(control)) & set(jobs)) == 2
    skipped = [pipeline.decision(j) for j in jobs if j not in stopped(control)]
    assert len(skipped) == 18
    assert all(line["skip_reason"].startswith("policy cap reached: tiny-cap") for line in skipped)
    capped = [
        blob
        for blob in pipeline.metrics
        if blob.get("PolicyCapReached") and blob.get("policy") == "tiny-cap"
    ]
    assert capped


def test_a_job_counts_once_against_the_cap_however_often_it_is_delivered(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """At-least-once delivery (SQS, Scheduler) and a failed call's retry never use up the cap:
    a job holds one place in its window."""
    first, second = (
        world.job(f"tiny-{i}", "spot-cpu", "RUNNING", age=timedelta(minutes=6)) for i in range(2)
    )
    control.publish_events(False)
    request = {
        "jobId": first,
        "reason": "batch-terminator: policy tiny-cap: RUNNING > 5m",
        "policy": "tiny-cap",
        "ifStatus": ["RUNNING"],
    }
    control.throttle("TerminateJobs", times=1)
    pipeline.send(request, source="deadline")
    pipeline.send(request, source="deadline")  # the same request, delivered twice
    pipeline.run_terminator()
    pipeline.send({**request, "jobId": second}, source="deadline")
    pipeline.run_terminator()
    assert {first, second} <= set(stopped(control))
    assert not [line for line in pipeline.audit if "cap reached" in (line["skip_reason"] or "")]


def test_a_malformed_body_is_one_ignore_line(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("train", "gpu-training", "RUNNING", age=timedelta(minutes=20))
    url = pipeline.deployment.events_queue_url
    pipeline.sqs.send_message(QueueUrl=url, MessageBody='{"id": ' + "9" * 5000 + "}")
    invocations = pipeline.run_deadlines()
    assert all(not i.response["batchItemFailures"] for i in invocations)
    pipeline.run_terminator()
    assert job in stopped(control)


# ---- the brake ------------------------------------------------------------------------------


def spot_jobs(world: BatchWorld, count: int) -> list[str]:
    now = datetime.now(UTC)
    return [
        world.job(f"spot-{i}", "spot-cpu", "RUNNING", age=timedelta(minutes=60 - i), now=now)
        for i in range(count)
    ]


def test_a_claim_whose_answer_was_lost_still_brakes_once(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    spot_jobs(world, 5)
    client = brake.dependencies().ledger._client
    lost = {"left": 1}

    def lose_answer(**_: Any) -> None:
        if lost["left"]:
            lost["left"] -= 1
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    client.meta.events.register("after-call.dynamodb.PutItem", lose_answer)
    results = pipeline.run_brake_async(alarms.alarm_event("batch-spend-critical", AT))
    assert isinstance(results[0], str)  # the first attempt failed
    assert results[-1] == {"outcomes": ["braked"]}  # Lambda's retry found its own claim
    pipeline.run_terminator()
    assert len(stopped(control)) == 5
    pipeline.run_brake(alarms.sns_alarm("batch-spend-critical", AT))
    assert len(lines(pipeline, "brake applied")) == 1


def test_a_brake_that_fails_midway_keeps_its_cap_on_the_retry(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = spot_jobs(world, 40)
    sqs = brake.dependencies().sqs_client
    calls = {"n": 0}

    def second_batch_fails(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", second_batch_fails)
    results = pipeline.run_brake_async(
        alarms.alarm_action("batch-spend-critical", AT), between=pipeline.run_terminator
    )
    assert results[-1] == {"outcomes": ["braked"]}
    pipeline.run_terminator()
    # The twelve newest, exactly: the retry re-sent the first attempt's picks, no new ones.
    assert set(stopped(control)) == set(jobs[-12:])
    # Another path's delivery of the same transition, later: nothing more.
    pipeline.run_brake(alarms.sns_alarm("batch-spend-critical", AT))
    pipeline.run_terminator()
    assert len(stopped(control)) == 12


def test_a_transition_held_by_another_invocation_is_not_braked_twice(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    spot_jobs(world, 3)
    ledger = brake.dependencies().ledger
    key = "brake#alarm#batch-spend-critical#" + AT.isoformat(timespec="milliseconds")
    now = int(datetime.now(UTC).timestamp())
    assert ledger.claim_transition(key, "someone-else", now, 360).state == "new"
    # Held by a live invocation: not "applied" (the holder may still fail); Lambda retries.
    with pytest.raises(brake.BrakeBusy):
        pipeline.run_brake(alarms.alarm_event("batch-spend-critical", AT))
    ledger.finish_transition(key, "someone-else")
    assert pipeline.run_brake(alarms.alarm_event("batch-spend-critical", AT)) == {
        "outcomes": ["duplicate"]
    }
    # A claim whose holder timed out long ago is taken over.
    later = AT + timedelta(hours=1)
    stale = "brake#alarm#batch-spend-critical#" + later.isoformat(timespec="milliseconds")
    assert ledger.claim_transition(stale, "someone-else", now - 3600, 360).state == "new"
    assert pipeline.run_brake(alarms.alarm_event("batch-spend-critical", later)) == {
        "outcomes": ["braked"]
    }


def test_a_brake_that_keeps_failing_is_taken_over_by_another_path(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = spot_jobs(world, 3)
    batch = brake.dependencies().batch_client
    down = {"on": True}

    def throttled(**_: Any) -> None:
        if down["on"]:
            raise EndpointConnectionError(endpoint_url="https://batch.us-east-1.amazonaws.com")

    batch.meta.events.register("before-call.batch.ListJobs", throttled)
    results = pipeline.run_brake_async(alarms.alarm_action("batch-spend-critical", AT))
    assert all(isinstance(r, str) for r in results)  # every attempt failed: the failure queue
    down["on"] = False
    # The same transition by EventBridge, after: the claim was given back, so it brakes.
    assert pipeline.run_brake(alarms.alarm_event("batch-spend-critical", AT)) == {
        "outcomes": ["braked"]
    }
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs)
    assert not lines(pipeline, "brake already applied")


def test_a_retry_re_sends_every_pick_even_when_newer_jobs_appeared(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = spot_jobs(world, 20)
    sqs = brake.dependencies().sqs_client
    calls = {"n": 0}

    def second_batch_fails(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", second_batch_fails)

    def newer_jobs_start() -> None:
        pipeline.run_terminator()
        now = datetime.now(UTC)
        for i in range(5):
            world.job(f"new-{i}", "spot-cpu", "RUNNING", age=timedelta(seconds=10 + i), now=now)

    results = pipeline.run_brake_async(
        alarms.alarm_event("batch-spend-critical", AT), between=newer_jobs_start
    )
    assert results[-1] == {"outcomes": ["braked"]}
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs[-12:])


def test_the_picks_of_a_huge_brake_fit_the_ledger() -> None:
    """Four policies of 10,000 jobs on one alarm: 40,000 picks, more than one 400 KB item."""
    import boto3
    from moto import mock_aws

    from batch_terminator.handlers.brake import job_hash
    from batch_terminator.ledger import Ledger
    from batch_terminator_cli.emulator.deployment import _create_ledger

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        table = _create_ledger(session, "ledger")
        ledger = Ledger(session.client("dynamodb"), table, 3600)
        picks = sorted(job_hash(f"job-{i}") for i in range(40_000))
        assert ledger.claim_transition("brake#k", "me", 0, 360).state == "new"
        ledger.record_transition_picks("brake#k", "me", picks)
        ledger.give_back_transition("brake#k", "me")
        taken = ledger.claim_transition("brake#k", "retry", 1, 360)
        assert taken.state == "ours"
        assert taken.picks is not None
        assert sorted(taken.picks.split()) == picks


def test_one_bad_sns_record_never_stops_the_others(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = spot_jobs(world, 2)
    good = alarms.sns_alarm("batch-spend-critical", AT)["Records"][0]
    bad = copy.deepcopy(good)
    message = json.loads(bad["Sns"]["Message"])
    message["StateChangeTime"] = "0001-01-01T00:00:00+14:00"  # before datetime.min in UTC
    bad["Sns"]["Message"] = json.dumps(message)
    assert pipeline.run_brake({"Records": [bad, good]}) == {"outcomes": ["ignored", "braked"]}
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs)
