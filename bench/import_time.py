"""Cold start of each function as deployed, relative to `import boto3`, in fresh interpreters.

A Lambda cold start pays for the handler's imports; boto3 is the floor every Python function that
calls AWS pays. Each figure is the median of several fresh processes, the probes taking turns so
that a busy machine slows them alike.

As deployed means:

- the code is the Lambda asset itself (`infra.asset.build_lambda_asset`, from policies.yaml),
  with the bytecode the build ships for the runtime's Python (`infra.bytecode`); the probes run
  this machine's Python, so the asset is built for it, as a deploy from a machine that has the
  runtime's Python builds it for Lambda's; the interpreter may not write bytecode (Lambda's
  /var/task is read-only);
- the import path is the asset, then only the packages Lambda provides (the runtime's boto3 and
  the Powertools layer's Powertools and pydantic, with what they require), never the development
  environment (`python -S`: no site-packages, no editable install);
- the environment is the stack's (`infra.constructs.lambda_package.base_environment` and each
  function's own variables) plus what Lambda sets, with placeholder credentials and no
  configuration files.

Three figures per function:

- import: `import batch_terminator.handlers.<name>`, the figure the goal is set on;
- + first invocation: the import, then what the first invocation does before its first AWS
  call (`dependencies()`: the policies file validated, the clients created; then one input
  parsed: an SQS request, a Batch job event, an alarm event). Work moved from import time to
  the first invocation shows here, so a lazy import that the first invocation pays anyway
  does not make a function look faster;
- import, source only: the same import from an asset built where the runtime's Python is
  missing (no bytecode shipped), so that every cold start compiles the package.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    DLQ_URL_ENV,
    LEDGER_TABLE_ENV,
    METRICS_NAMESPACE,
    REGION_ENV,
    REQUEST_QUEUE_URL_ENV,
    SCHEDULE_DLQ_ARN_ENV,
    SCHEDULE_GROUP_ENV,
    SCHEDULER_ROLE_ARN_ENV,
    SERVICE_NAME,
)
from batch_terminator_cli.emulator import alarms
from batch_terminator_cli.policies_file import load_policies
from infra.asset import BOTOCORE_DATA_DIR, build_lambda_asset
from infra.paths import project_path

BASELINE: Final = "boto3"
HANDLERS: Final = ("terminator", "sweeper", "deadline", "brake")
FIRST_INVOCATION: Final = " + first invocation"
# What Lambda provides besides the asset: the runtime's boto3, the Powertools layer (with pydantic).
DEPLOYED_DISTRIBUTIONS: Final = ("boto3", "aws-lambda-powertools", "pydantic")
ACCOUNT: Final = "123456789012"
REGION: Final = "us-east-1"

# The stack's environment for every function (infra/constructs/lambda_package.py,
# base_environment), then each function's own; AWS_DATA_PATH is set per run to the asset's copy.
_STACK_ENVIRONMENT: Final = {
    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_RETRY_MODE": "standard",
    ACCOUNT_ID_ENV: ACCOUNT,
    DLQ_URL_ENV: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/batch-terminator-dlq",
    LEDGER_TABLE_ENV: "batch-terminator-ledger",
    REQUEST_QUEUE_URL_ENV: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/batch-terminator",
    SCHEDULE_GROUP_ENV: "batch-terminator",
    SCHEDULER_ROLE_ARN_ENV: f"arn:aws:iam::{ACCOUNT}:role/batch-terminator-scheduler",
    SCHEDULE_DLQ_ARN_ENV: f"arn:aws:sqs:{REGION}:{ACCOUNT}:batch-terminator-schedule-dlq",
}

# The child prints [seconds to import, seconds to import and do the first invocation's work].
_PROBE: Final = """\
import json, os, sys, time
t = time.perf_counter()
import {module} as probed
imported = time.perf_counter() - t
{first}
print(json.dumps([imported, time.perf_counter() - t]))
"""
_INPUTS = "inputs = json.loads(os.environ['BENCH_INPUTS'])\n"
# Each fails loudly when its input is not accepted, so the work measured is the real path.
_FIRST: Final = {
    BASELINE: "",
    "terminator": _INPUTS
    + """\
from batch_terminator.logic.parse import parse_record
deps = probed.dependencies()
for record in inputs['sqs']:
    parsed = parse_record(record, deps.origin)
    if parsed.request is None:
        sys.exit(f'request rejected: {parsed.error}')
""",
    "sweeper": "probed.dependencies()\n",
    "deadline": _INPUTS
    + """\
from batch_terminator.logic.events import Ignored, parse_job_event
from batch_terminator.logic.bodies import load_json
deps = probed.dependencies()
parsed = parse_job_event(load_json(inputs['batch_event']), deps.account)
if isinstance(parsed, Ignored):
    sys.exit(f'event ignored: {parsed}')
""",
    "brake": _INPUTS
    + """\
from batch_terminator.logic.events import Ignored, parse_brake_events
deps = probed.dependencies()
for signal in parse_brake_events(inputs['alarm_event'], deps.account):
    if isinstance(signal, Ignored):
        sys.exit(f'alarm ignored: {signal}')
""",
}


@dataclass(frozen=True)
class Timing:
    """Median seconds of one probe: `imported` the import, `first` the import and the first
    invocation's work, `source_only` the import from an asset without bytecode."""

    imported: float
    first: float
    source_only: float


def module_of(name: str) -> str:
    return name if name == BASELINE else f"batch_terminator.handlers.{name}"


def deployed_distributions(names: tuple[str, ...] = DEPLOYED_DISTRIBUTIONS) -> list[Any]:
    """The installed distributions `names` need at run time (their requirements, not extras)."""
    found: dict[str, Any] = {}
    todo = list(names)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in found:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[name] = distribution
        for requirement in distribution.requires or []:
            if "extra ==" in requirement:
                continue
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
            if match:
                todo.append(match.group(0))
    return list(found.values())


def link_runtime(target: Path) -> Path:
    """A directory of links to the deployed distributions' top-level files and metadata."""
    target.mkdir()
    for distribution in deployed_distributions():
        for file in distribution.files or []:
            top = file.parts[0]
            # `__pycache__` holds the bytecode of single-module distributions (six, typing_extensions).
            if top == ".." or top.endswith(".pth"):
                continue
            link = target / top
            if not link.exists():
                link.symlink_to(Path(str(distribution.locate_file(top))).resolve())
    return target


def inputs() -> dict[str, Any]:
    """One input of each function's kind, in AWS's shapes (the emulator's for the alarm)."""
    now = datetime.now(UTC)
    job_id = str(uuid.uuid4())
    queue = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/gpu-training"

    def sqs_record(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "bench",
            "body": json.dumps(body),
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SenderId": "AIDABENCH",
                "SentTimestamp": str(int(now.timestamp() * 1000)),
                "ApproximateFirstReceiveTimestamp": str(int(now.timestamp() * 1000)),
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:batch-terminator",
            "awsRegion": REGION,
        }

    # Batch user guide, "Job state change events": the detail is DescribeJobs' job shape.
    batch_event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}"],
        "detail": {
            "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}",
            "jobName": "train-resnet",
            "jobId": job_id,
            "jobQueue": queue,
            "status": "RUNNING",
            "attempts": [],
            "createdAt": int(now.timestamp() * 1000) - 60_000,
            "startedAt": int(now.timestamp() * 1000),
            "retryStrategy": {"attempts": 1},
            "dependsOn": [],
            "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/train-gpu:3",
            "parameters": {},
            "tags": {},
            "platformCapabilities": [],
        },
    }
    return {
        "sqs": [
            sqs_record({"jobId": job_id, "reason": "cold start benchmark"}),
            sqs_record(
                {
                    "selector": {"jobQueues": ["gpu-training"], "minAge": "2h"},
                    "reason": "cold start benchmark",
                    "limit": 10,
                }
            ),
        ],
        "batch_event": json.dumps(batch_event),
        "alarm_event": alarms.alarm_event("spend-alarm", now, account=ACCOUNT, region=REGION),
    }


def environment(asset: Path, runtime: Path, home: Path, name: str) -> dict[str, str]:
    """A Lambda function's environment: Lambda's variables, the stack's, nothing of ours."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(asset),
        "AWS_LAMBDA_FUNCTION_NAME": f"batch-terminator-{name}",
        REGION_ENV: REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "AKIABENCHMARK",
        "AWS_SECRET_ACCESS_KEY": "benchmark",
        "AWS_SESSION_TOKEN": "benchmark",
        **_STACK_ENVIRONMENT,
        "AWS_DATA_PATH": str(asset / BOTOCORE_DATA_DIR),
        "PYTHONPATH": os.pathsep.join((str(asset), str(runtime))),
        "PYTHONDONTWRITEBYTECODE": "1",
        "BENCH_INPUTS": json.dumps(inputs()),
    }


def sample(name: str, asset: Path, runtime: Path, home: Path, first: bool) -> tuple[float, float]:
    probe = _PROBE.format(module=module_of(name), first=_FIRST[name] if first else "")
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True,
        text=True,
        env=environment(asset, runtime, home, name),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr.strip().splitlines()[-1:]}")
    imported, total = json.loads(done.stdout.strip().splitlines()[-1])
    return float(imported), float(total)


@dataclass(frozen=True)
class Layout:
    asset: Path
    source_only: Path
    runtime: Path
    home: Path


# The probes' Python stands for the Lambda runtime's: the asset carries bytecode for it.
RUNTIME: Final = f"python{sys.version_info.major}.{sys.version_info.minor}"


def layout(root: Path) -> Layout:
    """The asset as deployed (with bytecode), one without, and the runtime's packages."""
    policies = load_policies(project_path("policies.yaml"))
    asset = build_lambda_asset(policies, root / "asset", RUNTIME)
    source_only = build_lambda_asset(policies, root / "source-only")
    home = root / "home"
    home.mkdir()
    return Layout(asset, source_only, link_runtime(root / "runtime"), home)


def measure(names: tuple[str, ...], repeats: int) -> dict[str, Timing]:
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="import-time-") as directory:
        where = layout(Path(directory))
        for _ in range(repeats):
            for name in names:
                imported, first = sample(name, where.asset, where.runtime, where.home, True)
                source_only, _ = sample(name, where.source_only, where.runtime, where.home, False)
                samples[name].append((imported, first, source_only))
    return {
        name: Timing(*(statistics.median(column) for column in zip(*rows, strict=True)))
        for name, rows in samples.items()
    }


def _rows(timings: Mapping[str, Timing]) -> Iterator[tuple[str, ...]]:
    floor = timings[BASELINE].imported
    for name, timing in timings.items():
        if name == BASELINE:
            yield ("import boto3", f"{timing.imported * 1000:.0f}", "1.00x", "", "", "", "")
            continue
        yield (
            name,
            f"{timing.imported * 1000:.0f}",
            f"{timing.imported / floor:.2f}x",
            f"{timing.first * 1000:.0f}",
            f"{timing.first / floor:.2f}x",
            f"{timing.source_only * 1000:.0f}",
            f"{timing.source_only / floor:.2f}x",
        )


def run(console: Console, repeats: int = 7) -> dict[str, float]:
    """Print the table; return seconds by module (`boto3` the floor), each handler's import
    and, under `<module> + first invocation`, its import with the first invocation's work."""
    timings = measure((BASELINE, *HANDLERS), repeats)
    table = Table(title=f"Cold start as deployed, median of {repeats} fresh interpreters")
    for column in (
        "function",
        "import ms",
        "vs import boto3",
        "+ first invocation ms",
        "vs import boto3",
        "import ms, source only",
        "vs import boto3",
    ):
        table.add_column(column, justify="right")
    for row in _rows(timings):
        table.add_row(*row)
    console.print(table)
    console.print(
        "(each figure includes boto3's or botocore's own import; the asset ships bytecode for "
        "the runtime's Python; '+ first invocation' adds dependencies() and one parsed input, "
        "before any AWS call; 'source only' imports from an asset built without that Python, "
        "compiled at each cold start)\n"
    )
    result: dict[str, float] = {}
    for name, timing in timings.items():
        result[module_of(name)] = timing.imported
        if name != BASELINE:
            result[module_of(name) + FIRST_INVOCATION] = timing.first
    return result
