"""Decision events: the audit record on the default bus, in PutEvents' limits, never raising."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_terminator.contract import DECISION_DETAIL_TYPE, EVENT_SOURCE, Outcome, Source
from batch_terminator.decisions import (
    CAP_SKIP_REASON,
    PUT_EVENTS_MAX_BYTES,
    PUT_EVENTS_MAX_ENTRIES,
    Member,
    cap_decision,
    chunks,
    decision_entry,
    entry_size,
    publish_decisions,
)
from batch_terminator.models.audit import AuditRecord

MEMBER = Member("222222222222", "eu-west-1", "aws")
JOB = "4c0b6b5e-8d1e-4c3e-9a55-0c1f4f1f2a10"

# DESIGN.md, "Audit record": every key present.
AUDIT_KEYS = {
    "outcome", "job_id", "job_name", "job_queue", "status_before", "status_reason_before",
    "reason", "policy", "age_seconds", "source", "requested_by", "request_id", "sender",
    "dry_run", "error", "skip_reason",
}  # fmt: skip


def record(job_id: str | None = JOB, reason: str = "runaway", **changes: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "outcome": Outcome.TERMINATED,
        "job_id": job_id,
        "job_name": "train",
        "job_queue": "arn:aws:batch:eu-west-1:222222222222:job-queue/gpu",
        "status_before": "RUNNING",
        "reason": reason,
        "policy": "gpu-runtime-cap",
        "source": Source.SWEEP,
        "requested_by": "batch-terminator/sweeper",
        "request_id": "run-1",
        "dry_run": False,
    }
    values.update(changes)
    return AuditRecord(**values)


def test_the_detail_is_the_audit_record_plus_account_and_region() -> None:
    entry = decision_entry(record(), MEMBER)
    detail = json.loads(entry["Detail"])
    assert (entry["Source"], entry["DetailType"]) == (EVENT_SOURCE, DECISION_DETAIL_TYPE)
    assert set(detail) == {f.name for f in fields(AuditRecord)} | {"account", "region"}
    assert set(detail) >= AUDIT_KEYS
    assert {k: detail[k] for k in ("account", "region")} == {
        "account": "222222222222",
        "region": "eu-west-1",
    }
    assert detail["outcome"] == "terminated"
    assert detail["source"] == "sweep"
    assert entry["Resources"] == [f"arn:aws:batch:eu-west-1:222222222222:job/{JOB}"]


def test_a_decision_without_a_job_names_no_resource() -> None:
    entry = decision_entry(record(job_id=None, outcome=Outcome.REJECTED), MEMBER)
    assert "Resources" not in entry
    assert json.loads(entry["Detail"])["job_id"] is None


def test_a_cap_is_a_skipped_decision_without_a_job() -> None:
    capped = cap_decision("gpu-runtime-cap", 37, 100, Source.SWEEP, run_id="r", dry_run=True)
    detail = json.loads(decision_entry(capped, MEMBER)["Detail"])
    assert detail["outcome"] == "skipped"
    assert detail["job_id"] is None
    assert detail["skip_reason"].startswith(CAP_SKIP_REASON)
    assert "37" in detail["skip_reason"]
    assert "100" in detail["skip_reason"]
    assert detail["dry_run"] is True
    assert detail["policy"] == "gpu-runtime-cap"


@given(st.lists(st.integers(min_value=1, max_value=120_000), max_size=60))
def test_chunks_keep_putevents_limits_and_order(reason_lengths: list[int]) -> None:
    entries = [
        decision_entry(record(reason="r" * n, request_id=str(i)), MEMBER)
        for i, n in enumerate(reason_lengths)
    ]
    calls = list(chunks(entries))
    assert [e for call in calls for e in call] == entries
    for call in calls:
        assert 1 <= len(call) <= PUT_EVENTS_MAX_ENTRIES
        assert len(call) == 1 or sum(map(entry_size, call)) <= PUT_EVENTS_MAX_BYTES


class FakeEvents:
    """PutEvents as EventBridge answers: HTTP 200 with an ErrorCode per refused entry."""

    def __init__(self, refuse: set[int] | None = None, raise_on: set[int] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse or set()  # call numbers whose entries are all refused
        self.raise_on = raise_on or set()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        number = len(self.calls)
        self.calls.append(Entries)
        if number in self.raise_on:
            raise ConnectionError("endpoint unreachable")
        if number in self.refuse:
            return {
                "FailedEntryCount": len(Entries),
                "Entries": [
                    {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
                    for _ in Entries
                ],
            }
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i in Entries]}


def test_refused_entries_are_sent_once_more() -> None:
    events = FakeEvents(refuse={0})
    published = publish_decisions(events, [record(), record()], MEMBER)
    assert (published.sent, published.failed) == (2, 0)
    assert events.calls[1] == events.calls[0]


def test_entries_refused_twice_are_counted_not_raised() -> None:
    events = FakeEvents(refuse={0, 1})
    published = publish_decisions(events, [record()] * 3, MEMBER)
    assert (published.sent, published.failed) == (0, 3)
    assert published.error is not None
    assert "ThrottlingException" in published.error


@pytest.mark.parametrize("failing_call", [0, 1])
def test_a_call_that_raises_fails_its_entries_only(failing_call: int) -> None:
    events = FakeEvents(raise_on={failing_call})
    published = publish_decisions(events, [record()] * 15, MEMBER)
    failed = 10 if failing_call == 0 else 5
    assert (published.sent, published.failed) == (15 - failed, failed)
    assert published.error is not None
    assert "endpoint unreachable" in published.error


def test_nothing_is_started_when_time_is_out() -> None:
    events = FakeEvents()
    published = publish_decisions(events, [record()] * 3, MEMBER, time_left=lambda: False)
    assert events.calls == []
    assert published.failed == 3
