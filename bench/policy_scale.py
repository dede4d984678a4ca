"""The sweeper at scale: ListJobs and DescribeJobs calls and evaluation time for N jobs.

Jobs are seeded straight into the emulator; listing goes through the real Batch API shape
(ListJobs pages of 1,000). The naive baseline describes every listed job to read its tags;
the sweeper describes only jobs some policy could select.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from batch_terminator.batch_api import BatchApi
from batch_terminator.contract import LIST_JOBS_MAX_RESULTS
from batch_terminator.logic.evaluate import Scheduled, evaluate
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.sweeping import run_policies
from batch_terminator_cli.sandbox import Sandbox, sandbox

QUEUES = ("gpu-training", "spot-cpu")
# Share of jobs per status, as a busy fleet might look.
MIX = (("RUNNING", 0.6), ("RUNNABLE", 0.25), ("SUBMITTED", 0.1), ("STARTING", 0.05))


def policies(max_runtime_tag: bool) -> PoliciesFile:
    return PoliciesFile.model_validate(
        {
            "version": 1,
            "settings": {"jobQueues": list(QUEUES), "maxRuntimeTag": max_runtime_tag},
            "policies": [
                {
                    "name": "gpu-runtime-cap",
                    "match": {"jobQueues": ["gpu-training"], "jobDefinitions": ["train-*"]},
                    "when": {"status": "RUNNING", "olderThan": "12h"},
                    "maxPerRun": 10_000,
                },
                {
                    "name": "stuck-runnable",
                    "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "6h"},
                    "maxPerRun": 10_000,
                },
            ],
        }
    )


@dataclass(frozen=True)
class Row:
    jobs: int
    max_runtime_tag: bool
    list_calls: int
    pages: int
    describe_calls: int
    naive_describe_calls: int
    selected: int
    evaluate_ms: float
    run_ms: float


def seed(box: Sandbox, jobs: int, now: datetime) -> Counter[tuple[str, str]]:
    """Spread `jobs` over the queues and statuses; returns how many landed in each pair."""
    rng = random.Random(7)
    box.control.publish_events(False)  # the sweep reads no events; 100,000 of them are slow
    world = box.world
    for queue in QUEUES:
        world.queue(queue)
    world.definition("train-bert")
    placed: Counter[tuple[str, str]] = Counter()
    specs: dict[str, list[tuple[str, str, datetime, dict[str, str] | None]]] = {
        q: [] for q in QUEUES
    }
    for i in range(jobs):
        queue = QUEUES[i % len(QUEUES)]
        status = rng.choices([s for s, _ in MIX], weights=[w for _, w in MIX])[0]
        since = now - timedelta(minutes=rng.randint(1, 24 * 60))
        tags = {"batch-terminator:max-runtime": "20h"} if i % 50 == 0 else None
        specs[queue].append((f"job-{i}", status, since, tags))
        placed[(queue, status)] += 1
    for queue, items in specs.items():
        box.control.add_jobs(queue, "train-bert", items)
    return placed


def expected_pages(placed: Counter[tuple[str, str]], statuses: dict[str, set[str]]) -> int:
    """One ListJobs page per 1,000 jobs of each listed (queue, status), and at least one."""
    return sum(
        max(1, math.ceil(placed[(queue, status)] / LIST_JOBS_MAX_RESULTS))
        for queue, wanted in statuses.items()
        for status in wanted
    )


def measure(jobs: int, max_runtime_tag: bool) -> Row:
    file = policies(max_runtime_tag)
    now = datetime.now(UTC)
    with sandbox(file) as box:
        placed = seed(box, jobs, now)
        api = BatchApi(box.session.client("batch"))
        started = time.perf_counter()
        run = run_policies(api, file, now, Scheduled())
        run_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        evaluate(run.listing.jobs, run.listing.families, file, now, Scheduled())
        evaluate_ms = (time.perf_counter() - started) * 1000
    statuses: dict[str, set[str]] = {
        "gpu-training": {"RUNNING", "RUNNABLE", "STARTING", "PENDING"},
        "spot-cpu": {"RUNNABLE", "STARTING", "PENDING"}
        | ({"RUNNING"} if max_runtime_tag else set()),
    }
    return Row(
        jobs=jobs,
        max_runtime_tag=max_runtime_tag,
        list_calls=api.calls["ListJobs"],
        pages=expected_pages(placed, statuses),
        describe_calls=api.calls["DescribeJobs"],
        naive_describe_calls=math.ceil(run.listing.listed / 100),
        selected=len(run.evaluation.selections),
        evaluate_ms=evaluate_ms,
        run_ms=run_ms,
    )


def run(console: Console, sizes: tuple[int, ...] = (10_000, 100_000)) -> list[Row]:
    rows = [measure(n, tag) for n in sizes for tag in (False, True)]
    table = Table(
        title="Sweeper at scale (2 queues, 2 policies; DescribeJobs baseline: describe every listed job)"
    )
    for column in (
        "jobs",
        "maxRuntimeTag",
        "ListJobs calls",
        "pages",
        "DescribeJobs",
        "naive DescribeJobs",
        "vs naive",
        "selected",
        "evaluate ms",
        "µs/job",
        "whole run ms",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            f"{r.jobs:,}",
            str(r.max_runtime_tag).lower(),
            str(r.list_calls),
            str(r.pages),
            str(r.describe_calls),
            str(r.naive_describe_calls),
            f"{r.describe_calls / max(r.naive_describe_calls, 1):.2f}x",
            f"{r.selected:,}",
            f"{r.evaluate_ms:.0f}",
            f"{r.evaluate_ms * 1000 / r.jobs:.1f}",
            f"{r.run_ms:.0f}",
        )
    console.print(table)
    mismatched = [r for r in rows if r.list_calls != r.pages]
    console.print(
        "ListJobs calls equal the number of pages in every row.\n"
        if not mismatched
        else f"[red]ListJobs calls differ from pages in {len(mismatched)} rows[/red]\n"
    )
    return rows
