"""The chaos run, small: a few hundred requests of every kind through the real functions while
Batch throttles, fails, times out and reports partial errors, SQS delivers twice (at once and
later), and an invocation times out mid-batch. Every request and job is accounted for against
the emulator's truth (`batch_terminator_cli/emulator/chaos.py`); `make bench` runs 10,000.

Each seed runs once (a module fixture) and every property is its own test. A failure prints
the seed; `python -m batch_terminator_cli.emulator.chaos --seed N --requests 300` replays it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_terminator_cli.emulator.chaos import (
    AcceptedCall,
    Accounting,
    ChaosSettings,
    Deliveries,
    account,
    build,
    policies,
    run,
)
from batch_terminator_cli.emulator.faults import RandomFaults
from batch_terminator_cli.sandbox import sandbox

SEEDS = (11, 23)
REQUESTS = 300


@pytest.fixture(scope="module", params=SEEDS, ids=lambda seed: f"seed {seed}")
def chaos(request: pytest.FixtureRequest) -> Accounting:
    return run(ChaosSettings(seed=request.param, requests=REQUESTS))


def _explain(result: Accounting, prop: str) -> str:
    found = [v.detail for v in result.violations if v.prop == prop]
    return (
        f"seed {result.settings.seed}: {len(found)} violations of {prop!r}, first: {found[:5]}; "
        f"replay: python -m batch_terminator_cli.emulator.chaos --seed {result.settings.seed} "
        f"--requests {result.settings.requests}"
    )


def test_zero_requests_lost(chaos: Accounting) -> None:
    assert chaos.checks["lost"] == 0, _explain(chaos, "lost")
    assert chaos.lost == 0
    total = sum(sum(row.values()) for row in chaos.requests.values())
    assert total >= REQUESTS * 0.95, chaos.requests


def test_no_job_reported_terminated_twice(chaos: Accounting) -> None:
    assert chaos.checks["terminated once"] == 0, _explain(chaos, "terminated once")


def test_no_job_named_by_two_accepted_termination_calls(chaos: Accounting) -> None:
    assert chaos.checks["one call per job"] == 0, _explain(chaos, "one call per job")


def test_no_protected_job_touched(chaos: Accounting) -> None:
    assert chaos.checks["protected"] == 0, _explain(chaos, "protected")


def test_every_job_reported_terminated_was_really_terminated(chaos: Accounting) -> None:
    assert chaos.checks["truth"] == 0, _explain(chaos, "truth")


def test_every_job_our_calls_stopped_has_its_terminated_line(chaos: Accounting) -> None:
    assert chaos.checks["reported"] == 0, _explain(chaos, "reported")


def test_the_run_exercised_every_path_and_fault(chaos: Accounting) -> None:
    """Guards the properties above against a run that tested nothing."""
    kinds = set(chaos.requests)
    assert {"by id", "by list", "by selector", "sweep", "deadline", "brake"} <= kinds, kinds
    faults = Counter(kind.split(":")[0] for kind in chaos.faults)
    assert faults["TooManyRequestsException"] > 0, chaos.faults
    assert faults["ServerException"] > 0, chaos.faults
    assert faults["errors[] ClientException"] + faults["errors[] ServerException"] > 0
    notes = chaos.deliveries
    assert notes["invocations timed out"] >= 1, notes
    assert notes["delivered twice at once"] > 0, notes
    assert notes["delivered again later"] > 0, notes
    assert chaos.jobs.get("terminated", 0) > 0, chaos.jobs
    assert any(k.startswith("skipped: protected") for k in chaos.jobs), chaos.jobs


def test_the_accounting_catches_what_it_is_for() -> None:
    """A protected job reported terminated twice, named by two accepted calls, and never
    stopped: four properties broken, each one seen."""
    with sandbox(policies()) as box:
        scene = build(box, ChaosSettings(seed=5, requests=60))
        job = sorted(scene.protected)[0]
        line = {"outcome": "terminated", "job_id": job, "message_id": "m-1", "skip_reason": None}
        calls = [
            AcceptedCall("TerminateJobs", (job,), 1, "r1i0", answer_lost=False),
            AcceptedCall("TerminateJobs", (job,), 1, "r1i1", answer_lost=False),
        ]
        deliveries = Deliveries(kinds={"m-1": "by id"}, bodies={"m-1": "{}"}, deleted={"m-1"})
        result = account(
            ChaosSettings(seed=5, requests=60),
            box,
            scene,
            deliveries,
            [line, line],
            calls,
            {},
            Counter(),
            0.0,
        )
    assert result.checks["terminated once"] == 1
    assert result.checks["one call per job"] == 1
    assert result.checks["protected"] == 1
    assert result.checks["truth"] == 1
    assert result.deliveries["jobs named by 2+ accepted calls: concurrent duplicates"] == 1


def test_the_accounting_sees_a_stopped_job_without_its_terminated_line() -> None:
    with sandbox(policies()) as box:
        settings_ = ChaosSettings(seed=5, requests=60)
        scene = build(box, settings_)
        job = sorted(set(scene.sweep_jobs) - scene.protected)[0]
        box.session.client("batch").terminate_job(jobId=job, reason="ours")
        line = {"outcome": "skipped", "job_id": job, "message_id": "m-1", "skip_reason": "x"}
        deliveries = Deliveries(kinds={"m-1": "by id"}, bodies={"m-1": "{}"}, deleted={"m-1"})
        result = account(settings_, box, scene, deliveries, [line], [], {}, Counter(), 0.0)
    assert result.checks["reported"] == 1


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    stream=st.text(min_size=1, max_size=8),
    operations=st.lists(st.sampled_from(["DescribeJobs", "TerminateJobs", "SubmitJob"])),
)
def test_random_faults_replay_per_seed_and_stream(
    seed: int, stream: str, operations: list[str]
) -> None:
    def draws() -> list[object]:
        faults = RandomFaults(seed, throttle_rate=0.2, server_error_rate=0.05, timeout_rate=0.1)
        faults.stream(stream)
        out: list[object] = []
        for operation in operations:
            out += [faults.call_fault(operation), faults.timeout(operation), faults.bulk_error()]
        return out

    first = draws()
    assert first == draws()
    # Only the product's Batch operations fail.
    assert all(d is None for d, op in zip(first[::3], operations, strict=True) if op == "SubmitJob")


@pytest.mark.parametrize(
    ("throttle", "server", "timeout"), [(1.5, 0.0, 0.0), (0.0, 0.0, -0.1), (0.6, 0.6, 0.0)]
)
def test_random_fault_rates_are_checked(throttle: float, server: float, timeout: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        RandomFaults(1, throttle_rate=throttle, server_error_rate=server, timeout_rate=timeout)
