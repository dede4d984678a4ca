"""The emulator is event-driven: Batch publishes its events to EventBridge, whose rules route them
by the stack's patterns; EventBridge Scheduler fires one-time schedules into their targets; and
the emulator's clock lets time pass without sleeping.

Each test names the behaviour of the real services it holds the emulator to (see
batch_terminator_cli/emulator/batch_events.py, scheduler.py and clock.py for the sources).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import boto3
import pytest
from botocore.exceptions import ClientError

from batch_terminator.contract import (
    REQUEST_QUEUE_ARN_ENV,
    SCHEDULE_DLQ_ARN_ENV,
    SCHEDULE_GROUP_ENV,
    SCHEDULER_ROLE_ARN_ENV,
    SCHEDULER_SQS_SEND_TARGET,
)
from batch_terminator.logic.event_patterns import (
    alarm_state_change_pattern,
    job_queue_blocked_pattern,
    job_state_change_pattern,
)
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl, Behaviour
from batch_terminator_cli.emulator.scheduler import fire_due, next_due
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.local_server import LocalServer
from batch_terminator_cli.sandbox import Sandbox

EVENTS = Path(__file__).parents[1] / "events"
REASON = "batch-terminator: test"
BLOCKED = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) "
    "is higher than that can be met by the CE(s) attached to the job queue."
)
ALARM = "batch-spend-critical"
POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"]},
    "policies": [
        {
            "name": "spend-brake",
            "trigger": {"alarms": [ALARM]},
            "match": {"jobQueues": ["spot-cpu"]},
            "when": {"status": ["RUNNABLE", "RUNNING"]},
            "maxPerRun": 10,
        }
    ],
}


@pytest.fixture
def policies() -> PoliciesFile:
    """Only RUNNING is limited (the max-runtime tag), on two queues; one policy brakes on an
    alarm."""
    return PoliciesFile.model_validate(POLICIES)


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text(encoding="utf-8")))


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def published(control: BatchControl, detail_type: str = "Batch Job State Change") -> list[Any]:
    return [e for e in control.published_events() if e["detail-type"] == detail_type]


def statuses(control: BatchControl) -> list[tuple[str, str]]:
    return [(e["detail"]["jobId"], e["detail"]["status"]) for e in published(control)]


# -- Batch Job State Change --------------------------------------------------------------------
def test_a_state_change_event_has_the_samples_fields_and_describe_jobs_detail(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.configure(Behaviour.kind())
    job_id = world.job("train-a", "gpu-training", "RUNNING", tags={"team": "ml"}, retry_attempts=1)

    [event] = control.published_events()
    described = world.describe(job_id)
    real = sample("batch-job-state-change.json")
    assert set(event) == set(real)
    assert set(real["detail"]) - {"statusReason", "stoppedAt"} <= set(event["detail"])
    assert event["version"] == "0"
    assert (event["source"], event["detail-type"]) == ("aws.batch", "Batch Job State Change")
    assert (event["account"], event["region"]) == (
        pipeline.deployment.account_id,
        pipeline.deployment.region,
    )
    assert event["resources"] == [described["jobArn"]]
    # detail is DescribeJobs' JobDetail, except tags: they hold the job's ARN, never its tags.
    assert event["detail"]["tags"] == {"resourceArn": described["jobArn"]}
    assert {k: v for k, v in event["detail"].items() if k != "tags"} == {
        k: v for k, v in described.items() if k != "tags"
    }
    assert described["tags"] == {"team": "ml"}
    # time: when the job entered RUNNING, ISO 8601 UTC to the second.
    started = datetime.fromtimestamp(described["startedAt"] / 1000, UTC)
    assert event["time"] == started.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_no_event_for_the_initial_submission(world: BatchWorld, control: BatchControl) -> None:
    world.queue("spot-cpu")
    world.definition("train-bert")
    world.batch.submit_job(jobName="a", jobQueue="spot-cpu", jobDefinition="train-bert")
    world.batch.submit_job(
        jobName="b", jobQueue="spot-cpu", jobDefinition="train-bert", arrayProperties={"size": 3}
    )

    assert control.published_events() == []


def test_a_job_staged_with_a_past_publishes_one_event_for_where_it_ends(
    world: BatchWorld, control: BatchControl
) -> None:
    running = world.job("running", "spot-cpu", "RUNNING", age=timedelta(hours=3))
    retried = world.retried_job(
        "retried",
        "spot-cpu",
        created_ago=timedelta(hours=2),
        first_attempt_ran=timedelta(minutes=30),
        reclaimed_ago=timedelta(minutes=10),
    )
    queued = world.job("queued", "spot-cpu", "RUNNABLE")
    world.queue("gpu-training")
    world.definition("train-bert")
    seeded = control.add_jobs(
        "gpu-training",
        "train-bert",
        [
            ("s1", "SUCCEEDED", datetime.now(UTC), None),
            ("s2", "SUBMITTED", datetime.now(UTC), None),
        ],
    )

    assert statuses(control) == [
        (running, "RUNNING"),
        (retried, "RUNNABLE"),
        (queued, "RUNNABLE"),
        (seeded[0], "SUCCEEDED"),
    ]
    [retried_event] = [e for e in published(control) if e["detail"]["jobId"] == retried]
    assert len(retried_event["detail"]["attempts"]) == 1


def test_live_transitions_publish_one_event_each(world: BatchWorld, control: BatchControl) -> None:
    job_id = world.job("a", "spot-cpu", "RUNNABLE", retry_attempts=2)
    control.set_state(job_id, "STARTING")
    control.set_state(job_id, "RUNNING")
    control.retry(job_id)
    control.set_state(job_id, "STARTING")
    control.set_state(job_id, "RUNNING")
    control.set_state(job_id, "SUCCEEDED")

    assert [status for _, status in statuses(control)] == [
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
    ]


def test_a_termination_publishes_failed_when_it_lands_not_when_it_is_accepted(
    world: BatchWorld, control: BatchControl
) -> None:
    job_id = world.job("a", "spot-cpu", "RUNNING")
    world.batch.terminate_jobs(jobs=[job_id], reason=REASON)

    # Batch only asked ECS to stop the container: the job is still RUNNING (Behaviour).
    assert statuses(control) == [(job_id, "RUNNING")]

    landed = control.settle()

    assert landed == [job_id]
    assert statuses(control) == [(job_id, "RUNNING"), (job_id, "FAILED")]
    failed = published(control)[-1]
    assert failed["detail"]["statusReason"] == REASON
    assert failed["detail"]["isTerminated"] is True


def test_array_parents_and_multi_node_jobs_publish_as_their_status_follows(
    world: BatchWorld, control: BatchControl
) -> None:
    control.configure(Behaviour.kind())
    parent = world.job("render", "spot-cpu", "RUNNING", array_size=2)
    mnp = world.multinode_job("mpi", "spot-cpu", "RUNNING", nodes=2)
    # Staged: each child and node once; the parent stays PENDING (no change), the MNP job runs.
    assert sorted(statuses(control)) == sorted(
        [
            (f"{parent}:0", "RUNNING"),
            (f"{parent}:1", "RUNNING"),
            (f"{mnp}#0", "RUNNING"),
            (f"{mnp}#1", "RUNNING"),
            (mnp, "RUNNING"),
        ]
    )
    before = len(published(control))

    control.set_state(f"{parent}:0", "SUCCEEDED")
    control.set_state(f"{parent}:1", "SUCCEEDED")
    world.batch.terminate_job(jobId=mnp, reason=REASON)  # lands at once (kind)

    assert statuses(control)[before:] == [
        (f"{parent}:0", "SUCCEEDED"),
        (f"{parent}:1", "SUCCEEDED"),
        (parent, "SUCCEEDED"),
        (f"{mnp}#1", "FAILED"),
        (f"{mnp}#0", "FAILED"),
        (mnp, "FAILED"),
    ]


def test_events_reach_the_events_queue_by_the_deployments_patterns(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    running = world.job("running", "spot-cpu", "RUNNING")
    world.job("queued", "spot-cpu", "RUNNABLE")  # no policy limits RUNNABLE
    world.job("elsewhere", "other-queue", "RUNNING")  # not an allowed queue
    finished = world.job("done", "gpu-training", "SUCCEEDED")  # final: always
    assert len(control.published_events()) == 4

    delivered = pipeline.event_messages()

    assert [(e["detail"]["jobId"], e["detail"]["status"]) for e in delivered] == [
        (running, "RUNNING"),
        (finished, "SUCCEEDED"),
    ]
    by_id = {e["id"]: e for e in control.published_events()}
    for event in delivered:
        assert event == by_id[event["id"]]  # the envelope, whole, as EventBridge delivers it


def test_a_disabled_rule_matches_no_event(pipeline: Sandbox, world: BatchWorld) -> None:
    # "a rule that's disabled doesn't match any events" (EventBridge user guide)
    pipeline.session.client("events").disable_rule(Name=pipeline.deployment.job_state_change_rule)
    world.job("running", "spot-cpu", "RUNNING")

    assert pipeline.event_messages() == []


def test_publishing_can_be_switched_off(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.publish_events(False)
    world.job("running", "spot-cpu", "RUNNING")
    control.add_jobs("spot-cpu", "train-bert", [("b", "RUNNING", datetime.now(UTC), None)])

    assert control.published_events() == []
    assert pipeline.event_messages() == []


def test_duplicated_events_arrive_twice_with_one_id(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.duplicate_events(times=1)
    world.job("a", "spot-cpu", "RUNNING")
    world.job("b", "spot-cpu", "RUNNING")

    ids = [e["id"] for e in pipeline.event_messages()]

    assert len(control.published_events()) == 2
    assert len(ids) == 3
    assert ids[0] == ids[1] != ids[2]


def test_delayed_events_arrive_out_of_order(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.delay_events(times=1)
    first = world.job("first", "spot-cpu", "RUNNING")
    assert pipeline.event_messages() == []  # held back
    second = world.job("second", "spot-cpu", "RUNNING")

    assert [e["detail"]["jobId"] for e in pipeline.event_messages()] == [second, first]


# -- Batch Job Queue Blocked -------------------------------------------------------------------
def test_a_blocked_job_shows_its_reason_and_publishes_the_blocked_event(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.configure(Behaviour.kind())
    job_id = world.job("big-mem", "spot-cpu", "RUNNABLE", status_reason=BLOCKED, retry_attempts=2)

    change, blocked = control.published_events()
    real = sample("batch-job-queue-blocked.json")
    described = world.describe(job_id)
    assert change["detail-type"] == "Batch Job State Change"
    assert "statusReason" not in change["detail"]  # it entered RUNNABLE, then blocked the queue
    assert set(blocked) == set(real)
    assert set(real["detail"]) <= set(blocked["detail"])
    assert (blocked["source"], blocked["detail-type"]) == ("aws.batch", "Batch Job Queue Blocked")
    assert blocked["resources"] == [described["jobArn"], described["jobQueue"]]
    assert blocked["detail"]["status"] == "RUNNABLE"
    assert blocked["detail"]["statusReason"] == BLOCKED
    assert blocked["detail"]["tags"] == {"resourceArn": described["jobArn"]}
    assert described["statusReason"] == BLOCKED
    [summary] = world.batch.list_jobs(jobQueue="spot-cpu", jobStatus="RUNNABLE")["jobSummaryList"]
    assert summary["statusReason"] == BLOCKED
    # The blocked pattern routes it to the events queue, after the (unlimited) RUNNABLE change.
    assert [e["detail-type"] for e in pipeline.event_messages()] == ["Batch Job Queue Blocked"]

    control.set_state(job_id, "STARTING")  # capacity arrived: the reason no longer applies
    assert "statusReason" not in world.describe(job_id)


def test_only_runnable_jobs_block_a_queue(world: BatchWorld, control: BatchControl) -> None:
    job_id = world.job("a", "spot-cpu", "RUNNING")
    with pytest.raises(ValueError, match="RUNNABLE"):
        control.block(job_id, BLOCKED)
    with pytest.raises(ValueError, match="RUNNABLE"):
        world.job("b", "spot-cpu", "RUNNING", status_reason=BLOCKED)
    assert published(control, "Batch Job Queue Blocked") == []


# -- the deployment ----------------------------------------------------------------------------
def test_the_deployment_creates_the_trigger_pieces_with_the_policies_patterns(
    pipeline: Sandbox, policies: PoliciesFile
) -> None:
    deployment = pipeline.deployment
    session = pipeline.session
    events = session.client("events")
    rules = {
        deployment.job_state_change_rule: job_state_change_pattern(policies),
        deployment.job_queue_blocked_rule: job_queue_blocked_pattern(policies),
        str(deployment.alarm_rule): alarm_state_change_pattern(policies),
    }
    for name, pattern in rules.items():
        assert json.loads(events.describe_rule(Name=name)["EventPattern"]) == pattern
    [target] = events.list_targets_by_rule(Rule=deployment.job_state_change_rule)["Targets"]
    assert target["Arn"] == deployment.events_queue_arn
    redrive = pipeline.sqs.get_queue_attributes(
        QueueUrl=deployment.events_queue_url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    assert json.loads(redrive)["deadLetterTargetArn"].endswith(
        deployment.events_dlq_url.rsplit("/", 1)[-1]
    )
    scheduler = session.client("scheduler")
    assert scheduler.get_schedule_group(Name=deployment.schedule_group)["State"] == "ACTIVE"
    role = session.client("iam").get_role(RoleName=deployment.scheduler_role_arn.split("/")[-1])
    [statement] = role["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    environment = deployment.function_environment()
    assert environment[REQUEST_QUEUE_ARN_ENV] == deployment.request_queue_arn
    assert environment[SCHEDULE_GROUP_ENV] == deployment.schedule_group
    assert environment[SCHEDULER_ROLE_ARN_ENV] == deployment.scheduler_role_arn
    assert environment[SCHEDULE_DLQ_ARN_ENV] == deployment.schedule_dlq_arn


# -- the alarm inbox ---------------------------------------------------------------------------
def test_alarm_events_into_alarm_reach_the_alarm_inbox(pipeline: Sandbox) -> None:
    events = pipeline.session.client("events")
    alarm = sample("cloudwatch-alarm-state-change.eventbridge.json")
    alarm["detail"]["alarmName"] = ALARM
    ok = json.loads(json.dumps(alarm))
    ok["detail"]["state"]["value"] = "OK"
    other = json.loads(json.dumps(alarm))
    other["detail"]["alarmName"] = "someone-elses-alarm"
    for event in (alarm, ok, other):
        events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                }
            ]
        )

    [delivered] = pipeline.alarm_messages()
    assert delivered["detail"] == alarm["detail"]
    assert pipeline.deployment.alarm_rule is not None


# -- EventBridge Scheduler ---------------------------------------------------------------------
def at(moment: datetime) -> str:
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


def schedule(
    pipeline: Sandbox,
    name: str,
    when: datetime,
    *,
    action: str = "DELETE",
    target: dict[str, Any] | None = None,
    timezone: str = "UTC",
    state: str = "ENABLED",
) -> dict[str, Any]:
    deployment = pipeline.deployment
    parameters = {
        "QueueUrl": deployment.request_queue_url,
        "MessageBody": json.dumps({"jobId": name, "reason": REASON}),
        "MessageAttributes": {"source": {"DataType": "String", "StringValue": "deadline"}},
    }
    chosen = target or {
        "Arn": SCHEDULER_SQS_SEND_TARGET,
        "RoleArn": deployment.scheduler_role_arn,
        "Input": json.dumps(parameters),
        "DeadLetterConfig": {"Arn": deployment.schedule_dlq_arn},
    }
    pipeline.session.client("scheduler").create_schedule(
        Name=name,
        GroupName=deployment.schedule_group,
        ScheduleExpression=at(when),
        ScheduleExpressionTimezone=timezone,
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion=action,
        State=state,
        Target=chosen,
    )
    return chosen


def requests_queued(pipeline: Sandbox) -> list[str]:
    return pipeline.queue_bodies(pipeline.deployment.request_queue_url)


def get_schedule(pipeline: Sandbox, name: str) -> dict[str, Any]:
    client = pipeline.session.client("scheduler")
    return dict(client.get_schedule(Name=name, GroupName=pipeline.deployment.schedule_group))


def test_a_schedule_never_fires_before_its_time_then_once_and_is_deleted(
    pipeline: Sandbox,
) -> None:
    due = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    schedule(pipeline, "job-1-RUNNING-0", due)

    assert next_due(pipeline.session) == due
    assert pipeline.fire_schedules() == []
    assert pipeline.fire_schedules(due - timedelta(seconds=1)) == []
    assert requests_queued(pipeline) == []

    [firing] = pipeline.fire_schedules(due)

    assert (firing.outcome, firing.attempts, firing.deleted) == ("delivered", 1, True)
    assert firing.scheduled_time == due
    assert requests_queued(pipeline) == [json.dumps({"jobId": "job-1-RUNNING-0", "reason": REASON})]
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        get_schedule(pipeline, "job-1-RUNNING-0")
    assert pipeline.fire_schedules(due + timedelta(hours=1)) == []
    assert next_due(pipeline.session) is None


def test_a_schedule_kept_after_completion_never_fires_again(pipeline: Sandbox) -> None:
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    schedule(pipeline, "kept", due, action="NONE")

    assert [f.outcome for f in pipeline.fire_schedules()] == ["delivered"]
    assert pipeline.fire_schedules() == []
    assert pipeline.fire_schedules(due + timedelta(days=1)) == []
    assert get_schedule(pipeline, "kept")["ActionAfterCompletion"] == "NONE"
    assert len(requests_queued(pipeline)) == 1


def test_disabled_schedules_do_not_fire(pipeline: Sandbox) -> None:
    schedule(pipeline, "off", datetime.now(UTC) - timedelta(minutes=1), state="DISABLED")

    assert pipeline.fire_schedules() == []
    assert next_due(pipeline.session) is None


def test_the_universal_target_sends_the_message_attributes_of_its_input(
    pipeline: Sandbox,
) -> None:
    schedule(pipeline, "attrs", datetime.now(UTC) - timedelta(seconds=1))
    pipeline.fire_schedules()

    [message] = pipeline.sqs.receive_message(
        QueueUrl=pipeline.deployment.request_queue_url, MessageAttributeNames=["All"]
    )["Messages"]
    assert message["MessageAttributes"] == {
        "source": {"DataType": "String", "StringValue": "deadline"}
    }
    assert json.loads(message["Body"]) == {"jobId": "attrs", "reason": REASON}


def test_a_templated_sqs_target_sends_its_input_as_the_body(pipeline: Sandbox) -> None:
    target = {
        "Arn": pipeline.deployment.request_queue_arn,
        "RoleArn": pipeline.deployment.scheduler_role_arn,
        "Input": '{"jobId": "templated", "reason": "r"}',
    }
    schedule(pipeline, "templated", datetime.now(UTC) - timedelta(seconds=1), target=target)

    [firing] = pipeline.fire_schedules()

    assert firing.outcome == "delivered"
    assert requests_queued(pipeline) == [target["Input"]]


def test_a_target_that_fails_for_good_goes_to_the_dlq_at_once(pipeline: Sandbox) -> None:
    deployment = pipeline.deployment
    missing = deployment.request_queue_url.rsplit("/", 1)[0] + "/does-not-exist"
    target = {
        "Arn": SCHEDULER_SQS_SEND_TARGET,
        "RoleArn": deployment.scheduler_role_arn,
        "Input": json.dumps({"QueueUrl": missing, "MessageBody": "hello"}),
        "RetryPolicy": {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 60},
        "DeadLetterConfig": {"Arn": deployment.schedule_dlq_arn},
    }
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    schedule(pipeline, "lost", due, target=target)

    [firing] = pipeline.fire_schedules()

    assert (firing.outcome, firing.attempts, firing.deleted) == ("dead-lettered", 1, True)
    [dead] = pipeline.sqs.receive_message(
        QueueUrl=deployment.schedule_dlq_url, MessageAttributeNames=["All"]
    )["Messages"]
    assert dead["Body"] == target["Input"]
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == firing.error_code
    assert attributes["ERROR_CODE"]
    assert attributes["RETRY_ATTEMPTS"] == "0"
    assert attributes["SCHEDULE_ARN"].endswith(f":schedule/{deployment.schedule_group}/lost")
    assert attributes["TARGET_ARN"] == SCHEDULER_SQS_SEND_TARGET
    assert attributes["SCHEDULED_TIME"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {"ERROR_MESSAGE", "EXECUTION_ID", "IS_PAYLOAD_TRUNCATED"} <= set(attributes)
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes  # a permanent error


def test_a_throttled_target_is_retried_per_its_policy_then_dead_lettered(
    pipeline: Sandbox, control: BatchControl
) -> None:
    deployment = pipeline.deployment
    target = schedule(pipeline, "retried", datetime.now(UTC) - timedelta(seconds=1))
    control.fail_schedule_targets(times=2)  # 185 retries by default: the third attempt goes

    [retried] = pipeline.fire_schedules()

    assert (retried.outcome, retried.attempts) == ("delivered", 3)
    target = {**target, "RetryPolicy": {"MaximumRetryAttempts": 2}}
    schedule(pipeline, "exhausted", datetime.now(UTC), target=target)
    control.fail_schedule_targets(times=3)

    [exhausted] = pipeline.fire_schedules()

    assert (exhausted.outcome, exhausted.attempts) == ("dead-lettered", 3)
    [dead] = pipeline.sqs.receive_message(
        QueueUrl=deployment.schedule_dlq_url, MessageAttributeNames=["All"]
    )["Messages"]
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "ThrottlingException"
    assert attributes["RETRY_ATTEMPTS"] == "2"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert len(requests_queued(pipeline)) == 1


def test_at_times_are_read_in_the_schedules_timezone(pipeline: Sandbox) -> None:
    try:
        zone = ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:
        pytest.skip("no time zone database")
    local = datetime(2030, 1, 15, 12, 0, tzinfo=zone)  # 11:00 UTC (CET, UTC+1)
    schedule(pipeline, "paris", local.replace(tzinfo=None), timezone="Europe/Paris")

    assert next_due(pipeline.session) == datetime(2030, 1, 15, 11, 0, tzinfo=UTC)
    assert pipeline.fire_schedules(datetime(2030, 1, 15, 10, 59, 59, tzinfo=UTC)) == []
    assert len(pipeline.fire_schedules(datetime(2030, 1, 15, 11, 0, tzinfo=UTC))) == 1


def test_moto_scheduler_keeps_and_checks_what_the_api_does(pipeline: Sandbox) -> None:
    client = pipeline.session.client("scheduler")
    group = pipeline.deployment.schedule_group
    common = {
        "ScheduleExpression": "at(2030-01-01T00:00:00)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": pipeline.deployment.request_queue_arn, "RoleArn": "arn:r"},
    }
    client.create_schedule(Name="a", GroupName=group, ActionAfterCompletion="DELETE", **common)
    client.update_schedule(Name="a", GroupName=group, ActionAfterCompletion="DELETE", **common)
    assert get_schedule(pipeline, "a")["ActionAfterCompletion"] == "DELETE"

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.create_schedule(Name="b", GroupName="no-such-group", **common)
    with pytest.raises(ClientError, match="ValidationException"):
        client.create_schedule(Name="x" * 65, GroupName=group, **common)
    with pytest.raises(ClientError, match="ValidationException"):
        client.create_schedule(
            Name="c", GroupName=group, **{**common, "ScheduleExpression": "at(tomorrow)"}
        )


# -- the clock ---------------------------------------------------------------------------------
def test_advance_ages_jobs_and_brings_schedules_due(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    control.configure(Behaviour.kind())
    job_id = world.job("a", "spot-cpu", "RUNNING", age=timedelta(minutes=5))
    world.batch.terminate_job(jobId=world.job("b", "spot-cpu", "RUNNING"), reason=REASON)
    before = world.describe(job_id)
    history = control.history(job_id)
    stopped = control.terminations()[0].at
    due = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    schedule(pipeline, "later", due)

    pipeline.advance(timedelta(hours=2))

    after = world.describe(job_id)
    hours = 2 * 3600 * 1000
    assert after["startedAt"] == before["startedAt"] - hours
    assert after["createdAt"] == before["createdAt"] - hours
    assert [e.entered_at for e in control.history(job_id)] == [
        e.entered_at - timedelta(hours=2) for e in history
    ]
    assert control.terminations()[0].at == stopped - timedelta(hours=2)
    moved = next_due(pipeline.session)
    assert moved == due - timedelta(hours=2)
    assert moved is not None
    assert moved <= datetime.now(UTC)
    assert [f.name for f in pipeline.fire_schedules()] == ["later"]
    with pytest.raises(ValueError, match="forward"):
        control.advance(timedelta(seconds=-1))


# -- `local` fires schedules -------------------------------------------------------------------
@pytest.fixture
def local(
    tmp_path: Path, policies: PoliciesFile, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalServer]:
    monkeypatch.setattr("batch_terminator_cli.local_server.SCHEDULE_SECONDS", 0.2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = LocalServer(policies, port=port, poll_seconds=0.1, sweep_seconds=0)
    server.start(str(tmp_path))
    try:
        yield server
    finally:
        server.stop()


def test_local_fires_due_schedules_in_the_background(local: LocalServer) -> None:
    deployment = local.deployment
    assert deployment is not None
    session = boto3.Session(region_name="us-east-1")
    queue_url = session.client("sqs").create_queue(QueueName="fired")["QueueUrl"]
    session.client("scheduler").create_schedule(
        Name="soon",
        GroupName=deployment.schedule_group,
        ScheduleExpression=at(datetime.now(UTC) - timedelta(seconds=1)),
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": SCHEDULER_SQS_SEND_TARGET,
            "RoleArn": deployment.scheduler_role_arn,
            "Input": json.dumps({"QueueUrl": queue_url, "MessageBody": "fired"}),
        },
    )

    deadline = time.monotonic() + 10
    bodies: list[str] = []
    while not bodies and time.monotonic() < deadline:
        got = session.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)
        bodies = [m["Body"] for m in got.get("Messages", [])]
    assert bodies == ["fired"]
    assert fire_due(session) == []


def test_a_schedule_may_fire_from_the_start_of_its_minute_as_aws_allows(
    pipeline: Sandbox,
) -> None:
    """Scheduler invokes "with 60 second precision": at(…:30) may run at …:00."""
    minute = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    schedule(pipeline, "mid-minute", minute + timedelta(seconds=30))
    assert pipeline.fire_schedules(minute - timedelta(seconds=1)) == []
    [firing] = pipeline.fire_schedules(minute)
    assert firing.scheduled_time == minute + timedelta(seconds=30)
    assert firing.fired_at < firing.scheduled_time
