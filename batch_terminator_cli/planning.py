"""`batch-terminator plan`: what the policies would terminate now, and why. Read-only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from batch_terminator.batch_api import BatchApi
from batch_terminator.logic.durations import format_duration, format_limit
from batch_terminator.logic.matching import resource_name
from batch_terminator.logic.rules import AlarmFired, Scheduled
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.sweeping import PolicyRun, run_policies
from batch_terminator_cli.output import add_row, labelled, literal, say

# The only Batch calls a plan makes; a test holds it to this.
READ_ONLY_OPERATIONS = frozenset({"DescribeJobQueues", "ListJobs", "DescribeJobs"})


def make_plan(
    batch_client: Any, policies: PoliciesFile, now: datetime, alarm: str | None = None
) -> PolicyRun:
    trigger = AlarmFired(alarm) if alarm else Scheduled()
    return run_policies(BatchApi(batch_client), policies, now, trigger)


def _age(value: timedelta | None) -> str | None:
    return format_duration(value) if value is not None else None


def plan_as_json(run: PolicyRun) -> dict[str, Any]:
    return {
        "selections": [
            {
                "jobId": s.job.job_id,
                "jobName": s.job.job_name,
                "jobQueue": resource_name(s.job.job_queue or "-"),
                "status": ", ".join(x.value for x in s.statuses),
                "policy": s.policy,
                "age": _age(s.age),
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
    jobs = sum(s.size for s in selections)
    dry = sum(s.size for s in selections if s.dry_run)
    title = f"Would terminate now ({jobs - dry} jobs)"
    if dry:
        title += f"; dry run, would terminate but will not ({dry} jobs)"
    table = Table(title=literal(title))
    for column in ("job", "queue", "status", "policy", "age", "limit", "reason"):
        table.add_column(column, overflow="fold")
    for s in selections:
        name = s.job.job_name + (f" (array: {len(s.children)} jobs)" if s.children else "")
        policy = s.policy + (" [dry run]" if s.dry_run else "")
        limit = format_limit(s.limit) if s.limit is not None else "-"
        add_row(
            table,
            name,
            resource_name(s.job.job_queue or "-"),
            ", ".join(x.value for x in s.statuses),
            policy,
            _age(s.age) or "-",
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
        capped = literal(count.capped, "bold yellow" if count.capped else "")
        add_row(counts, name, count.matched, count.selected, count.cap, capped)
    console.print(counts)
    listing = run.listing
    evaluation = run.evaluation
    say(
        console,
        f"{len(run.queues)} queues, {listing.listed} jobs listed, {listing.described} described, "
        f"{evaluation.protected} protected, {evaluation.terminating} already terminating, "
        f"{evaluation.unknown + len(listing.unknown)} with facts Batch did not give.",
    )
    for job_id, value in evaluation.invalid_tags.items():
        say(
            console,
            labelled(
                "warning", f"job {job_id} has an unreadable max-runtime tag {value!r}", "yellow"
            ),
        )
    for job_id, error in evaluation.errors.items():
        say(console, labelled("warning", f"job {job_id} could not be judged: {error}", "yellow"))
