"""TerminateJobs where it exists, TerminateJob per job where the runtime's botocore or the
endpoint predates it: both paths, through the real handler."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from batch_terminator.batch_api import BatchApi
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.botocore_models import (
    batch_client_with_data_path,
    batch_model_without,
)
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox as Pipeline
from batch_terminator_cli.sandbox import sandbox


def old_botocore_data(root: Path) -> Path:
    return batch_model_without("TerminateJobs", root)


@pytest.fixture
def old_runtime_client(aws: boto3.Session, tmp_path: Path) -> Any:
    return batch_client_with_data_path(old_botocore_data(tmp_path / "old"))


def test_client_from_an_old_model_has_no_bulk_call(old_runtime_client: Any) -> None:
    assert not BatchApi(old_runtime_client).bulk_terminate_available
    assert not hasattr(old_runtime_client, "terminate_jobs")


def test_old_runtime_terminates_job_by_job(policies: PoliciesFile, tmp_path: Path) -> None:
    """The function's botocore sees only a Batch model without TerminateJobs."""
    old = old_botocore_data(tmp_path / "old")
    with sandbox(policies, {"AWS_DATA_PATH": str(old)}) as box:
        jobs = [
            box.world.job(f"j{i}", "spot-cpu", "RUNNING", age=timedelta(hours=2)) for i in range(3)
        ]
        box.control.reset_calls()

        box.send({"jobIds": jobs, "reason": "old runtime"})
        box.run_terminator()

        assert {box.outcome(j) for j in jobs} == {"terminated"}
        assert {box.world.final(j)["statusReason"] for j in jobs} == {"old runtime"}
        calls = box.control.calls()
        assert calls.get("TerminateJob") == 3
        assert "TerminateJobs" not in calls


def test_current_model_uses_one_bulk_call(
    pipeline: Pipeline, world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job(f"j{i}", "spot-cpu", "RUNNING") for i in range(3)]
    control.reset_calls()

    pipeline.send({"jobIds": jobs, "reason": "bulk"})
    pipeline.run_terminator()

    assert {pipeline.outcome(j) for j in jobs} == {"terminated"}
    assert control.calls() == {"DescribeJobs": 1, "TerminateJobs": 1}


def test_endpoint_without_bulk_call_falls_back_and_remembers(
    world: BatchWorld, control: BatchControl
) -> None:
    jobs = [world.job(f"j{i}", "spot-cpu", "RUNNING") for i in range(2)]
    control.throttle("TerminateJobs", times=1, code="UnknownOperationException")
    api = BatchApi(boto3.client("batch"))

    results = api.terminate(jobs, "endpoint predates TerminateJobs")

    assert all(r.ok for r in results)
    assert not api.bulk_terminate_available
    assert api.calls == {"TerminateJobs": 1, "TerminateJob": 2}
    assert {world.final(j)["status"] for j in jobs} == {"FAILED"}


def test_bulk_call_result_not_reported_is_a_failure(
    world: BatchWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP 200 is not proof: an id missing from both successful[] and errors[] is not terminated."""
    client = boto3.client("batch")
    job = world.job("j", "spot-cpu", "RUNNING")
    monkeypatch.setattr(client, "terminate_jobs", lambda **_: {"successful": [], "errors": []})

    [result] = BatchApi(client).terminate([job], "r")

    assert result.error is not None
    assert result.error.code == "NotReported"
    assert result.error.retryable


def test_model_shipped_in_the_asset_gives_an_old_runtime_the_bulk_call(
    policies: PoliciesFile, tmp_path: Path
) -> None:
    """As deployed: AWS_DATA_PATH=/var/task/botocore_data puts the asset's Batch model ahead of
    the runtime's own older one."""
    from infra.asset import AWS_DATA_PATH, BOTOCORE_DATA_DIR, LAMBDA_TASK_ROOT, build_lambda_asset

    asset = build_lambda_asset(policies, tmp_path / "asset")
    shipped = str(asset / BOTOCORE_DATA_DIR)
    assert f"{LAMBDA_TASK_ROOT}/{BOTOCORE_DATA_DIR}" == AWS_DATA_PATH
    old = old_botocore_data(tmp_path / "old")
    with sandbox(policies, {"AWS_DATA_PATH": f"{shipped}:{old}"}) as box:
        jobs = [box.world.job(f"j{i}", "spot-cpu", "RUNNING") for i in range(3)]
        box.control.reset_calls()

        box.send({"jobIds": jobs, "reason": "shipped model"})
        box.run_terminator()

        assert box.control.calls() == {"DescribeJobs": 1, "TerminateJobs": 1}
        assert {box.outcome(j) for j in jobs} == {"terminated"}


def test_each_sandbox_reads_its_own_data_path(policies: PoliciesFile, tmp_path: Path) -> None:
    """Each sandbox is a new container: its AWS_DATA_PATH is read by the functions' clients even
    after an earlier sandbox in the same process ran with another one (old, current, old)."""
    old = old_botocore_data(tmp_path / "old")
    seen = []
    for environment in ({"AWS_DATA_PATH": str(old)}, {}, {"AWS_DATA_PATH": str(old)}):
        with sandbox(policies, environment) as box:
            jobs = [box.world.job(f"j{i}", "spot-cpu", "RUNNING") for i in range(2)]
            box.control.reset_calls()

            box.send({"jobIds": jobs, "reason": "container"})
            box.run_terminator()

            assert {box.outcome(j) for j in jobs} == {"terminated"}
            seen.append(sorted(set(box.control.calls()) - {"DescribeJobs"}))
    assert seen == [["TerminateJob"], ["TerminateJobs"], ["TerminateJob"]]
