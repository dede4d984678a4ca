"""Decision events: every audit record, also published on the account's default EventBridge bus.

Source `batch-terminator`, detail-type `Batch Job Termination Decision`, detail the audit record's
keys (every key, null where it does not apply) plus `account` and `region`. A member account's
forwarding rule sends them to the fleet's central bus, so one audit answers for every account and
region. The function's own log line stays the record of truth: publishing is best effort, never
fails a batch or a sweep, and what could not be published is logged and counted
(`DecisionEventsFailed`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from batch_terminator.clients import events_client
from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    DECISION_DETAIL_TYPE,
    EVENT_SOURCE,
    PUBLISH_DECISIONS_ENV,
    REGION_ENV,
    Outcome,
)
from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.request import partition_of

# PutEvents takes 1 to 10 entries a call, of at most 256 KB in all, each entry's size counted as
# the UTF-8 bytes of Source, DetailType, Detail and each Resources ARN, plus 14 for a Time
# (EventBridge user guide, "Calculating Amazon EventBridge PutEvents event entry size"; API
# reference, PutEvents: Entries, 1 to 10 items).
PUT_EVENTS_MAX_ENTRIES: Final = 10
PUT_EVENTS_MAX_BYTES: Final = 256 * 1024
DECISION_EVENTS_FAILED: Final = "DecisionEventsFailed"


@dataclass(frozen=True)
class Member:
    """Where the decisions were made: 12-digit account id, region name, partition (`aws`...)."""

    account: str
    region: str
    partition: str


def decision_detail(record: AuditRecord, member: Member) -> dict[str, Any]:
    """The event's detail: the audit record's keys, then `account` and `region`."""
    return {**record.fields(), "account": member.account, "region": member.region}


def decision_entry(record: AuditRecord, member: Member) -> dict[str, Any]:
    """One PutEvents entry (default bus); `Resources` names the job's ARN when its id is known."""
    entry: dict[str, Any] = {
        "Source": EVENT_SOURCE,
        "DetailType": DECISION_DETAIL_TYPE,
        "Detail": json.dumps(decision_detail(record, member), separators=(",", ":")),
    }
    if record.job_id:
        entry["Resources"] = [
            f"arn:{member.partition}:batch:{member.region}:{member.account}:job/{record.job_id}"
        ]
    return entry


def entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it, in bytes (see PUT_EVENTS_MAX_BYTES)."""
    parts = [entry["Source"], entry["DetailType"], entry["Detail"], *entry.get("Resources", [])]
    return sum(len(part.encode("utf-8")) for part in parts) + (14 if "Time" in entry else 0)


def chunks(entries: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The entries in calls of at most PUT_EVENTS_MAX_ENTRIES and PUT_EVENTS_MAX_BYTES, in order.
    An entry too large alone is yielded alone (EventBridge refuses it as that entry's failure)."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        this = entry_size(entry)
        if chunk and (len(chunk) == PUT_EVENTS_MAX_ENTRIES or size + this > PUT_EVENTS_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += this
    if chunk:
        yield chunk


@dataclass(frozen=True)
class Published:
    """How many decision events were accepted, and how many were not (with the first error)."""

    sent: int
    failed: int
    error: str | None = None


def publish_decisions(
    events: Any,
    records: Iterable[AuditRecord],
    member: Member,
    *,
    time_left: Callable[[], bool] = lambda: True,
) -> Published:
    """PutEvents for `records` on the default bus, each failed entry retried once. Never raises:
    a call that fails (or is not started because `time_left()` is false) counts its entries as
    failed. The AWS SDK retries a throttled call itself; an entry EventBridge refuses in a 200
    answer (`FailedEntryCount`, an `ErrorCode` per entry) is sent once more."""
    sent = failed = 0
    first_error: str | None = None
    for chunk in chunks([decision_entry(record, member) for record in records]):
        pending = chunk
        for _attempt in range(2):
            if not time_left():
                first_error = first_error or "not published: the invocation is out of time"
                break
            try:
                answer = events.put_events(Entries=pending)
            except Exception as exc:  # any SDK or network error: counted and logged, never raised
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:500]
                break
            results = answer.get("Entries") or []
            refused = [
                (entry, result)
                for entry, result in zip(pending, results, strict=False)
                if result.get("ErrorCode")
            ]
            # An answer that lists fewer results than entries leaves the rest unknown: refused.
            refused += [(entry, {"ErrorCode": "NoResult"}) for entry in pending[len(results) :]]
            sent += len(pending) - len(refused)
            pending = [entry for entry, _ in refused]
            if not pending:
                break
            first_error = (
                first_error
                or (
                    f"{refused[0][1].get('ErrorCode')}: {refused[0][1].get('ErrorMessage') or ''}"
                ).strip()
            )
        failed += len(pending)
    return Published(sent, failed, first_error)


CAP_SKIP_REASON: Final = "policy cap reached"


def cap_decision(
    policy: str, left: int, cap: int | None, source: Any, *, run_id: str | None, dry_run: bool
) -> AuditRecord:
    """A capped policy run as a decision: `skipped`, no job, `skip_reason` starting with
    CAP_SKIP_REASON and saying how many matching jobs were left (`left`) over `cap` (jobs)."""
    limit = f" {cap}" if cap is not None else ""
    return AuditRecord(
        outcome=Outcome.SKIPPED,
        job_id=None,
        job_name=None,
        job_queue=None,
        status_before=None,
        reason=None,
        policy=policy,
        source=source,
        requested_by=None,
        request_id=run_id,
        dry_run=dry_run,
        skip_reason=f"{CAP_SKIP_REASON}: maxPerRun{limit}, {left} more matching jobs left",
    )


@dataclass(frozen=True)
class DecisionEvents:
    """Where a function publishes its decisions: an EventBridge client and its member."""

    client: Any
    member: Member


def decision_events_from_environment() -> DecisionEvents | None:
    """The function's publisher when the stack turned publishing on (PUBLISH_DECISIONS=true) and
    the account and region are known; otherwise None (nothing is published)."""
    if os.environ.get(PUBLISH_DECISIONS_ENV, "").lower() != "true":
        return None
    account, region = os.environ.get(ACCOUNT_ID_ENV), os.environ.get(REGION_ENV)
    if not account or not region:
        # Said once per container, never silent: the stack sets both on every function.
        logging.getLogger(__name__).warning(
            "decision events are not published: %s is %s, %s is %s",
            ACCOUNT_ID_ENV,
            account or "not set",
            REGION_ENV,
            region or "not set",
        )
        return None
    return DecisionEvents(events_client(), Member(account, region, partition_of(region)))
