"""TerminateJobs where it exists, TerminateJob per job where the runtime's botocore or the
endpoint predates it: both paths, through the real handler."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session
import pytest

from batch_terminator.batch_api import BatchApi
from batch_terminator.handlers import terminator
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox as Pipeline

MODEL = Path(botocore.__file__).parent / "data" / "batch" / "2016-08-10" / "service-2.json.gz"


def old_botocore_data(root: Path) -> Path:
    """A botocore data directory whose Batch model predates TerminateJobs (as older runtimes ship)."""
    model = json.loads(gzip.decompress(MODEL.read_bytes()))
    del model["operations"]["TerminateJobs"]
    target = root / "batch" / "2016-08-10"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return root


def client_with_data_path(*paths: Path) -> Any:
    session = botocore.session.Session()
    session.set_config_variable("data_path", ":".join(str(p) for p in paths))
    return boto3.Session(botocore_session=session, region_name="us-east-1").client("batch")


@pytest.fixture
def old_runtime_client(aws: boto3.Session, tmp_path: Path) -> Any:
    return client_with_data_path(old_botocore_data(tmp_path / "old"))


def test_client_from_an_old_model_has_no_bulk_call(old_runtime_client: Any) -> None:
    assert not BatchApi(old_runtime_client).bulk_terminate_available
    assert not hasattr(old_runtime_client, "terminate_jobs")


def test_old_runtime_terminates_job_by_job(
    pipeline: Pipeline,
    world: BatchWorld,
    control: BatchControl,
    old_runtime_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(terminator, "batch_client", lambda: old_runtime_client)
    jobs = [world.job(f"j{i}", "spot-cpu", "RUNNING", age=timedelta(hours=2)) for i in range(3)]
    control.reset_calls()

    pipeline.send({"jobIds": jobs, "reason": "old runtime"})
    pipeline.run_terminator()

    assert {pipeline.outcome(j) for j in jobs} == {"terminated"}
    assert {world.describe(j)["statusReason"] for j in jobs} == {"old runtime"}
    calls = control.calls()
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
    assert {world.describe(j)["status"] for j in jobs} == {"FAILED"}


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
