"""The cost-alarm brake at scale: N RUNNING jobs across 5 queues, one alarm, every job stopped.

Ours: the real brake function gets the alarm's EventBridge event, lists the policy's jobs
(DescribeJobQueues, ListJobs pages of 1,000 per queue, DescribeJobs 100 a call for what it
must read) and enqueues one request per job; then the real terminator drains the request queue
(batches of 100 requests: DescribeJobs, then TerminateJobs of up to 50 jobs of one queue and
one reason a call). Baseline, in the same run on the same jobs: the loop an operator would
write, `aws batch list-jobs --job-queue Q --job-status RUNNING` for each queue, then one
`aws batch terminate-job` per job.

Both run on the emulator; time is modelled, not slept (`_modelled_time.py`): against a Batch
that allows 10 calls a second with 100 ms latency per call, calls one after another, every call
costs 100 ms. "Until all are terminated" ends when the last TerminateJob(s) call has answered;
what happens after (ECS stopping the containers) is the same for both. Not modelled: Lambda
start-up, SQS between the brake and the terminator, DynamoDB (the brake's claim, the
terminator's ledger); they add to ours, not to the loop.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from rich.console import Console
from rich.table import Table

from batch_terminator.handlers import brake, terminator
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import alarms
from batch_terminator_cli.sandbox import Sandbox, sandbox
from bench._modelled_time import ModelledBatch

QUEUES: Final = tuple(f"q{i}" for i in range(5))
ALARM: Final = "bench-alarm"
DEFINITION: Final = "train-bert"
RATE, LATENCY = 10.0, 0.1
GOAL_RATIO: Final = 20.0


def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(
        {
            "version": 1,
            "settings": {"jobQueues": list(QUEUES)},
            "policies": [
                {
                    "name": "bench-brake",
                    "trigger": {"alarms": [ALARM]},
                    "match": {"jobQueues": list(QUEUES)},
                    "when": {"status": "RUNNING"},
                    "maxPerRun": 10_000,
                }
            ],
        }
    )


def seed(box: Sandbox, jobs: int) -> None:
    """`jobs` RUNNING jobs, round robin over the queues, started a second apart."""
    box.control.publish_events(False)  # no trigger here reads Batch's events
    for queue in QUEUES:
        box.world.queue(queue)
    box.world.definition(DEFINITION)
    now = datetime.now(UTC)
    specs: dict[str, list[tuple[str, str, datetime, dict[str, str] | None]]] = {
        q: [] for q in QUEUES
    }
    for i in range(jobs):
        since = now - timedelta(seconds=jobs - i)
        specs[QUEUES[i % len(QUEUES)]].append((f"job-{i}", "RUNNING", since, None))
    for queue, items in specs.items():
        box.control.add_jobs(queue, DEFINITION, items)


@dataclass(frozen=True)
class Path:
    name: str
    terminated: int
    trigger: ModelledBatch | None  # the brake's calls; None for the loop
    terminate: ModelledBatch
    invocations: int

    @property
    def calls(self) -> int:
        brake_calls = sum(self.trigger.calls.values()) if self.trigger else 0
        return brake_calls + sum(self.terminate.calls.values())

    @property
    def seconds(self) -> float:
        return (self.trigger.now if self.trigger else 0.0) + self.terminate.now


def ours(jobs: int) -> Path:
    with sandbox(policies()) as box:
        seed(box, jobs)
        brake_side, terminator_side = ModelledBatch(RATE, LATENCY), ModelledBatch(RATE, LATENCY)
        brake_side.watch(brake.dependencies().batch_client)
        terminator_side.watch(terminator.dependencies().batch_client)
        outcome = box.run_brake(
            alarms.alarm_event(
                ALARM,
                datetime.now(UTC),
                account=box.deployment.account_id,
                region=box.deployment.region,
            )
        )
        if outcome["outcomes"] != ["braked"]:
            raise RuntimeError(f"the brake did not brake: {outcome}")
        invocations = box.run_terminator(max_invocations=10 * jobs)
        terminated = len(box.control.terminations())
    return Path("brake + terminator", terminated, brake_side, terminator_side, len(invocations))


def loop(jobs: int) -> Path:
    """`list-jobs | terminate-job`: every page of every queue, then one call per job."""
    with sandbox(policies()) as box:
        seed(box, jobs)
        clock = ModelledBatch(RATE, LATENCY)
        batch = box.session.client("batch")
        clock.watch(batch)
        ids = [
            summary["jobId"]
            for queue in QUEUES
            for page in batch.get_paginator("list_jobs").paginate(
                jobQueue=queue, jobStatus="RUNNING"
            )
            for summary in page["jobSummaryList"]
        ]
        for job_id in ids:
            batch.terminate_job(jobId=job_id, reason="cost alarm")
        terminated = len(box.control.terminations())
    return Path("sequential list-jobs | terminate-job", terminated, None, clock, 0)


def _calls(clock: ModelledBatch | None, *operations: str) -> int:
    return sum(clock.calls.get(o, 0) for o in operations) if clock else 0


def run(console: Console, jobs: int = 10_000) -> tuple[Path, Path]:
    with contextlib.redirect_stdout(io.StringIO()):  # EMF lines
        mine, baseline = ours(jobs), loop(jobs)
    table = Table(
        title=f"Brake of {jobs:,} RUNNING jobs across {len(QUEUES)} queues; Batch modelled at "
        f"{RATE:.0f} calls/s, {LATENCY * 1000:.0f} ms a call (calls in sequence)"
    )
    for column in (
        "path",
        "terminated",
        "ListJobs",
        "DescribeJobs",
        "TerminateJobs",
        "TerminateJob",
        "other",
        "Batch calls",
        "calls/job",
        "modelled s",
        "speed-up",
    ):
        table.add_column(column, justify="right")
    for path in (mine, baseline):
        counted = ("ListJobs", "DescribeJobs", "TerminateJobs", "TerminateJob")
        other = path.calls - sum(
            _calls(path.trigger, o) + _calls(path.terminate, o) for o in counted
        )
        table.add_row(
            path.name,
            f"{path.terminated:,}",
            *(f"{_calls(path.trigger, o) + _calls(path.terminate, o):,}" for o in counted),
            str(other),
            f"{path.calls:,}",
            f"{path.calls / max(path.terminated, 1):.4f}",
            f"{path.seconds:,.1f}",
            f"{baseline.seconds / max(path.seconds, 1e-9):.1f}x",
        )
    console.print(table)
    brake_calls = sum(mine.trigger.calls.values()) if mine.trigger else 0
    terminator_calls = sum(mine.terminate.calls.values())
    split = Table(title="Batch calls per job on the brake path")
    for column in ("side", "calls", "per job", "modelled s"):
        split.add_column(column, justify="right")
    for side, calls, seconds in (
        (
            "brake (DescribeJobQueues, ListJobs, DescribeJobs)",
            brake_calls,
            mine.trigger.now if mine.trigger else 0.0,
        ),
        ("terminator (DescribeJobs, TerminateJobs)", terminator_calls, mine.terminate.now),
        ("total", mine.calls, mine.seconds),
    ):
        split.add_row(
            side, f"{calls:,}", f"{calls / max(mine.terminated, 1):.4f}", f"{seconds:,.1f}"
        )
    console.print(split)
    ratio = baseline.seconds / max(mine.seconds, 1e-9)
    verdict = "meets" if ratio >= GOAL_RATIO else "MISSES"
    complete = mine.terminated == baseline.terminated == jobs
    console.print(
        f"all {jobs:,} terminated by both: {'yes' if complete else '[red]no[/red]'}; "
        f"terminator invocations: {mine.invocations}; ours {mine.seconds:,.1f} s against "
        f"{baseline.seconds:,.1f} s for the loop: {ratio:.1f}x, {verdict} the goal of at least "
        f"{GOAL_RATIO:.0f}x\n"
    )
    return mine, baseline
