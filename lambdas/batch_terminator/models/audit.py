"""The audit record: one JSON log line per job decision (`"message": "termination"`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from batch_terminator.contract import Outcome, Source

AUDIT_MESSAGE: Final = "termination"


@dataclass(frozen=True)
class AuditRecord:
    outcome: Outcome
    job_id: str | None
    job_name: str | None
    job_queue: str | None
    status_before: str | None
    reason: str | None
    policy: str | None
    source: Source
    requested_by: str | None
    request_id: str | None
    dry_run: bool
    error: str | None = None
    # Why a job was skipped (not found, protected, queue not allowed, finished, precondition, dry run).
    skip_reason: str | None = None

    def fields(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["source"] = self.source.value
        return data
