"""The one table `make bench` ends with: every headline figure next to its naive baseline,
both measured in the same run (the sections above it hold the details)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from batch_terminator_cli.emulator.chaos import Accounting
from bench import brake_scale, memory, policy_calls, policy_scale, terminate_calls


@dataclass
class Summary:
    """Rows of (area, measure, ours, baseline, ratio), filled as the benchmarks run."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def add(self, area: str, measure: str, ours: str, baseline: str, ratio: str = "") -> None:
        self.rows.append((area, measure, ours, baseline, ratio))

    def print(self, console: Console) -> None:
        table = Table(
            title="make bench: every figure with its naive baseline, measured in this run"
        )
        for column, justify in (
            ("area", "left"),
            ("measure", "left"),
            ("ours", "right"),
            ("naive baseline", "right"),
            ("ratio", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for row in self.rows:
            table.add_row(*row)
        console.print(table)


def _per_job(calls: int, jobs: int) -> str:
    return f"{calls / max(jobs, 1):.3f}"


def calls_per_job(summary: Summary, sizes: Sequence[int]) -> None:
    """Batch calls per terminated job, bulk against per job (TerminateJob, as an old botocore
    makes the terminator do), on the request, sweep, deadline and brake paths."""
    for jobs in sizes:
        bulk = terminate_calls.measure(jobs, per_job=False)
        single = terminate_calls.measure(jobs, per_job=True)
        summary.add(
            "calls per job",
            f"request path, {jobs:,} single-job requests",
            _per_job(bulk.total, bulk.terminated),
            _per_job(single.total, single.terminated),
            f"{single.total / max(bulk.total, 1):.0f}x fewer",
        )
        for name in ("sweep", "deadline (schedules fired)", "brake, 5 queues"):
            ours, naive = _path(name, jobs, per_job=False), _path(name, jobs, per_job=True)
            ours_calls = ours.trigger_calls + ours.terminator_calls
            naive_calls = naive.trigger_calls + naive.terminator_calls
            summary.add(
                "calls per job",
                f"{name}, {jobs:,} jobs (end to end)",
                _per_job(ours_calls, ours.terminated),
                _per_job(naive_calls, naive.terminated),
                f"{naive_calls / max(ours_calls, 1):.0f}x fewer",
            )


def _path(name: str, jobs: int, *, per_job: bool) -> policy_calls.PathCalls:
    rng = random.Random(5)  # the same ages in both modes
    if name == "sweep":
        return policy_calls.sweep(jobs, rng, per_job=per_job)
    if name.startswith("deadline"):
        return policy_calls.deadline_fired(jobs, rng, per_job=per_job)
    return policy_calls.brake(jobs, 5, per_job=per_job)


def brake(summary: Summary, mine: brake_scale.Path, loop: brake_scale.Path) -> None:
    summary.add(
        "brake",
        f"{mine.terminated:,} jobs, 5 queues, Batch at 10 calls/s, 100 ms (modelled s)",
        f"{mine.seconds:,.1f}",
        f"{loop.seconds:,.1f} (list-jobs | terminate-job)",
        f"{loop.seconds / max(mine.seconds, 1e-9):.0f}x faster",
    )
    summary.add(
        "brake",
        f"{mine.terminated:,} jobs: Batch calls",
        f"{mine.calls:,}",
        f"{loop.calls:,}",
        f"{loop.calls / max(mine.calls, 1):.0f}x fewer",
    )


def sweep_scale(summary: Summary, rows: Sequence[policy_scale.Row]) -> None:
    for row in rows:
        if row.max_runtime_tag:
            continue
        ours = row.list_calls + row.describe_calls
        naive = row.list_calls + row.naive_describe_calls
        summary.add(
            "sweep",
            f"{row.jobs:,} jobs: ListJobs + DescribeJobs calls (whole run {row.run_ms:,.0f} ms)",
            f"{ours:,}",
            f"{naive:,} (describe every listed job)",
            f"{naive / max(ours, 1):.1f}x fewer",
        )


def imports(summary: Summary, timings: Mapping[str, float]) -> None:
    """One row per module of `import_time`'s result (seconds by module, `boto3` the floor)."""
    baseline = timings.get("boto3")
    for module, seconds in timings.items():
        if module == "boto3" or not baseline:
            continue
        summary.add(
            "cold import",
            module.rsplit(".", 1)[-1],
            f"{seconds * 1000:.0f} ms",
            f"{baseline * 1000:.0f} ms (import boto3)",
            f"{seconds / baseline:.2f}x",
        )


def memory_rows(summary: Summary, rows: Sequence[memory.MemoryRow]) -> None:
    for row in rows:
        summary.add(
            "peak memory",
            f"{row.handler}: {row.work}",
            f"{row.peak_mib:.1f} MiB",
            f"{row.import_mib:.0f} MiB RSS after import",
            "",
        )


def chaos(summary: Summary, result: Accounting) -> None:
    requests = sum(sum(row.values()) for row in result.requests.values())
    broken = sum(result.checks.values())
    summary.add(
        "chaos",
        f"seed {result.settings.seed}: {requests:,} requests under faults, lost",
        str(result.lost),
        "0",
        "",
    )
    summary.add(
        "chaos",
        "property violations (" + ", ".join(f"{k} {v}" for k, v in result.checks.items()) + ")",
        str(broken),
        "0",
        "",
    )
