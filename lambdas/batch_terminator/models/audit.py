"""The audit record: one JSON log line per job decision (`"message": "termination"`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

from batch_terminator.contract import Outcome, Source

AUDIT_MESSAGE: Final = "termination"


@dataclass(frozen=True)
class AuditRecord:
    """Every key is written, null when it does not apply (see `logging_setup.AuditFormatter`)."""

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
    # The job's statusReason before the decision: Batch overwrites it when it terminates the job,
    # and a blocked job's reason is otherwise lost.
    status_reason_before: str | None = None
    # The age (seconds in its current status) that a policy or a selector's minAge decided on.
    age_seconds: int | None = None
    # The SQS SenderId of the message: who really sent it, whatever `requestedBy` claims.
    sender: str | None = None
    # The SQS message the request came in.
    message_id: str | None = None

    def fields(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["source"] = self.source.value
        return data
