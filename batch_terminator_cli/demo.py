"""`batch-terminator demo`: the whole pipeline on the embedded emulator, checked as it runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox, sandbox

DEMO_POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {
        "dryRun": False,
        "protectTag": "batch-terminator:protect",
        "jobQueues": ["gpu-training", "spot-cpu"],
        "sweepInterval": "15m",
    },
    "policies": [],
}
REASON = "Terminating job."
UNKNOWN_JOB = "0f2d1f8e-5b7a-4c1e-9d3a-000000000000"


@dataclass(frozen=True)
class Expected:
    """What must happen to one job: its outcomes in order, the why of the last, its end status."""

    label: str
    outcomes: tuple[str, ...]
    status_after: str | None
    why: str | None = None


@dataclass
class Scene:
    ids: dict[str, str]
    expected: list[Expected]
    before: dict[str, str]


def seed_jobs(world: BatchWorld) -> dict[str, str]:
    """The demo's jobs: runaway, stuck, finished, protected, in a queue not allowed, and more."""
    return {
        "train-bert-runaway": world.job(
            "train-bert-runaway", "gpu-training", "RUNNING", age=timedelta(days=3)
        ),
        "etl-stuck": world.job(
            "etl-stuck", "spot-cpu", "RUNNABLE", age=timedelta(hours=9), definition="etl"
        ),
        "nightly-report": world.job("nightly-report", "spot-cpu", "SUCCEEDED", definition="etl"),
        "golden-model": world.job(
            "golden-model",
            "gpu-training",
            "RUNNING",
            tags={"batch-terminator:protect": "true"},
            age=timedelta(days=2),
        ),
        "research-sim": world.job("research-sim", "research", "RUNNING", definition="sim"),
        "etl-started": world.job("etl-started", "spot-cpu", "RUNNING", definition="etl"),
        "train-canary": world.job("train-canary", "gpu-training", "RUNNING"),
    }


def build_scene(box: Sandbox) -> Scene:
    world = box.world
    ids = seed_jobs(world)
    before = {name: world.describe(job_id)["status"] for name, job_id in ids.items()}
    before["(unknown id)"] = "-"
    expected = [
        Expected(
            "train-bert-runaway", ("terminated", "skipped"), "FAILED", "already finished: FAILED"
        ),
        Expected("etl-stuck", ("terminated",), "FAILED"),
        Expected("nightly-report", ("skipped",), "SUCCEEDED", "already finished: SUCCEEDED"),
        Expected("golden-model", ("skipped",), "RUNNING", "protected"),
        Expected("research-sim", ("skipped",), "RUNNING", "queue not allowed"),
        Expected("(unknown id)", ("skipped",), None, "not found"),
        Expected("etl-started", ("skipped",), "RUNNING", "precondition failed"),
        Expected("train-canary", ("skipped",), "RUNNING", "dry run (request)"),
    ]
    return Scene({**ids, "(unknown id)": UNKNOWN_JOB}, expected, before)


def send_requests(box: Sandbox, ids: dict[str, str]) -> list[tuple[str, dict[str, Any] | str]]:
    """The requests of the demo, by both paths; returns (path, body) for display."""
    sent: list[tuple[str, dict[str, Any] | str]] = []

    def sqs(body: dict[str, Any] | str) -> None:
        box.send(body)
        sent.append(("SQS", body))

    first = {"reason": REASON, "jobId": ids["train-bert-runaway"]}
    sqs(first)
    event = {"reason": REASON, "jobId": ids["etl-stuck"], "requestedBy": "oncall@example.com"}
    box.put_event(event)
    sent.append(("EventBridge", event))
    sqs(
        {
            "jobIds": [
                ids["nightly-report"],
                ids["golden-model"],
                ids["research-sim"],
                UNKNOWN_JOB,
            ],
            "reason": "cleanup after incident INC-4411",
            "requestedBy": "alice",
        }
    )
    sqs(
        {"jobId": ids["etl-started"], "reason": "cancel if still waiting", "ifStatus": ["RUNNABLE"]}
    )
    sqs({"jobId": ids["train-canary"], "reason": "what would happen?", "dryRun": True})
    sqs(json.dumps({"jobId": ids["train-canary"], "reason": "typo", "dryrun": True}))
    return sent


def redeliver(box: Sandbox, ids: dict[str, str]) -> None:
    box.send({"reason": REASON, "jobId": ids["train-bert-runaway"]})


def check(box: Sandbox, scene: Scene) -> list[str]:
    """Every way the run differs from what the demo promises; empty when all is as expected."""
    problems = []
    for want in scene.expected:
        job_id = scene.ids[want.label]
        lines = box.decisions(job_id)
        outcomes = tuple(line["outcome"] for line in lines)
        if outcomes != want.outcomes:
            problems.append(f"{want.label}: outcomes {outcomes}, expected {want.outcomes}")
            continue
        why = lines[-1].get("skip_reason") or ""
        if want.why and not why.startswith(want.why):
            problems.append(f"{want.label}: skipped because {why!r}, expected {want.why!r}")
        status = box.world.describe(job_id).get("status") if want.status_after else None
        if status != want.status_after:
            problems.append(f"{want.label}: status {status}, expected {want.status_after}")
    rejected = [line for line in box.audit if line["outcome"] == "rejected"]
    parked = box.dead_letters()
    if (
        len(rejected) != 1
        or len(parked) != 1
        or "dryrun" not in parked[0]["MessageAttributes"]["error"]["StringValue"]
    ):
        problems.append("the misspelt request was not rejected into the DLQ with its error")
    if box.queued():
        problems.append("messages left in the request queue")
    return problems


def render(console: Console, box: Sandbox, scene: Scene, sent: list[tuple[str, Any]]) -> None:
    requests = Table(title="Requests sent", show_lines=False)
    requests.add_column("path")
    requests.add_column("body")
    for path, body in sent:
        requests.add_row(path, body if isinstance(body, str) else json.dumps(body))
    requests.add_row("SQS", "(the first message again: a second delivery)")
    console.print(requests)

    names = {job_id: label for label, job_id in scene.ids.items()}
    table = Table(title="Decisions, in order (one audit line each)")
    for column in ("job", "queue", "status", "outcome", "why (skipped) / reason (terminated)"):
        table.add_column(column, overflow="fold")
    for line in box.audit:
        if line["outcome"] == "rejected":
            continue
        job_id = line["job_id"]
        name = names.get(job_id, job_id)
        queue = (line.get("job_queue") or "-").rsplit("/", 1)[-1]
        after = box.world.describe(job_id).get("status", "-") if job_id != UNKNOWN_JOB else "-"
        style = {"terminated": "bold red", "skipped": "yellow", "failed": "magenta"}.get(
            line["outcome"], ""
        )
        why = line.get("skip_reason") or line.get("reason") or ""
        table.add_row(
            name,
            queue,
            f"{line.get('status_before') or '-'} → {after}",
            f"[{style}]{line['outcome']}[/]",
            why,
        )
    console.print(table)
    totals = ", ".join(
        f"{name} {int(value)}" for name, value in sorted(box.metric_totals().items())
    )
    console.print(f"[bold]Metrics[/bold] (EMF, namespace BatchTerminator): {totals}\n")

    console.print(
        "[bold]Dead-letter queue[/bold] (rejected requests keep their body and the error):"
    )
    for message in box.dead_letters():
        console.print(f"  body  {message['Body']}")
        console.print(f"  error {message['MessageAttributes']['error']['StringValue']}")

    console.print(
        "\n[bold]Audit log lines[/bold] (one per decision, as CloudWatch Logs receives them):"
    )
    for line in box.audit:
        console.print_json(json.dumps(_audit_view(line)), indent=None)


def _audit_view(line: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "message",
        "outcome",
        "job_id",
        "job_name",
        "job_queue",
        "status_before",
        "reason",
        "policy",
        "source",
        "requested_by",
        "request_id",
        "dry_run",
        "error",
        "skip_reason",
    )
    return {key: line.get(key) for key in keys}


def demo_policies() -> PoliciesFile:
    return PoliciesFile.model_validate(DEMO_POLICIES)


def run(console: Console) -> bool:
    policies = demo_policies()
    with sandbox(policies) as box:
        console.rule(
            "batch-terminator demo: requests by SQS and EventBridge, on the embedded emulator"
        )
        scene = build_scene(box)
        sent = send_requests(box, scene.ids)
        box.run_terminator()
        redeliver(box, scene.ids)
        box.run_terminator()
        render(console, box, scene, sent)
        problems = check(box, scene)
    if problems:
        console.print("[bold red]Demo FAILED:[/bold red]")
        for problem in problems:
            console.print(f"  - {problem}")
        return False
    console.print("[bold green]Demo passed:[/bold green] every job ended exactly as expected.")
    return True
