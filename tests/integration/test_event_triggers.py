"""The event-driven paths end to end on the emulator: Batch events → deadline function →
EventBridge Scheduler → request queue → terminator; blocked queues; the cost-alarm brake by each
of its three entry shapes. No sweep runs in these tests."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from batch_terminator.contract import JobStatus
from batch_terminator.logic.deadlines import schedule_name
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox

EVENTS = Path(__file__).parents[1] / "events"
PROTECT = "batch-terminator:protect"
BLOCKED = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement is too high."

POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"], "maxRuntimeTag": True},
    "policies": [
        {
            "name": "quick-cap",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "2m"},
        },
        {
            "name": "stuck",
            "match": {"jobQueues": ["spot-cpu"]},
            "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "6h"},
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
            "name": "spend-brake",
            "trigger": {"alarms": ["batch-spend-critical"], "budgets": ["batch-monthly"]},
            "match": {"jobQueues": ["spot-cpu"]},
            "when": {"status": "RUNNING"},
            "order": "newest-first",
            "maxPerRun": 3,
        },
    ],
}


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(POLICIES)


def sample(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def schedules(box: Sandbox) -> dict[str, dict[str, Any]]:
    """Every schedule in the stack's group, by name, with its details."""
    client = box.session.client("scheduler")
    group = box.deployment.schedule_group
    names = [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]]
    return {n: client.get_schedule(Name=n, GroupName=group) for n in names}


def name_of(job_id: str, status: str, attempt: int, rule: str) -> str:
    return schedule_name(job_id, JobStatus(status), attempt, rule)


def at_of(schedule: dict[str, Any]) -> datetime:
    text = schedule["ScheduleExpression"]
    return datetime.strptime(text[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def stopped(control: BatchControl) -> dict[str, str]:
    return {event.job_id: event.reason for event in control.terminations()}


def lines(box: Sandbox, message: str) -> list[dict[str, Any]]:
    return [line for line in box.trigger_logs if line.get("message") == message]


# ---- deadlines ------------------------------------------------------------------------------


def test_a_two_minute_cap_is_enforced_by_its_schedule_with_no_sweep(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("train", "gpu-training", "RUNNING", age=timedelta(seconds=30))
    started = control.truth(job).entered_at
    assert started is not None
    pipeline.run_deadlines()
    [(name, schedule)] = schedules(pipeline).items()
    limit = started + timedelta(minutes=2)
    deadline = at_of(schedule)
    # The first whole minute past startedAt + 2 minutes: Scheduler may fire anywhere in the
    # minute its at() names, so a whole minute never fires before the limit.
    assert deadline.second == 0
    assert limit < deadline <= limit + timedelta(minutes=1)
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sqs:sendMessage"

    assert pipeline.fire_schedules() == []  # not due: nothing is sent early
    pipeline.run_terminator()
    assert job not in stopped(control)

    # The emulator's clock moves 10 s at a time; the schedule fires as soon as AWS may.
    fired: list[Any] = []
    moved = timedelta(0)
    while not fired:
        pipeline.advance(timedelta(seconds=10))
        moved += timedelta(seconds=10)
        fired = pipeline.fire_schedules()
        assert moved < timedelta(minutes=4)
    assert [f.name for f in fired] == [name]
    # On the job's clock (the emulator moved its past back by `moved`): never before the limit,
    # and at its at() minute (give or take the 10 s steps and the test's own running time).
    fired_on_job_clock = fired[0].fired_at + moved
    assert limit <= fired_on_job_clock
    assert fired_on_job_clock - deadline < timedelta(seconds=40)
    assert fired[0].outcome == "delivered"
    pipeline.run_terminator()
    assert stopped(control)[job] == "batch-terminator: policy quick-cap: RUNNING > 2m"
    line = pipeline.decision(job)
    assert (line["outcome"], line["source"], line["policy"]) == (
        "terminated",
        "deadline",
        "quick-cap",
    )
    assert schedules(pipeline) == {}  # it deleted itself after it ran

    # The job's FAILED event confirms the termination, once.
    control.settle()
    pipeline.run_deadlines()
    [confirmed] = lines(pipeline, "termination confirmed")
    assert confirmed["job_id"] == job
    assert 0 <= confirmed["seconds_to_stop"] < 60
    pipeline.run_deadlines()
    assert len(lines(pipeline, "termination confirmed")) == 1


def test_a_deadline_already_past_is_requested_at_once(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("train", "gpu-training", "RUNNING", age=timedelta(minutes=10))
    pipeline.run_deadlines()
    assert schedules(pipeline) == {}
    pipeline.run_terminator()
    assert pipeline.decision(job)["source"] == "deadline"
    assert job in stopped(control)


def test_a_job_that_moves_on_loses_its_schedule_and_a_stale_one_kills_nothing(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNABLE", age=timedelta(hours=1))
    pipeline.run_deadlines()
    assert len(schedules(pipeline)) == 1
    world.age(job, "RUNNING", timedelta(seconds=5))
    pipeline.run_deadlines()
    assert schedules(pipeline) == {}

    # A schedule whose deletion was missed fires into a terminator that judges it afresh.
    other = world.job("etl2", "spot-cpu", "RUNNABLE", age=timedelta(hours=1))
    pipeline.run_deadlines()
    control.publish_events(False)
    world.age(other, "RUNNING", timedelta(seconds=5))
    pipeline.advance(timedelta(hours=6))
    assert len(pipeline.fire_schedules()) == 1
    pipeline.run_terminator()
    assert other not in stopped(control)
    line = pipeline.decision(other)
    assert line["outcome"] == "skipped"
    assert "RUNNABLE" in line["skip_reason"]


def test_duplicate_and_out_of_order_events_make_one_schedule_of_the_current_state(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.duplicate_events(times=5, copies=2)
    job = world.job("etl", "spot-cpu", "RUNNABLE", age=timedelta(hours=1))
    pipeline.run_deadlines()
    assert list(schedules(pipeline)) == [name_of(job, "RUNNABLE", 0, "stuck")]
    # A late RUNNABLE event after the job started: judged on the job as it is now.
    late = world.job("late", "spot-cpu", "RUNNABLE", age=timedelta(hours=1))
    control.delay_events(times=1)
    world.age(late, "RUNNING", timedelta(seconds=5))
    control.release_events()
    pipeline.run_deadlines()
    assert name_of(late, "RUNNABLE", 0, "stuck") not in schedules(pipeline)


def test_a_retried_job_is_timed_again_from_its_new_attempt(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """Input D's kind on the deadline path: 7 hours ago it was created, its first attempt ran
    and was reclaimed 2 minutes ago; RUNNABLE for 2 minutes is far from a 6-hour limit."""
    job = world.job(
        "etl", "spot-cpu", "RUNNING", age=timedelta(hours=6, minutes=50), retry_attempts=3
    )
    control.retry(job, stopped_at=datetime.now(UTC) - timedelta(minutes=2))
    pipeline.run_deadlines()
    [(name, schedule)] = schedules(pipeline).items()
    assert name == name_of(job, "RUNNABLE", 1, "stuck")
    assert at_of(schedule) > datetime.now(UTC) + timedelta(hours=5, minutes=50)
    pipeline.run_terminator()
    assert job not in stopped(control)


def test_a_protected_job_gets_no_schedule(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job(
        "train", "gpu-training", "RUNNING", age=timedelta(seconds=30), tags={PROTECT: "1"}
    )
    pipeline.run_deadlines()
    assert schedules(pipeline) == {}
    pipeline.advance(timedelta(minutes=5))
    pipeline.run_deadlines()
    pipeline.run_terminator()
    assert job not in stopped(control)


def test_a_blocked_queue_event_is_acted_on_at_its_limit(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("big-mem", "spot-cpu", "RUNNABLE", age=timedelta(minutes=10))
    pipeline.run_deadlines()
    stuck = schedules(pipeline)[name_of(job, "RUNNABLE", 0, "stuck")]
    control.block(job, BLOCKED)
    pipeline.run_deadlines()
    # The blocked reason's 30-minute policy gets its own, earlier schedule; the 6-hour one stays
    # (if the reason clears before 30 minutes, the 6-hour limit still holds).
    both = schedules(pipeline)
    assert set(both) == {
        name_of(job, "RUNNABLE", 0, "stuck"),
        name_of(job, "RUNNABLE", 0, "misconfigured"),
    }
    assert at_of(both[name_of(job, "RUNNABLE", 0, "misconfigured")]) < at_of(stuck)
    pipeline.advance(timedelta(minutes=21))
    pipeline.fire_schedules()
    pipeline.run_terminator()
    line = pipeline.decision(job)
    assert (line["outcome"], line["source"], line["policy"]) == (
        "terminated",
        "blocked",
        "misconfigured",
    )
    assert line["status_reason_before"] == BLOCKED


def test_the_sweep_honours_status_reasons_too(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.publish_events(False)  # the sweep alone: the net for missed events
    blocked = world.job("big-mem", "spot-cpu", "RUNNABLE", age=timedelta(minutes=40))
    control.block(blocked, BLOCKED)
    waiting = world.job("small", "spot-cpu", "RUNNABLE", age=timedelta(minutes=40))
    pipeline.run_sweeper()
    pipeline.run_terminator()
    assert set(stopped(control)) == {blocked}
    assert pipeline.decision(blocked)["policy"] == "misconfigured"
    assert waiting not in stopped(control)


def test_junk_in_the_events_queue_never_fails_a_batch(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("train", "gpu-training", "RUNNING", age=timedelta(minutes=10))
    sqs = pipeline.sqs
    for body in (
        "{",
        "[]",
        json.dumps({"source": "aws.batch"}),
        json.dumps(sample("cloudwatch-alarm-state-change.eventbridge.json")),
    ):
        sqs.send_message(QueueUrl=pipeline.deployment.events_queue_url, MessageBody=body)
    invocations = pipeline.run_deadlines()
    assert all(not i.response["batchItemFailures"] for i in invocations)
    assert (
        len([line for line in lines(pipeline, "deadline event") if line["outcome"] == "ignored"])
        == 4
    )
    pipeline.run_terminator()
    assert job in stopped(control)


# ---- the brake ------------------------------------------------------------------------------


def _brake_world(world: BatchWorld) -> list[str]:
    """Five RUNNING jobs on spot-cpu, created a minute apart (the last is the newest)."""
    now = datetime.now(UTC)
    return [
        world.job(f"spot-{i}", "spot-cpu", "RUNNING", age=timedelta(minutes=30 - i), now=now)
        for i in range(5)
    ]


def _alarm_shapes(at: str) -> list[Any]:
    bridge = sample("cloudwatch-alarm-state-change.eventbridge.json")
    bridge["detail"]["state"]["timestamp"] = at
    action = sample("cloudwatch-alarm.lambda-action.json")
    action["alarmData"]["state"]["timestamp"] = at
    envelope = sample("cloudwatch-alarm.sns-envelope.json")
    message = json.loads(envelope["Message"])
    message["StateChangeTime"] = at
    envelope["Message"] = json.dumps(message)
    return [bridge, action, {"Records": [{"EventSource": "aws:sns", "Sns": envelope}]}]


@pytest.mark.parametrize("path", [0, 1, 2], ids=["eventbridge", "alarm-action", "sns"])
def test_an_alarm_brakes_in_order_up_to_its_cap_once_by_every_path(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl, path: int
) -> None:
    jobs = _brake_world(world)
    shapes = _alarm_shapes("2026-11-29T08:10:00.000+0000")
    pipeline.run_brake(shapes[path])
    pipeline.run_terminator()
    newest_three = set(jobs[2:])
    assert set(stopped(control)) == newest_three
    assert {pipeline.decision(j)["source"] for j in newest_three} == {"alarm"}
    # The same transition again, by every path: no second brake.
    for shape in shapes:
        pipeline.run_brake(copy.deepcopy(shape))
    pipeline.run_terminator()
    assert set(stopped(control)) == newest_three
    assert len(lines(pipeline, "brake applied")) == 1
    assert len(lines(pipeline, "brake already applied")) == 3
    # OK, then a new ALARM: a new transition brakes again (the two jobs left).
    ok = _alarm_shapes("2026-11-29T09:00:00.000+0000")[0]
    ok["detail"]["state"]["value"] = "OK"
    pipeline.run_brake(ok)
    pipeline.run_brake(_alarm_shapes("2026-11-29T10:00:00.000+0000")[path])
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs)


def test_the_alarm_rule_routes_the_eventbridge_event_to_the_brake(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = _brake_world(world)
    event = sample("cloudwatch-alarm-state-change.eventbridge.json")
    other = copy.deepcopy(event)
    other["detail"]["alarmName"] = "unrelated-alarm"
    entries = [
        {
            "Source": e["source"],
            "DetailType": e["detail-type"],
            "Detail": json.dumps(e["detail"]),
            "Resources": e["resources"],
        }
        for e in (event, other)
    ]
    pipeline.session.client("events").put_events(Entries=entries)
    assert [m["detail"]["alarmName"] for m in pipeline.alarm_messages()] == ["batch-spend-critical"]
    pipeline.run_alarm_inbox()
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs[2:])


def test_a_budgets_alert_brakes_only_the_budget_it_names(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = _brake_world(world)
    alert = sample("budgets-notification.lambda-sns-event.json")
    unnamed = copy.deepcopy(alert)
    sns = unnamed["Records"][0]["Sns"]
    sns["Message"] = sns["Message"].replace("batch-monthly", "marketing-monthly")
    pipeline.run_brake(unnamed)
    pipeline.run_terminator()
    assert stopped(control) == {}
    [ignored] = lines(pipeline, "brake event ignored")
    assert "marketing-monthly" in ignored["why"]
    pipeline.run_brake(alert)
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs[2:])


def test_malformed_brake_events_get_one_line_each_and_brake_nothing(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    _brake_world(world)
    junk: list[Any] = [None, [], {}, {"Records": [{}]}, {"detail-type": "x"}, "ALARM"]
    for event in junk:
        pipeline.run_brake(event)
    assert len(lines(pipeline, "brake event ignored")) == len(junk)
    pipeline.run_terminator()
    assert stopped(control) == {}
