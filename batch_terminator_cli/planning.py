"""`batch-terminator plan`: what the policies would terminate now, and why. Read-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from batch_terminator.batch_api import BatchApi
from batch_terminator.logic.durations import format_duration, format_limit
from batch_terminator.logic.evaluate import AlarmFired, Scheduled
from batch_terminator.logic.matching import resource_name
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.sweeping import PolicyRun, run_policies

# The only Batch calls a plan makes; a test holds it to this.
READ_ONLY_OPERATIONS = frozenset({"DescribeJobQueues", "ListJobs", "DescribeJobs"})


def make_plan(
    batch_client: Any, policies: PoliciesFile, now: datetime, alarm: str | None = None
) -> PolicyRun:
    trigger = AlarmFired(alarm) if alarm else Scheduled()
    return run_policies(BatchApi(batch_client), policies, now, trigger)


def plan_as_json(run: PolicyRun) -> dict[str, Any]:
    return {
        "selections": [
            {
                "jobId": s.job.job_id,
                "jobName": s.job.job_name,
                "jobQueue": resource_name(s.job.job_queue),
                "status": s.job.status.value,
                "policy": s.policy,
                "age": format_duration(s.age),
                "limit": format_limit(s.limit) if s.limit is not None else None,
                "dryRun": s.dry_run,
                "arrayChildren": len(s.children),
                "reason": s.reason,
            }
            for s in run.evaluation.selections
        ],
        "summary": run.summary(),
    }


def render_plan(console: Console, run: PolicyRun) -> None:
    selections = run.evaluation.selections
    table = Table(title=f"Would terminate now ({len(selections)} jobs)")
    for column in ("job", "queue", "status", "policy", "age", "limit", "reason"):
        table.add_column(column, overflow="fold")
    for s in selections:
        name = s.job.job_name + (f" (array of {len(s.children)})" if s.children else "")
        policy = s.policy + (" [dry run]" if s.dry_run else "")
        limit = format_limit(s.limit) if s.limit is not None else "-"
        table.add_row(
            name,
            resource_name(s.job.job_queue),
            s.job.status.value,
            policy,
            format_duration(s.age),
            limit,
            s.reason,
        )
    console.print(table)
    counts = Table(title="Per policy")
    for column in (
        "policy",
        "matched",
        "would terminate",
        "max per run",
        "left for later (capped)",
    ):
        counts.add_column(column)
    for name, count in run.evaluation.counts.items():
        capped = f"[bold yellow]{count.capped}[/]" if count.capped else "0"
        counts.add_row(name, str(count.matched), str(count.selected), str(count.cap), capped)
    console.print(counts)
    listing = run.listing
    console.print(
        f"{len(run.queues)} queues, {listing.listed} jobs listed, {listing.described} described, "
        f"{run.evaluation.protected} protected."
    )
    for job_id, value in run.evaluation.invalid_tags.items():
        console.print(
            f"[yellow]warning[/yellow]: job {job_id} has an unreadable max-runtime tag {value!r}"
        )
