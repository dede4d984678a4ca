"""`batch-terminator audit`: read the audit lines back from the terminator's log group.

On AWS, a CloudWatch Logs Insights query (StartQuery, then GetQueryResults until it completes):
it filters and sorts in the service, fast over long windows and many lines, but returns at most
10,000 rows a query. Where Insights is not available (an endpoint that does not implement it, a
caller without logs:StartQuery, or one that ignores the query's filter, as the emulator's does),
FilterLogEvents with a JSON filter pattern, read to the end and sorted here.

`audit --central` reads the fleet's central log group the same way (`AuditQuery.central`): each
message there is a whole decision event (EventBridge's CloudWatch Logs target stores the event),
its audit keys under `detail`, and the member's `account` and `region` beside them.
EventBridge retries a target's delivery ("Retrying event delivery in Amazon EventBridge",
EventBridge user guide: at least once, up to 24 hours), so the log group can hold one event
twice with the same event `id`: both readings keep each event id once (Insights with `dedup id`,
FilterLogEvents here), and the event id is the audit line's `event_id`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batch_terminator.contract import DECISION_DETAIL_TYPE, EVENT_SOURCE
from batch_terminator.logic.matching import resource_name
from batch_terminator.models.audit import AUDIT_MESSAGE, AuditRecord
from batch_terminator_cli.output import add_row

AUDIT_KEYS = tuple(f.name for f in fields(AuditRecord))
# GetQueryResults returns at most 10,000 rows; a query's `limit` is at most 10,000.
INSIGHTS_MAX_ROWS = 10_000
INSIGHTS_FINISHED = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})
# Errors after which the FilterLogEvents reading still works (no Insights there, or no right to it).
_NO_INSIGHTS = frozenset(
    {
        "UnknownOperationException",
        "InvalidAction",
        "NotImplemented",
        "InternalFailure",
        "AccessDeniedException",
        "LimitExceededException",
        "ServiceUnavailableException",
    }
)

Progress = Callable[[str, dict[str, Any]], None]
Note = Callable[[str], None]


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class AuditQuery:
    """Which audit lines to read; every field given must equal the line's value.

    `since`: how far back from now; `limit`: at most this many lines, newest first."""

    since: timedelta
    job_id: str | None = None
    outcome: str | None = None
    policy: str | None = None
    source: str | None = None
    requested_by: str | None = None
    limit: int = 50
    request_id: str | None = None
    # Any of these jobs (FilterLogEvents only: `status` and `request --wait`).
    any_job: tuple[str, ...] = ()
    # The fleet's central log group: decision events, the audit keys under `detail`.
    central: bool = False

    def conditions(self) -> dict[str, str]:
        wanted = {
            "job_id": self.job_id,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "policy": self.policy,
            "source": self.source,
            "requested_by": self.requested_by,
        }
        return {key: value for key, value in wanted.items() if value is not None}

    def filter_pattern(self) -> str:
        """A CloudWatch Logs JSON filter pattern, so the service does the filtering (for the
        central log group, on the event's source; `matches` checks its detail-type)."""
        at = "$.detail." if self.central else "$."
        first = f'$.source = "{EVENT_SOURCE}"' if self.central else f'$.message = "{AUDIT_MESSAGE}"'
        terms = [first] + [
            f"{at}{key} = {json.dumps(value)}" for key, value in self.conditions().items()
        ]
        if self.any_job:
            terms.append(
                "(" + " || ".join(f"{at}job_id = {json.dumps(j)}" for j in self.any_job) + ")"
            )
        return "{ " + " && ".join(terms) + " }"

    def insights_query(self) -> str:
        """The Logs Insights query: the matching lines, newest first, at most `limit` (and at
        most the 10,000 rows Insights returns)."""
        if self.central:
            terms = [
                f"source = {_literal(EVENT_SOURCE)}",
                f"`detail-type` = {_literal(DECISION_DETAIL_TYPE)}",
            ] + [f"detail.{key} = {_literal(value)}" for key, value in self.conditions().items()]
        else:
            terms = [f"message = {_literal(AUDIT_MESSAGE)}"] + [
                f"{key} = {_literal(value)}" for key, value in self.conditions().items()
            ]
        # `dedup` keeps the first line of each event id in the sort order (lines without an id
        # are all kept); only `limit` may follow it ("dedup", CloudWatch Logs Insights query
        # syntax).
        once = " | dedup id" if self.central else ""
        return (
            "fields @timestamp, @message"
            f" | filter {' and '.join(terms)}"
            " | sort @timestamp desc"
            f"{once}"
            f" | limit {min(self.limit, INSIGHTS_MAX_ROWS)}"
        )

    def matches(self, line: dict[str, Any]) -> bool:
        # Checked here too: the service narrows the scan, this decides.
        if self.central:
            detail = line.get("detail")
            return (
                line.get("source") == EVENT_SOURCE
                and line.get("detail-type") == DECISION_DETAIL_TYPE
                and isinstance(detail, dict)
                and all(detail.get(key) == value for key, value in self.conditions().items())
                and (not self.any_job or detail.get("job_id") in self.any_job)
            )
        return (
            line.get("message") == AUDIT_MESSAGE
            and all(line.get(key) == value for key, value in self.conditions().items())
            and (not self.any_job or line.get("job_id") in self.any_job)
        )


def decision_line(event: dict[str, Any]) -> dict[str, Any]:
    """A decision event as an audit line: its detail (the audit record's keys), the member's
    `account` and `region` (the event's own, which EventBridge sets), its `time` as
    `timestamp`, and its `id` as `event_id` (None when the event has none)."""
    detail = event.get("detail")
    return {
        **(detail if isinstance(detail, dict) else {}),
        "timestamp": event.get("time") or event.get("timestamp"),
        "account": event.get("account"),
        "region": event.get("region"),
        "event_id": _event_id(event),
    }


def _event_id(event: dict[str, Any]) -> str | None:
    value = event.get("id")
    return value if isinstance(value, str) and value else None


def once_per_event(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events` (decision events, in order) with each event id once: the first line of an id
    is kept, later ones are EventBridge's retried deliveries of the same event. Events without
    an id (not EventBridge's) are all kept."""
    seen: set[str] = set()
    kept = []
    for event in events:
        event_id = _event_id(event)
        if event_id is not None:
            if event_id in seen:
                continue
            seen.add(event_id)
        kept.append(event)
    return kept


def _literal(value: str) -> str:
    """A Logs Insights string literal (double quotes, backslash escapes)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class AuditResult:
    """The lines found (newest first), how they were read (`insights` or `filter`), whether
    Insights' 10,000-row limit cut them, and the records Insights scanned (None by filter)."""

    lines: list[dict[str, Any]]
    via: str
    truncated: bool = False
    records_scanned: int | None = None


class InsightsQueryEnded(Exception):
    """A Logs Insights query ended without its results: `status` is Failed, Cancelled, Timeout
    (a query runs at most 60 minutes) or Unknown; `since` is the window it read."""

    def __init__(self, status: str, since: timedelta) -> None:
        self.status = status
        self.since = since
        hours = since.total_seconds() / 3600
        super().__init__(
            f"the Logs Insights query ended {status} after reading the last {hours:g} h: "
            "give a narrower --since (or filter by --job-id, --policy, --outcome) and try again"
        )


def read_audit(
    logs: Any,
    log_group: str,
    query: AuditQuery,
    now: datetime,
    *,
    insights: bool = True,
    on_progress: Progress = _ignore,
    note: Note = _ignore,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> AuditResult:
    """The newest `query.limit` matching audit lines, newest first.

    With `insights`, a Logs Insights query (`on_progress(status, statistics)` after each poll);
    where that is not available, FilterLogEvents (`note` says why, once). Raises botocore's
    ClientError (the log group does not exist, no right to read it) and BotoCoreError;
    InsightsQueryEnded when the query ends Failed, Cancelled, Timeout or Unknown."""
    start = now - query.since
    if insights:
        try:
            result = _read_insights(
                logs, log_group, query, start, now, on_progress, poll_seconds, sleep
            )
        except NotImplementedError:  # moto in this process: no such operation
            note("Logs Insights is not available at this endpoint: reading with FilterLogEvents")
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code not in _NO_INSIGHTS and status not in (404, 500, 501):
                raise
            note(f"Logs Insights is not available ({code or status}): reading with FilterLogEvents")
        else:
            if result is not None:
                return _viewed(query, result)
            note(
                "this endpoint's Logs Insights ignored the query's filter: reading with FilterLogEvents"
            )
    found = [
        line
        for line in _lines(logs, log_group, query.filter_pattern(), int(start.timestamp() * 1000))
        if query.matches(line)
    ]
    found.sort(key=lambda line: str(line.get("timestamp") or ""), reverse=True)
    if query.central:
        found = once_per_event(found)
    return _viewed(query, AuditResult(found[: query.limit], "filter"))


def _viewed(query: AuditQuery, result: AuditResult) -> AuditResult:
    """Central results as audit lines (`decision_line`); others as they are."""
    if not query.central:
        return result
    return replace(result, lines=[decision_line(line) for line in result.lines])


def _read_insights(
    logs: Any,
    log_group: str,
    query: AuditQuery,
    start: datetime,
    end: datetime,
    on_progress: Progress,
    poll_seconds: float,
    sleep: Callable[[float], None],
) -> AuditResult | None:
    """None when the service returned lines the filter excludes (it did not apply it)."""
    query_id = logs.start_query(
        logGroupName=log_group,
        startTime=int(start.timestamp()),
        endTime=int(end.timestamp()) + 1,
        queryString=query.insights_query(),
        limit=min(query.limit, INSIGHTS_MAX_ROWS),
    )["queryId"]
    try:
        while True:
            response = logs.get_query_results(queryId=query_id)
            status = str(response.get("status", "Unknown"))
            statistics = dict(response.get("statistics") or {})
            on_progress(status, statistics)
            if status in INSIGHTS_FINISHED:
                break
            sleep(poll_seconds)
    except KeyboardInterrupt:
        logs.stop_query(queryId=query_id)
        raise
    if status != "Complete":
        raise InsightsQueryEnded(status, since=end - start)
    lines: list[dict[str, Any]] = []
    for row in response.get("results", []):
        cells = {cell.get("field"): cell.get("value") for cell in row}
        line = _parse(str(cells.get("@message") or ""), _insights_time(cells.get("@timestamp")))
        if line is None or not query.matches(line):
            return None
        lines.append(line)
    lines.sort(key=lambda line: str(line.get("timestamp") or ""), reverse=True)
    if query.central:  # the query's `dedup id` did this; an endpoint may not have
        lines = once_per_event(lines)
    scanned = statistics.get("recordsScanned")
    return AuditResult(
        lines[: query.limit],
        "insights",
        truncated=len(lines) >= INSIGHTS_MAX_ROWS,
        records_scanned=int(scanned) if scanned is not None else None,
    )


def _insights_time(value: object) -> datetime | None:
    """@timestamp: `2026-11-29 16:30:06.676` (UTC) from Insights; ms since the epoch elsewhere."""
    if value is None:
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse(message: str, at: datetime | None) -> dict[str, Any] | None:
    try:
        line = json.loads(message)
    except json.JSONDecodeError:
        return None
    if not isinstance(line, dict):
        return None
    if at is not None:
        line.setdefault("timestamp", at.isoformat())
    return line


def _lines(logs: Any, log_group: str, pattern: str, start_ms: int) -> Iterator[dict[str, Any]]:
    paginator = logs.get_paginator("filter_log_events")
    for page in paginator.paginate(
        logGroupName=log_group, startTime=start_ms, filterPattern=pattern
    ):
        for event in page.get("events", []):
            line = _parse(event["message"], datetime.fromtimestamp(event["timestamp"] / 1000, UTC))
            if line is not None:
                yield line


def _when(line: dict[str, Any]) -> str:
    """`YYYY-MM-DD HH:MM:SS` of the line's timestamp (as written: the log's own format)."""
    return str(line.get("timestamp") or "").replace("T", " ")[:19]


def _details(line: dict[str, Any]) -> str:
    name = line.get("job_name") or "-"
    queue = resource_name(str(line.get("job_queue") or "-"))
    via = f"{line.get('policy') or '-'}/{line.get('source') or '-'}"
    why = line.get("skip_reason") or line.get("error") or line.get("reason") or ""
    by = line.get("requested_by")
    parts = [f"{name} on {queue}", f"{line.get('status_before') or '-'}", via, str(why)]
    if by:
        parts.append(f"by {by}")
    return " · ".join(part for part in parts if part)


def render_audit(console: Console, result: AuditResult) -> None:
    """A table readable in 80 columns: each job id whole on its own line, the decision's details
    folded under it."""
    lines = result.lines
    table = Table(
        title=f"Audit: {len(lines)} decisions, newest first",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("time (UTC)", overflow="fold", max_width=10)
    table.add_column("outcome", overflow="fold", max_width=10)
    table.add_column("job id / job, status, policy/source, why, by", overflow="fold", min_width=40)
    for line in lines:
        add_row(
            table,
            _when(line),
            str(line.get("outcome")),
            Text.assemble((str(line.get("job_id") or "-"), "bold"), "\n", (_details(line), "dim")),
        )
    console.print(table)


def render_text(lines: list[dict[str, Any]]) -> str:
    """One tab-separated line per decision (the AWS CLI's text output)."""
    columns = ("timestamp", "outcome", "job_id", "job_name", "job_queue", "policy", "source")
    rows = []
    for line in lines:
        why = line.get("skip_reason") or line.get("error") or line.get("reason")
        cells = [line.get(key) for key in columns] + [why, line.get("requested_by")]
        rows.append("\t".join(_text_cell(cell) for cell in cells))
    return "\n".join(rows)


def _text_cell(value: object) -> str:
    return "None" if value is None else " ".join(str(value).split())


def audit_fields(line: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": line.get("timestamp"), **{key: line.get(key) for key in AUDIT_KEYS}}


def fleet_audit_fields(line: dict[str, Any]) -> dict[str, Any]:
    """A fan-out or central audit line: `account` and `region` first, then as `audit_fields`;
    a central line (`decision_line`) also has its decision event's `event_id`."""
    fields_ = {"account": line.get("account"), "region": line.get("region"), **audit_fields(line)}
    if "event_id" in line:
        fields_["event_id"] = line["event_id"]
    return fields_


def render_fleet_audit(console: Console, rows: list[dict[str, Any]], title: str) -> None:
    """One table of decisions from several members, readable in 80 columns: account and region
    first, the outcome over its time, each job id whole over the decision's details; a member
    that could not be asked is a row with its error."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("account", no_wrap=True)
    table.add_column("region", overflow="fold", max_width=14)
    table.add_column("outcome / time (UTC)", overflow="fold", max_width=11)
    table.add_column("job id / job, status, policy/source, why, by", overflow="fold", min_width=36)
    for row in rows:
        if "error" in row and "outcome" not in row:
            add_row(
                table,
                row.get("account"),
                row.get("region"),
                Text("unreachable", style="bold red"),
                Text(f"profile {row.get('profile') or '(default)'}: {row['error']}", style="red"),
            )
            continue
        add_row(
            table,
            row.get("account"),
            row.get("region"),
            Text.assemble(str(row.get("outcome")), "\n", (_when(row).replace(" ", "\n"), "dim")),
            Text.assemble((str(row.get("job_id") or "-"), "bold"), "\n", (_details(row), "dim")),
        )
    console.print(table)


def render_fleet_text(rows: list[dict[str, Any]]) -> str:
    """`render_text`'s lines with account and region first; an unreachable member's line is
    `<account> <region> ERROR <profile> <error>`."""
    lines = []
    for row in rows:
        if "error" in row and "outcome" not in row:
            cells = [
                row.get("account"),
                row.get("region"),
                "ERROR",
                row.get("profile"),
                row["error"],
            ]
            lines.append("\t".join(_text_cell(cell) for cell in cells))
        else:
            where = "\t".join(_text_cell(row.get(key)) for key in ("account", "region"))
            lines.append(f"{where}\t{render_text([row])}")
    return "\n".join(lines)
