"""`batch-terminator audit`: read the audit lines back from the terminator's log group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from batch_terminator.logic.matching import resource_name
from batch_terminator.models.audit import AUDIT_MESSAGE, AuditRecord
from batch_terminator_cli.output import add_row

AUDIT_KEYS = tuple(f.name for f in fields(AuditRecord))


@dataclass(frozen=True)
class AuditQuery:
    """Which audit lines to read; every field given must equal the line's value."""

    since: timedelta
    job_id: str | None = None
    outcome: str | None = None
    policy: str | None = None
    source: str | None = None
    requested_by: str | None = None
    limit: int = 50

    def conditions(self) -> dict[str, str]:
        wanted = {
            "job_id": self.job_id,
            "outcome": self.outcome,
            "policy": self.policy,
            "source": self.source,
            "requested_by": self.requested_by,
        }
        return {key: value for key, value in wanted.items() if value is not None}

    def filter_pattern(self) -> str:
        """A CloudWatch Logs JSON filter pattern, so the service does the filtering."""
        terms = [f'$.message = "{AUDIT_MESSAGE}"'] + [
            f"$.{key} = {json.dumps(value)}" for key, value in self.conditions().items()
        ]
        return "{ " + " && ".join(terms) + " }"

    def matches(self, line: dict[str, Any]) -> bool:
        # Checked here too: the filter pattern narrows the scan, this decides.
        return line.get("message") == AUDIT_MESSAGE and all(
            line.get(key) == value for key, value in self.conditions().items()
        )


def read_audit(logs: Any, log_group: str, query: AuditQuery, now: datetime) -> list[dict[str, Any]]:
    """The newest `limit` matching audit lines, newest first."""
    start = int((now - query.since).timestamp() * 1000)
    found = [
        line
        for line in _lines(logs, log_group, query.filter_pattern(), start)
        if query.matches(line)
    ]
    found.sort(key=lambda line: line.get("timestamp") or "", reverse=True)
    return found[: query.limit]


def _lines(logs: Any, log_group: str, pattern: str, start_ms: int) -> Iterator[dict[str, Any]]:
    paginator = logs.get_paginator("filter_log_events")
    for page in paginator.paginate(
        logGroupName=log_group, startTime=start_ms, filterPattern=pattern
    ):
        for event in page.get("events", []):
            try:
                line = json.loads(event["message"])
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict):
                line.setdefault(
                    "timestamp", datetime.fromtimestamp(event["timestamp"] / 1000, UTC).isoformat()
                )
                yield line


def render_audit(console: Console, lines: list[dict[str, Any]]) -> None:
    table = Table(title=f"Audit: {len(lines)} decisions, newest first")
    for column in (
        "time",
        "outcome",
        "job",
        "queue",
        "status",
        "policy / source",
        "why (skipped) / error / reason",
        "by",
    ):
        table.add_column(column, overflow="fold")
    for line in lines:
        add_row(
            table,
            str(line.get("timestamp", ""))[:19],
            str(line.get("outcome")),
            str(line.get("job_name") or line.get("job_id") or "-"),
            resource_name(str(line.get("job_queue") or "-")),
            str(line.get("status_before") or "-"),
            f"{line.get('policy') or '-'} / {line.get('source')}",
            str(line.get("skip_reason") or line.get("error") or line.get("reason") or ""),
            str(line.get("requested_by") or "-"),
        )
    console.print(table)


def audit_fields(line: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": line.get("timestamp"), **{key: line.get(key) for key in AUDIT_KEYS}}
