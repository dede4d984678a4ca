"""Policies at work: the sweeper lists, evaluates and enqueues; the terminator acts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batch_terminator.batch_api import BatchApi
from batch_terminator.logic.evaluate import Scheduled
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.sweeping import run_policies
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox

POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"]},
    "policies": [
        {
            "name": "gpu-runtime-cap",
            "match": {"jobQueues": ["gpu-training"], "jobDefinitions": ["train-*"]},
            "when": {"status": "RUNNING", "olderThan": "12h"},
            "maxPerRun": 2,
        },
        {"name": "stuck-runnable", "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "6h"}},
        {
            "name": "careful",
            "match": {"jobNames": ["careful-*"]},
            "when": {"status": "RUNNING", "olderThan": "1h"},
            "dryRun": True,
        },
        {
            "name": "spend-brake",
            "trigger": {"alarms": ["batch-spend-critical"]},
            "when": {"status": "RUNNING"},
        },
    ],
}


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(POLICIES)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_sweep_terminates_jobs_past_their_limits_and_leaves_the_rest(
    pipeline: Sandbox, world: BatchWorld
) -> None:
    runaway = world.job("train-a", "gpu-training", "RUNNING", age=hours(13))
    young = world.job("train-b", "gpu-training", "RUNNING", age=hours(3))
    stuck = world.job("etl", "spot-cpu", "RUNNABLE", age=hours(7), definition="etl")
    protected = world.job(
        "train-c", "gpu-training", "RUNNING", age=hours(20), tags={"batch-terminator:protect": "x"}
    )
    elsewhere = world.job("train-d", "research", "RUNNING", age=hours(20))
    tagged = world.job(
        "adhoc",
        "spot-cpu",
        "RUNNING",
        age=hours(3),
        tags={"batch-terminator:max-runtime": "2h"},
        definition="etl",
    )

    summary = pipeline.run_sweeper()
    pipeline.run_terminator()

    assert summary["policies"]["gpu-runtime-cap"]["enqueued"] == 1
    assert summary["policies"]["stuck-runnable"]["enqueued"] == 1
    assert summary["policies"]["max-runtime-tag"]["enqueued"] == 1
    assert {pipeline.outcome(j) for j in (runaway, stuck, tagged)} == {"terminated"}
    assert world.final(runaway)["statusReason"] == (
        "batch-terminator: policy gpu-runtime-cap: RUNNING > 12h"
    )
    assert world.final(stuck)["statusReason"] == (
        "batch-terminator: policy stuck-runnable: RUNNABLE > 6h"
    )
    assert world.final(tagged)["statusReason"] == (
        "batch-terminator: tag batch-terminator:max-runtime=2h: RUNNING > 2h"
    )
    # The reason is per policy and limit; the measured age is in the audit line.
    assert 13 * 3600 <= pipeline.decision(runaway)["age_seconds"] < 13 * 3600 + 60
    for untouched in (young, protected, elsewhere):
        assert world.final(untouched)["status"] == "RUNNING"
        assert pipeline.decisions(untouched) == []
    line = pipeline.decision(runaway)
    assert (line["policy"], line["source"], line["requested_by"]) == (
        "gpu-runtime-cap",
        "sweep",
        "batch-terminator/sweeper",
    )


def test_cap_leaves_the_rest_for_the_next_run_and_is_counted(
    pipeline: Sandbox, world: BatchWorld
) -> None:
    jobs = [world.job(f"train-{i}", "gpu-training", "RUNNING", age=hours(13 + i)) for i in range(3)]

    first = pipeline.run_sweeper()
    pipeline.run_terminator()

    assert first["policies"]["gpu-runtime-cap"] | {"max_per_run": 2} == {
        "evaluated": first["policies"]["gpu-runtime-cap"]["evaluated"],
        "matched": 3,
        "enqueued": 2,
        "capped": 1,
        "max_per_run": 2,
    }
    statuses = [world.final(j)["status"] for j in jobs]
    assert statuses == ["RUNNING", "FAILED", "FAILED"]  # oldest first
    assert any(line.get("message") == "policy cap reached" for line in pipeline.sweeper_logs)
    cap_metrics = [b for b in pipeline.metrics if "PolicyCapReached" in b]
    assert {
        tuple(d) for b in cap_metrics for d in b["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    } == {
        ("service",),
        ("service", "policy"),
    }

    second = pipeline.run_sweeper()
    pipeline.run_terminator()
    assert second["policies"]["gpu-runtime-cap"]["capped"] == 0
    assert world.final(jobs[0])["status"] == "FAILED"


def test_policy_dry_run_enqueues_requests_that_terminate_nothing(
    pipeline: Sandbox, world: BatchWorld
) -> None:
    job = world.job("careful-1", "spot-cpu", "RUNNING", age=hours(2), definition="etl")

    pipeline.run_sweeper()
    pipeline.run_terminator()

    line = pipeline.decision(job)
    assert (line["outcome"], line["dry_run"], line["skip_reason"]) == (
        "skipped",
        True,
        "dry run (policy careful)",
    )
    assert world.final(job)["status"] == "RUNNING"


def test_job_that_moved_on_since_the_sweep_is_not_terminated(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    job = world.job("etl", "spot-cpu", "RUNNABLE", age=hours(7), definition="etl")

    pipeline.run_sweeper()
    control.set_state(job, "RUNNING")  # capacity arrived between the sweep and the terminator
    pipeline.run_terminator()

    assert (
        pipeline.decision(job)["skip_reason"]
        == "precondition failed: status RUNNING is not in ifStatus [RUNNABLE]"
    )
    assert world.final(job)["status"] == "RUNNING"


def test_array_whose_children_are_all_stuck_is_terminated_once_through_its_parent(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    parent = world.job(
        "render", "spot-cpu", "RUNNABLE", age=hours(8), array_size=4, definition="etl"
    )
    for i in range(4):
        world.age(f"{parent}:{i}", "RUNNABLE", hours(7))

    summary = pipeline.run_sweeper()
    pipeline.run_terminator()

    assert summary["policies"]["stuck-runnable"]["enqueued"] == 4  # the array's 4 jobs
    assert pipeline.outcome(parent) == "terminated"
    assert [world.final(f"{parent}:{i}")["status"] for i in range(4)] == ["FAILED"] * 4
    assert pipeline.decision(parent)["reason"] == (
        "batch-terminator: policy stuck-runnable: RUNNABLE > 6h"
    )
    for i in range(4):  # one audit line per child the parent's termination stopped
        assert pipeline.outcome(f"{parent}:{i}") == "terminated"


def test_sweep_lists_every_page_and_describes_only_candidates(
    pipeline: Sandbox, world: BatchWorld, policies: PoliciesFile
) -> None:
    young = [
        world.job(f"etl-{i}", "spot-cpu", "RUNNABLE", age=hours(1), definition="etl")
        for i in range(30)
    ]
    old = [
        world.job(f"old-{i}", "spot-cpu", "RUNNABLE", age=hours(9), definition="etl")
        for i in range(3)
    ]
    api = BatchApi(pipeline.session.client("batch"), page_size=7)

    run = run_policies(api, policies, datetime.now(UTC), Scheduled())

    assert run.listing.listed == 33
    assert run.listing.described == 3  # only the jobs past a limit; none of the young ones
    assert {s.job.job_id for s in run.evaluation.selections} == set(old)
    # spot-cpu: RUNNABLE (33 jobs, 5 pages of 7), STARTING, RUNNING, PENDING (parents): 1 page each
    assert api.calls["ListJobs"] == 5 + 3
    assert api.calls["DescribeJobs"] == 1
    assert not set(young) & {s.job.job_id for s in run.evaluation.selections}
