"""Batch API calls per terminated job: bulk TerminateJobs against per-job TerminateJob, through
the real terminator on the emulator, for N single-job requests sent to the request queue."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from batch_terminator.handlers import terminator
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator.botocore_models import batch_model_without
from batch_terminator_cli.emulator.lambda_runtime import capture_logs, drain
from batch_terminator_cli.sandbox import Sandbox, sandbox
from bench._containers import new_container

POLICIES = PoliciesFile.model_validate({"version": 1, "settings": {"jobQueues": ["bench"]}})
# The event source mapping's batch size in the stack (terminatorBatchSize).
BATCH_SIZE = 100
CALL_BUDGET_PER_1000 = 40


@dataclass(frozen=True)
class Measured:
    mode: str
    terminated: int
    calls: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _terminate(box: Sandbox, jobs: int) -> tuple[int, dict[str, int]]:
    ids = [box.world.job(f"j{i}", "bench", "RUNNING") for i in range(jobs)]
    sqs = box.sqs
    for start in range(0, jobs, 10):
        sqs.send_message_batch(
            QueueUrl=box.deployment.request_queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps({"jobId": job, "reason": "benchmark"})}
                for i, job in enumerate(ids[start : start + 10])
            ],
        )
    box.control.reset_calls()
    with capture_logs(terminator.logger) as logs:
        drain(
            sqs,
            box.deployment.request_queue_url,
            terminator.handler,
            batch_size=BATCH_SIZE,
            max_invocations=jobs,
        )
    terminated = sum(1 for line in logs.audit() if line["outcome"] == "terminated")
    return terminated, box.control.calls()


def measure(jobs: int, per_job: bool) -> Measured:
    with tempfile.TemporaryDirectory() as scratch:
        # As in the function: AWS_DATA_PATH decides which Batch model botocore loads. Here it
        # points at one without TerminateJobs, as an older runtime's botocore has.
        environment = (
            {"AWS_DATA_PATH": str(batch_model_without("TerminateJobs", Path(scratch)))}
            if per_job
            else {}
        )
        with new_container(), sandbox(POLICIES, environment) as box:
            terminated, calls = _terminate(box, jobs)
    return Measured(
        "per-job TerminateJob (old botocore)" if per_job else "bulk TerminateJobs",
        terminated,
        calls,
    )


def run(console: Console, jobs: int = 1000) -> list[Measured]:
    with contextlib.redirect_stdout(io.StringIO()):  # EMF lines
        results = [measure(jobs, per_job=False), measure(jobs, per_job=True)]
    naive = jobs  # a `terminate-job` loop: one call per job, no state read, no safety checks
    table = Table(
        title=f"Batch API calls to terminate {jobs} jobs sent as {jobs} single-job requests (batch size {BATCH_SIZE})"
    )
    for column in (
        "path",
        "terminated",
        "DescribeJobs",
        "TerminateJobs",
        "TerminateJob",
        "total calls",
        "calls/job",
        "vs naive loop",
    ):
        table.add_column(column, justify="right")
    for m in results:
        table.add_row(
            m.mode,
            str(m.terminated),
            str(m.calls.get("DescribeJobs", 0)),
            str(m.calls.get("TerminateJobs", 0)),
            str(m.calls.get("TerminateJob", 0)),
            str(m.total),
            f"{m.total / max(m.terminated, 1):.3f}",
            f"{m.total / naive:.3f}x",
        )
    table.add_row(
        "naive loop of terminate-job",
        str(jobs),
        "0",
        "0",
        str(naive),
        str(naive),
        "1.000",
        "1.000x",
    )
    console.print(table)
    bulk = results[0]
    budget = CALL_BUDGET_PER_1000 * jobs / 1000
    verdict = "within" if bulk.total <= budget else "OVER"
    console.print(
        f"bulk path: {bulk.total} calls for {jobs} jobs, {verdict} the budget of {budget:.0f}\n"
    )
    return results
