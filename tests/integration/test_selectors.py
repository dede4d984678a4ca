"""Selector requests: expanded with the sweeper's listing code, every safety rule applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox


def test_selector_terminates_what_it_names_and_nothing_else(
    pipeline: Sandbox, world: BatchWorld
) -> None:
    match = world.job(
        "nightly-a", "spot-cpu", "RUNNABLE", age=timedelta(hours=8), tags={"team": "ml"}
    )
    running = world.job(
        "nightly-b", "spot-cpu", "RUNNING", age=timedelta(hours=8), tags={"team": "ml"}
    )
    other_team = world.job(
        "nightly-c", "spot-cpu", "RUNNABLE", age=timedelta(hours=8), tags={"team": "bio"}
    )
    other_name = world.job(
        "adhoc", "spot-cpu", "RUNNABLE", age=timedelta(hours=8), tags={"team": "ml"}
    )
    too_young = world.job(
        "nightly-d", "spot-cpu", "RUNNABLE", age=timedelta(hours=1), tags={"team": "ml"}
    )
    protected = world.job(
        "nightly-e",
        "spot-cpu",
        "RUNNABLE",
        age=timedelta(hours=9),
        tags={"team": "ml", "batch-terminator:protect": "1"},
    )

    pipeline.send(
        {
            "selector": {
                "jobQueues": ["spot-cpu"],
                "statuses": ["RUNNABLE"],
                "jobNamePrefix": "nightly-",
                "tags": {"team": "ml"},
                "minAge": "6h",
            },
            "reason": "drain stuck nightly jobs",
            "limit": 10,
        }
    )
    pipeline.run_terminator()

    assert pipeline.outcome(match) == "terminated"
    assert world.final(match)["statusReason"] == "drain stuck nightly jobs"
    assert pipeline.decision(protected)["skip_reason"].startswith("protected")
    for untouched in (running, other_team, other_name, too_young):
        assert pipeline.decisions(untouched) == []
        assert world.final(untouched)["status"] in ("RUNNING", "RUNNABLE")


def test_selector_limit_terminates_the_oldest_and_skips_the_rest_with_the_why(
    pipeline: Sandbox, world: BatchWorld
) -> None:
    jobs = [
        world.job(f"etl-{i}", "spot-cpu", "RUNNABLE", age=timedelta(hours=10 - i)) for i in range(5)
    ]

    pipeline.send({"selector": {"jobQueues": ["spot-cpu"]}, "reason": "brake", "limit": 2})
    pipeline.run_terminator()

    assert [pipeline.outcome(j) for j in jobs] == [
        "terminated",
        "terminated",
        "skipped",
        "skipped",
        "skipped",
    ]
    assert (
        pipeline.decision(jobs[4])["skip_reason"]
        == "limit reached: this request terminates at most 2 jobs"
    )
    assert [world.final(j)["status"] for j in jobs] == [
        "FAILED",
        "FAILED",
        "RUNNABLE",
        "RUNNABLE",
        "RUNNABLE",
    ]
    assert pipeline.metric_totals().get("PolicyCapReached") == 1


def test_selector_created_window_and_definition(pipeline: Sandbox, world: BatchWorld) -> None:
    now = datetime.now(UTC)
    inside = world.job(
        "a", "gpu-training", "RUNNABLE", age=timedelta(hours=5), definition="train-bert"
    )
    wrong_definition = world.job(
        "b", "gpu-training", "RUNNABLE", age=timedelta(hours=5), definition="etl"
    )
    too_old = world.job(
        "c", "gpu-training", "RUNNABLE", age=timedelta(days=3), definition="train-bert"
    )

    pipeline.send(
        {
            "selector": {
                "jobQueues": ["gpu-training"],
                "jobDefinition": "train-*",
                "createdAfter": (now - timedelta(days=1)).isoformat(),
                "createdBefore": now.isoformat(),
            },
            "reason": "window",
        }
    )
    pipeline.run_terminator()

    assert pipeline.outcome(inside) == "terminated"
    assert pipeline.decisions(wrong_definition) == []
    assert pipeline.decisions(too_old) == []


def test_selector_dry_run_terminates_nothing(pipeline: Sandbox, world: BatchWorld) -> None:
    job = world.job("a", "spot-cpu", "RUNNING")
    pipeline.put_event(
        {"selector": {"jobQueues": ["spot-cpu"]}, "reason": "preview", "dryRun": True}
    )
    pipeline.run_terminator()
    assert pipeline.decision(job)["skip_reason"] == "dry run (request)"
    assert world.final(job)["status"] == "RUNNING"


def test_selector_on_a_queue_not_allowed_touches_nothing(
    pipeline: Sandbox, world: BatchWorld
) -> None:
    job = world.job("a", "research", "RUNNING")
    pipeline.send({"selector": {"jobQueues": ["research"]}, "reason": "not ours"})
    pipeline.run_terminator()
    assert pipeline.decision(job)["skip_reason"].startswith("queue not allowed")
    assert world.final(job)["status"] == "RUNNING"
