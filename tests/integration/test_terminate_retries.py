"""A termination call is repeated only when Batch provably did not act on it: a throttle or a
request never sent is retried by botocore; a read timeout after the call acted, or a 5xx, is
not (it goes to the terminator's uncertain path). Reads keep botocore's retries."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from batch_terminator.batch_api import BatchApi
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.world import BatchWorld

# As deployed: standard mode, 3 attempts (the sandbox's own environment says 1).
DEPLOYED = Config(retries={"mode": "standard", "total_max_attempts": 3})


@pytest.fixture
def client(aws: boto3.Session) -> Any:
    return aws.client("batch", config=DEPLOYED)


def api_for(client: Any, bulk: bool) -> BatchApi:
    """`bulk` False: TerminateJob per job, as where the model or endpoint lacks TerminateJobs."""
    api = BatchApi(client)
    if not bulk:
        api._bulk = False
    return api


OPERATIONS = [
    pytest.param(True, "TerminateJobs", id="bulk"),
    pytest.param(False, "TerminateJob", id="each"),
]


@pytest.mark.parametrize(("bulk", "operation"), OPERATIONS)
def test_read_timeout_after_effect_is_not_repeated(
    client: Any, world: BatchWorld, control: BatchControl, bulk: bool, operation: str
) -> None:
    jobs = [world.job(f"j{i}", "spot-cpu", "RUNNING") for i in range(2)]
    control.reset_calls()
    control.timeout(operation, times=len(jobs), applied=True)

    results = api_for(client, bulk).terminate(jobs, "lost answer")

    assert control.calls()[operation] == (1 if bulk else len(jobs))
    assert all(r.error is not None and r.error.uncertain for r in results)
    assert sorted(e.job_id for e in control.terminations()) == sorted(jobs)


@pytest.mark.parametrize(("bulk", "operation"), OPERATIONS)
def test_server_error_is_not_repeated(
    client: Any, world: BatchWorld, control: BatchControl, bulk: bool, operation: str
) -> None:
    job = world.job("j", "spot-cpu", "RUNNING")
    control.reset_calls()
    control.throttle(operation, times=1, code="ServerException")

    [result] = api_for(client, bulk).terminate([job], "5xx")

    assert control.calls()[operation] == 1
    assert result.error is not None
    assert result.error.uncertain
    assert result.error.code == "ServerException"


@pytest.mark.parametrize(("bulk", "operation"), OPERATIONS)
def test_throttle_is_retried(
    client: Any, world: BatchWorld, control: BatchControl, bulk: bool, operation: str
) -> None:
    job = world.job("j", "spot-cpu", "RUNNING")
    control.reset_calls()
    control.throttle(operation, times=2)

    [result] = api_for(client, bulk).terminate([job], "throttled twice")

    assert result.ok
    assert control.calls()[operation] == 3
    assert [e.job_id for e in control.terminations()] == [job]


@pytest.mark.parametrize(("bulk", "operation"), OPERATIONS)
def test_connect_error_is_retried(
    client: Any, world: BatchWorld, control: BatchControl, bulk: bool, operation: str
) -> None:
    job = world.job("j", "spot-cpu", "RUNNING")
    control.reset_calls()
    refused: list[str] = []

    def refuse_once(request: Any, **_: Any) -> None:
        if not refused:
            refused.append(request.url)
            raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register(f"before-send.batch.{operation}", refuse_once)

    [result] = api_for(client, bulk).terminate([job], "connect refused once")

    assert refused
    assert result.ok
    assert control.calls()[operation] == 1  # the refused attempt never reached Batch
    assert [e.job_id for e in control.terminations()] == [job]


def test_connect_error_to_the_end_is_certain(
    client: Any, world: BatchWorld, control: BatchControl
) -> None:
    """Never sent: the call did not act, so its claim need not be kept as uncertain."""
    job = world.job("j", "spot-cpu", "RUNNING")
    control.reset_calls()

    def refuse(request: Any, **_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register("before-send.batch.TerminateJobs", refuse)

    [result] = BatchApi(client).terminate([job], "never sent")

    assert result.error is not None
    assert result.error.code == "EndpointConnectionError"
    assert not result.error.uncertain
    assert control.calls().get("TerminateJobs", 0) == 0
    assert control.terminations() == []


def test_reads_keep_botocore_retries(client: Any, world: BatchWorld, control: BatchControl) -> None:
    job = world.job("j", "spot-cpu", "RUNNING")
    control.reset_calls()
    control.timeout("DescribeJobs", times=1)
    control.throttle("DescribeJobs", times=1, code="ServerException")

    found = BatchApi(client).describe_jobs([job])

    assert set(found) == {job}
    assert control.calls()["DescribeJobs"] == 3


def test_guard_is_installed_once(client: Any, world: BatchWorld, control: BatchControl) -> None:
    """A BatchApi per invocation on one client: the guard still answers once per attempt."""
    for _ in range(3):
        BatchApi(client)
    job = world.job("j", "spot-cpu", "RUNNING")
    control.reset_calls()
    control.throttle("TerminateJobs", times=1)

    [result] = BatchApi(client).terminate([job], "once")

    assert result.ok
    assert control.calls()["TerminateJobs"] == 2
