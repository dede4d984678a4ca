"""The pause switch on the emulator: while paused, the sweep and the brake do not run and the
terminator skips what a policy path sent (`skip_reason: paused`); people's requests still
terminate; after `resume` the next sweep acts. An unreadable switch stops the policy paths and
never a person's request."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batch_terminator.handlers import brake, sweeper, terminator
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.pausing import PAUSE_KEY, read_pause
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.lambda_runtime import LambdaContext, capture_logs
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox
from tests.integration.test_event_triggers import POLICIES as TRIGGER_POLICIES
from tests.integration.test_event_triggers import _alarm_shapes, _brake_world, stopped

POLICIES: dict[str, Any] = {
    **TRIGGER_POLICIES,
    "policies": [
        *TRIGGER_POLICIES["policies"],
        {
            "name": "runaway",
            "match": {"jobQueues": ["gpu-training"], "jobNames": ["sweep-*"]},
            "when": {"status": "RUNNING", "olderThan": "1h"},
        },
    ],
}


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(POLICIES)


def lines(box: Sandbox, message: str) -> list[dict[str, Any]]:
    return [
        line for line in [*box.sweeper_logs, *box.trigger_logs] if line.get("message") == message
    ]


def transition_items(box: Sandbox) -> list[str]:
    table = box.session.client("dynamodb")
    items = table.scan(TableName=box.deployment.ledger_table)["Items"]
    return [i["pk"]["S"] for i in items if i["pk"]["S"].startswith("brake#")]


def test_paused_sweep_sends_nothing_and_the_next_sweep_after_resume_acts(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("sweep-train", "gpu-training", "RUNNING", age=timedelta(hours=3))
    pipeline.pause("incident 42", paused_by="alice")

    summary = pipeline.run_sweeper()

    assert summary["message"] == "paused"
    assert (summary["paused"], summary["paused_by"], summary["pause_reason"]) == (
        True,
        "alice",
        "incident 42",
    )
    assert pipeline.queued() == 0
    assert not [line for line in pipeline.sweeper_logs if line.get("message") == "policy run"]
    pipeline.run_terminator()
    assert job not in stopped(control)

    assert pipeline.resume() is True
    assert pipeline.resume() is False  # nothing left to resume
    summary = pipeline.run_sweeper()
    assert summary["message"] == "policy run"
    pipeline.run_terminator()
    assert job in stopped(control)
    assert pipeline.outcome(job) == "terminated"


def test_paused_terminator_skips_policy_requests_and_still_serves_people(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    swept, scheduled, named, by_hand = (
        world.job(f"sweep-{i}", "gpu-training", "RUNNING", age=timedelta(hours=3)) for i in range(4)
    )
    # Requests the sweep, a deadline schedule and a policy sender queued before the pause.
    pipeline.send({"jobIds": [swept], "reason": "runaway", "policy": "runaway"}, source="sweep")
    pipeline.send({"jobId": scheduled, "reason": "deadline", "policy": "quick-cap"}, "deadline")
    pipeline.send({"jobId": named, "reason": "policy key alone", "policy": "runaway"})
    pipeline.send({"jobId": by_hand, "reason": "stop it, by hand", "requestedBy": "bob"})
    pipeline.pause("maintenance")

    invocations = pipeline.run_terminator()

    assert all(not i.response["batchItemFailures"] for i in invocations)
    for job in (swept, scheduled, named):
        line = pipeline.decision(job)
        assert (line["outcome"], line["skip_reason"]) == ("skipped", "paused")
        assert job not in stopped(control)
    assert pipeline.outcome(by_hand) == "terminated"
    assert set(stopped(control)) == {by_hand}


def test_a_deadline_keeps_its_schedule_while_paused_and_what_fires_is_skipped(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("train", "gpu-training", "RUNNING", age=timedelta(seconds=30))
    pipeline.pause("freeze")

    pipeline.run_deadlines()  # the deadline function keeps scheduling while paused
    scheduled = pipeline.session.client("scheduler").list_schedules(
        GroupName=pipeline.deployment.schedule_group
    )["Schedules"]
    assert len(scheduled) == 1
    pipeline.advance(timedelta(minutes=4))
    assert len(pipeline.fire_schedules()) == 1
    pipeline.run_terminator()

    line = pipeline.decision(job)
    assert (line["outcome"], line["source"], line["skip_reason"]) == (
        "skipped",
        "deadline",
        "paused",
    )
    assert job not in stopped(control)
    # After resume the next sweep judges the job again; the deadline policy is a sweep policy.
    pipeline.resume()
    pipeline.run_sweeper()
    pipeline.run_terminator()
    assert pipeline.outcome(job) == "terminated"


def test_paused_brake_takes_no_claim_and_brakes_after_resume(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = _brake_world(world)
    shapes = _alarm_shapes("2026-11-29T08:10:00.000+0000")
    pipeline.pause("game day")

    result = pipeline.run_brake(copy.deepcopy(shapes[0]))

    assert result["paused"] is True
    assert result["outcomes"] == []
    assert len(lines(pipeline, "paused")) == 1
    assert transition_items(pipeline) == []
    assert pipeline.queued() == 0

    pipeline.resume()
    assert pipeline.run_brake(copy.deepcopy(shapes[1]))["outcomes"] == ["braked"]
    pipeline.run_terminator()
    assert set(stopped(control)) == set(jobs[2:])


class PauseUnreadable:
    """The ledger table's client, failing to read the pause switch (and only that)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_item(self, **kwargs: Any) -> Any:
        if kwargs.get("Key") == {"pk": {"S": PAUSE_KEY}}:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                "GetItem",
            )
        return self._client.get_item(**kwargs)


def test_an_unreadable_switch_retries_policy_requests_and_serves_people(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    swept, by_hand = (
        world.job(f"sweep-{i}", "gpu-training", "RUNNING", age=timedelta(hours=3)) for i in range(2)
    )
    pipeline.send({"jobIds": [swept], "reason": "runaway", "policy": "runaway"}, source="sweep")
    pipeline.send({"jobId": by_hand, "reason": "by hand"})
    deps = terminator.dependencies()
    broken = replace(deps, dynamodb_client=PauseUnreadable(deps.dynamodb_client))
    terminator.dependencies.cache_clear()
    original = terminator.dependencies
    terminator.dependencies = lambda: broken  # type: ignore[assignment]
    try:
        # Two deliveries at most: the message's third is its last before the DLQ.
        invocations = pipeline.run_terminator(max_invocations=2)
    finally:
        terminator.dependencies = original
    assert any(i.failed_ids for i in invocations)
    assert pipeline.outcome(by_hand) == "terminated"
    for line in pipeline.decisions(swept):
        assert line["outcome"] == "failed"
        assert "pause switch could not be read" in line["error"]
    assert pipeline.decisions(swept)
    assert swept not in stopped(control)
    # Readable again: the retried policy request acts (the system is not paused).
    pipeline.run_terminator()
    assert pipeline.outcome(swept) == "terminated"


def test_an_unreadable_switch_fails_the_sweep_and_the_brake(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    _brake_world(world)
    world.job("sweep-1", "gpu-training", "RUNNING", age=timedelta(hours=3))
    sweep_deps = sweeper.dependencies()
    unreadable = PauseUnreadable(sweep_deps.dynamodb_client)
    with capture_logs(sweeper.logger), pytest.raises(ClientError):
        sweeper.sweep(replace(sweep_deps, dynamodb_client=unreadable), "run-1", _now())
    brake_deps = brake.dependencies()
    shape = _alarm_shapes("2026-11-29T08:10:00.000+0000")[0]
    with capture_logs(brake.logger), pytest.raises(ClientError):
        brake.process_event(
            shape, replace(brake_deps, dynamodb_client=unreadable), _now(), "owner-1"
        )
    assert pipeline.queued() == 0
    assert transition_items(pipeline) == []
    assert stopped(control) == {}
    # The switch itself reads fine through the real client: nothing is paused.
    assert read_pause(sweep_deps.dynamodb_client, sweep_deps.ledger_table) is None
    assert LambdaContext  # the handlers' context type is the emulator's


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
