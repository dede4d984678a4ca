"""Cold import time of each handler module, relative to `import boto3`, in fresh interpreters.

A Lambda cold start pays for the handler's imports; boto3 is the floor every Python function that
calls AWS pays. Each figure is the median of several fresh processes, measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from rich.console import Console
from rich.table import Table

MODULES = ("boto3", "batch_terminator.handlers.terminator", "batch_terminator.handlers.sweeper")
_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
# As deployed: service name and namespace set; tracing as in Lambda (the X-Ray SDK is imported).
_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "batch-terminator",
    "POWERTOOLS_METRICS_NAMESPACE": "BatchTerminator",
}


def seconds_to_import(module: str, repeats: int) -> float:
    environment = {**os.environ, **_ENVIRONMENT}
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", _PROBE.format(module=module)],
                check=True,
                capture_output=True,
                text=True,
                env=environment,
            ).stdout.strip()
        )
        for _ in range(repeats)
    ]
    return statistics.median(samples)


def run(console: Console, repeats: int = 7) -> dict[str, float]:
    timings = {module: seconds_to_import(module, repeats) for module in MODULES}
    baseline = timings["boto3"]
    table = Table(title=f"Cold import time, median of {repeats} fresh interpreters")
    for column in ("module", "ms", "vs import boto3"):
        table.add_column(column, justify="right")
    for module, seconds in timings.items():
        table.add_row(module, f"{seconds * 1000:.0f}", f"{seconds / baseline:.2f}x")
    console.print(table)
    console.print(
        "(a handler's figure includes boto3 itself: the ratio is what the handler adds)\n"
    )
    return timings
