"""`batch-terminator plan`: what the policies would terminate now, and why. Read-only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich import box
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
    """The next sweep's decisions (or an alarm's, with `alarm`), computed with read-only Batch
    calls. Raises BatchCallFailed and botocore errors."""
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


def plan_as_text(run: PolicyRun) -> str:
    """One tab-separated line per selection (the AWS CLI's text output)."""
    rows = []
    for item in plan_as_json(run)["selections"]:
        cells = [
            item["jobId"],
            item["jobName"],
            item["jobQueue"],
            item["status"],
            item["policy"],
            item["age"],
            item["limit"],
            item["dryRun"],
            item["reason"],
        ]
        rows.append("\t".join("None" if c is None else " ".join(str(c).split()) for c in cells))
    return "\n".join(rows)


def render_plan(console: Console, run: PolicyRun) -> None:
    """The selections (job ids whole, the other cells folded to fit 80 columns) and the counts."""
    selections = run.evaluation.selections
    jobs = sum(s.size for s in selections)
    dry = sum(s.size for s in selections if s.dry_run)
    title = f"Would terminate now ({jobs - dry} jobs)"
    if dry:
        title += f"; dry run, would terminate but will not ({dry} jobs)"
    table = Table(title=literal(title), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("job id", no_wrap=True, min_width=36)
    table.add_column("job on queue, status age/limit; policy: reason", overflow="fold")
    for s in selections:
        name = s.job.job_name + (f" (array: {len(s.children)} jobs)" if s.children else "")
        policy = s.policy + (" [dry run]" if s.dry_run else "")
        limit = format_limit(s.limit) if s.limit is not None else "-"
        statuses = ", ".join(x.value for x in s.statuses)
        add_row(
            table,
            s.job.job_id,
            f"{name} on {resource_name(s.job.job_queue or '-')}, {statuses} "
            f"{_age(s.age) or '-'}/{limit}; {policy}: {s.reason}",
        )
    console.print(table)
    counts = Table(title="Per policy", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in (
        "policy",
        "matched",
        "would terminate",
        "max per run",
        "left for later (capped)",
    ):
        counts.add_column(column, overflow="fold")
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


def fleet_plan_as_text(rows: list[dict[str, Any]]) -> str:
    """`plan_as_text`'s lines with account and region first; an unreachable member's line is
    `<account> <region> ERROR <profile> <error>`."""
    keys = ("jobId", "jobName", "jobQueue", "status", "policy", "age", "limit", "dryRun", "reason")
    lines = []
    for row in rows:
        if "error" in row:
            cells = [row["account"], row["region"], "ERROR", row.get("profile"), row["error"]]
        else:
            cells = [row["account"], row["region"], *(row.get(key) for key in keys)]
        lines.append("\t".join("None" if c is None else " ".join(str(c).split()) for c in cells))
    return "\n".join(lines)


def render_fleet_plan(console: Console, answers: list[Any]) -> None:
    """One table for every member (`fleet_cli.Answer`s): account and region first; a member
    with nothing to terminate says so, one that could not be asked shows its error."""
    from rich.text import Text

    selections = [row for answer in answers for row in answer.rows]
    dry = sum(1 for row in selections if row["dryRun"])
    title = f"Would terminate now, {len(answers)} members ({len(selections) - dry} selections)"
    if dry:
        title += f"; dry run, would terminate but will not ({dry} selections)"
    table = Table(title=literal(title), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("account", no_wrap=True)
    table.add_column("region", no_wrap=True)
    table.add_column(
        "job id / job on queue, status age/limit; policy: reason", overflow="fold", min_width=36
    )
    for answer in answers:
        if answer.error is not None:
            said = f"unreachable: profile {answer.target.profile or '(default)'}: {answer.error}"
            add_row(table, answer.account, answer.region, Text(said, "red"))
            continue
        if not answer.rows:
            add_row(table, answer.account, answer.region, "nothing to terminate")
        for row in answer.rows:
            name = row["jobName"] + (
                f" (array: {row['arrayChildren']} jobs)" if row["arrayChildren"] else ""
            )
            policy = row["policy"] + (" [dry run]" if row["dryRun"] else "")
            details = (
                f"{name} on {row['jobQueue']}, {row['status']} {row['age'] or '-'}/"
                f"{row['limit'] or '-'}; {policy}: {row['reason']}"
            )
            add_row(
                table,
                answer.account,
                answer.region,
                Text.assemble((str(row["jobId"]), "bold"), "\n", details),
            )
    console.print(table)
