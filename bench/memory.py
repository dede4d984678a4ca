"""Peak memory per handler: each handler runs one realistic invocation on the emulator, in a
fresh interpreter of its own.

- terminator: one SQS batch of 100 by-id requests for RUNNING jobs;
- sweeper: one sweep of 1,000 RUNNING jobs past a runtime cap;
- deadline: one batch of 100 Batch Job State Change events (jobs under their limit: schedules);
- brake: one alarm over 1,000 RUNNING jobs.

Two figures per handler. `import MiB`: the peak resident set (VmHWM) of a fresh interpreter that
imported only the handler module, the floor Lambda's "Max Memory Used" starts from. `invocation
peak MiB`: tracemalloc's peak of Python allocations during the one invocation, measured after
the scene was built; the emulator runs in the same process and serves the handler's AWS calls,
so its allocations for those calls are counted too: an upper bound of the handler's own.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from rich.console import Console
from rich.table import Table

HANDLERS: Final = ("terminator", "sweeper", "deadline", "brake")
ALARM: Final = "bench-memory-alarm"
QUEUE: Final = "gpu-training"
DEFINITION: Final = "train-bert"
JOBS: Final = 1_000
BATCH: Final = 100


@dataclass(frozen=True)
class MemoryRow:
    handler: str
    import_mib: float
    peak_mib: float
    work: str


def _policies(handler: str) -> Any:
    from batch_terminator.models.policies import PoliciesFile

    policy: dict[str, Any] = {
        "name": "bench-memory",
        "match": {"jobQueues": [QUEUE]},
        "when": {"status": "RUNNING", "olderThan": "12h" if handler == "sweeper" else "10m"},
        "maxPerRun": 10_000,
    }
    if handler == "brake":
        policy["trigger"] = {"alarms": [ALARM]}
        del policy["when"]["olderThan"]
    return PoliciesFile.model_validate(
        {"version": 1, "settings": {"jobQueues": [QUEUE]}, "policies": [policy]}
    )


def _maxrss_mib() -> float:
    """This process's peak resident set. Linux's VmHWM is this program's own (execve starts a
    new address space); ru_maxrss (KiB on Linux, getrusage(2)) is kept across execve, so a
    child started by a big parent would report the parent's."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _invocation(handler: str) -> tuple[float, str]:
    """Build the scene, then run one invocation under tracemalloc; (peak MiB, what ran)."""
    from batch_terminator_cli.emulator import alarms
    from batch_terminator_cli.emulator.lambda_runtime import (
        LambdaContext,
        receive_batch,
        sqs_event,
    )
    from batch_terminator_cli.sandbox import sandbox

    with contextlib.redirect_stdout(io.StringIO()), sandbox(_policies(handler)) as box:
        box.control.publish_events(handler == "deadline")
        box.world.queue(QUEUE)
        box.world.definition(DEFINITION)
        now = datetime.now(UTC)
        count = BATCH if handler in ("terminator", "deadline") else JOBS
        age = timedelta(minutes=3) if handler == "deadline" else timedelta(hours=13)
        ids = box.control.add_jobs(
            QUEUE,
            DEFINITION,
            [(f"job-{i}", "RUNNING", now - age - timedelta(seconds=i), None) for i in range(count)],
        )
        call: Callable[[], object]
        if handler == "terminator":
            from batch_terminator.handlers import terminator

            for job in ids:
                box.send({"jobId": job, "reason": "bench memory"})
            event = sqs_event(
                receive_batch(box.sqs, box.deployment.request_queue_url, BATCH),
                box.deployment.request_queue_arn,
                box.deployment.region,
            )

            def call() -> object:
                return terminator.handler(event, LambdaContext())

            work = f"{len(event['Records'])} by-id requests (one SQS batch)"
        elif handler == "deadline":
            from batch_terminator.handlers import deadline

            event = sqs_event(
                receive_batch(box.sqs, box.deployment.events_queue_url, BATCH),
                box.deployment.events_queue_arn,
                box.deployment.region,
            )

            def call() -> object:
                return deadline.handler(
                    event, LambdaContext(function_name="batch-terminator-deadline")
                )

            work = f"{len(event['Records'])} job state change events (one SQS batch)"
        elif handler == "sweeper":

            def call() -> object:
                return box.run_sweeper()

            work = f"one sweep of {count:,} RUNNING jobs past the cap"
        else:
            alarm = alarms.alarm_event(
                ALARM, now, account=box.deployment.account_id, region=box.deployment.region
            )

            def call() -> object:
                return box.run_brake(alarm)

            work = f"one alarm over {count:,} RUNNING jobs"
        tracemalloc.start()
        tracemalloc.reset_peak()
        call()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 2**20, work


def _child(handler: str, part: str) -> None:
    """In a fresh interpreter: print one JSON line with what was measured."""
    if part == "import":
        __import__(f"batch_terminator.handlers.{handler}")
        print(json.dumps({"import_mib": _maxrss_mib()}))
    else:
        peak, work = _invocation(handler)
        print(json.dumps({"peak_mib": peak, "work": work}))


def _fresh(handler: str, part: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", handler, part],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(handler: str) -> MemoryRow:
    """Both figures for `handler`, each in a fresh interpreter. Raises CalledProcessError."""
    imported, invoked = _fresh(handler, "import"), _fresh(handler, "invoke")
    return MemoryRow(handler, imported["import_mib"], invoked["peak_mib"], invoked["work"])


def run(console: Console) -> list[MemoryRow]:
    rows = [measure(handler) for handler in HANDLERS]
    table = Table(title="Peak memory per handler, one realistic invocation each (fresh process)")
    for column in ("handler", "import MiB (RSS)", "invocation peak MiB (tracemalloc)", "work"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row.handler, f"{row.import_mib:.0f}", f"{row.peak_mib:.1f}", row.work)
    console.print(table)
    console.print(
        "(the invocation peak counts the in-process emulator serving the handler's calls: an "
        "upper bound)\n"
    )
    return rows


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
