"""Claims, confirmations and the pause, where a confirmation could attribute a stop to itself:

- a confirmation (a redelivery finds the job stopped with its reason, after its own call whose
  answer was lost) never takes over another request's claim that may have made the call;
- the pause stops new calls only: a paused redelivery still confirms what its earlier call
  stopped, and writes nothing more for jobs it settled;
- a call's audit lines are written before any ledger write, so a function stopped during a
  slow termination-record write keeps its `terminated` line.

On the emulator, through the terminator's real code path (`terminator.process_event`).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_terminator import clients
from batch_terminator.handlers import terminator
from batch_terminator.ledger import (
    ACCEPTED,
    CLAIMED,
    UNCERTAIN,
    ClaimHolder,
    ClaimWanted,
    Ledger,
    LedgerUnavailable,
    TerminationRecord,
    termination_key,
)
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.lambda_runtime import LambdaContext, capture_logs
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox

POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training"]},
    "policies": [
        {
            "name": "runaway",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "1h"},
        }
    ],
}
REASON = "batch-terminator: policy runaway"


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(POLICIES)


@dataclass
class Message:
    """One SQS message, delivered to one invocation at a time (`deliver`)."""

    body: dict[str, Any]
    source: str | None = None
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deliveries: int = 0

    def event(self) -> dict[str, Any]:
        self.deliveries += 1
        attributes = (
            {"source": {"stringValue": self.source, "dataType": "String"}} if self.source else {}
        )
        record = {
            "messageId": self.message_id,
            "receiptHandle": str(uuid.uuid4()),
            "body": json.dumps(self.body),
            "attributes": {
                "ApproximateReceiveCount": str(self.deliveries),
                "SenderId": "AROAEXAMPLE:tester",
            },
            "messageAttributes": attributes,
            "eventSource": "aws:sqs",
        }
        return {"Records": [record]}


class Stopped(BaseException):
    """Lambda stops the function (its timeout): nothing after this point runs."""


def deliver(box: Sandbox, message: Message) -> list[str] | None:
    """One invocation for one delivery of `message`: the ids it reported failed, or None when
    the function was stopped. Its audit lines go to `box.audit` either way."""
    with capture_logs(terminator.logger) as logs, redirect_stdout(io.StringIO()):
        try:
            response = terminator.process_event(
                message.event(), terminator.dependencies(), LambdaContext()
            )
        except Stopped:
            return None
        finally:
            box.audit.extend(logs.audit())
            terminator.metrics.clear_metrics()
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def terminated(box: Sandbox, job: str) -> list[dict[str, Any]]:
    return [a for a in box.audit if a["outcome"] == "terminated" and a["job_id"] == job]


def claim_item(box: Sandbox, job: str) -> dict[str, Any]:
    item = (
        box.session.client("dynamodb")
        .get_item(TableName=box.deployment.ledger_table, Key={"pk": {"S": termination_key(job)}})
        .get("Item", {})
    )
    return {k: next(iter(v.values())) for k, v in item.items()}


def end_lease(box: Sandbox, job: str) -> None:
    """The claim's invocation has ended (its lease is over), as it would a few minutes on."""
    box.session.client("dynamodb").update_item(
        TableName=box.deployment.ledger_table,
        Key={"pk": {"S": termination_key(job)}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time() * 1000) - 1)}},
    )


def running(world: BatchWorld, name: str) -> str:
    return world.job(name, "gpu-training", "RUNNING", age=timedelta(hours=3))


# -- 1. a confirmation never takes over another request's claim that made a call --------------
def test_a_confirmation_does_not_take_over_the_claim_of_the_request_that_terminated_it(
    pipeline: Sandbox,
    world: BatchWorld,
    control: BatchControl,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A's call timed out without acting (claim uncertain); B, same reason, claims, terminates,
    and cannot write its termination record (its claim stays in flight). After B's lease, A's
    redelivery finds the job stopped with its reason: B's is the only `terminated` line."""
    job = running(world, "train")
    a = Message({"jobId": job, "reason": "stop", "requestId": "A"})
    b = Message({"jobId": job, "reason": "stop", "requestId": "B"})
    control.timeout("TerminateJobs", applied=False)
    assert deliver(pipeline, a) == [a.message_id]
    assert claim_item(pipeline, job)["claim"] == UNCERTAIN

    original = Ledger.record_terminations

    def unwritable(self: Ledger, records: Any) -> None:
        monkeypatch.setattr(Ledger, "record_terminations", original)
        raise LedgerUnavailable("ProvisionedThroughputExceededException: injected")

    monkeypatch.setattr(Ledger, "record_terminations", unwritable)
    assert deliver(pipeline, b) == []
    assert (claim_item(pipeline, job)["claim"], claim_item(pipeline, job)["requestId"]) == (
        CLAIMED,
        "B",
    )
    control.settle()
    end_lease(pipeline, job)

    assert deliver(pipeline, a) == []

    assert [line["request_id"] for line in terminated(pipeline, job)] == ["B"]
    [last] = [line for line in pipeline.audit if line["request_id"] == "A"][-1:]
    assert last["outcome"] == "skipped"
    assert last["skip_reason"].startswith(
        f"already terminated by request B (message {b.message_id}"
    )
    assert len(control.terminations()) == 1


# The claim states a confirmation can meet, made by the request that called (`caller`).
_STATES = ("none", "given back", CLAIMED, UNCERTAIN, ACCEPTED, "of before claims")


@dataclass(frozen=True)
class _Found:
    state: str
    caller_is_confirmer: bool
    lease_ended: bool
    earlier_attempt: bool


def _put_claim(ledger: Ledger, table: str, job: str, found: _Found, caller: ClaimHolder) -> None:
    """The item the caller's claim left: written as `claim_termination` and its follow-ups
    write it (a claim, then `mark_uncertain`, `record_terminations` or `release_termination`)."""
    if found.state == "none":
        return
    now = int(time.time() * 1000)
    lease = now - 60_000 if found.lease_ended else now + 600_000
    attempt = 0 if found.earlier_attempt else 1
    if found.state == "of before claims":
        ledger.record_terminations([TerminationRecord(job, now, "runaway", caller.request_id)])
        # A record of before claims existed: no claim, owner, message or attempt.
        ledger._client.update_item(
            TableName=table,
            Key={"pk": {"S": termination_key(job)}},
            UpdateExpression="REMOVE #claim, #owner, messageId, attempt",
            ExpressionAttributeNames={"#claim": "claim", "#owner": "owner"},
        )
        return
    taken = ledger.claim_termination(ClaimWanted(job, attempt, now), caller, lease)
    assert taken.state == "ours"
    if found.state == "given back":
        ledger.release_termination(job, caller.owner)
    elif found.state == UNCERTAIN:
        ledger.mark_uncertain(job, caller.owner)
    elif found.state == ACCEPTED:
        record = TerminationRecord(
            job, now, None, caller.request_id, None, caller.message_id, caller.owner, attempt
        )
        ledger.record_terminations([record])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    found=st.builds(
        _Found,
        state=st.sampled_from(_STATES),
        caller_is_confirmer=st.booleans(),
        lease_ended=st.booleans(),
        earlier_attempt=st.booleans(),
    ),
    confirmers=st.lists(
        st.tuples(st.sampled_from(["same", "other", "third"]), st.booleans()),
        min_size=1,
        max_size=4,
    ),
)
def test_confirmations_never_take_over_another_requests_call(
    pipeline: Sandbox, found: _Found, confirmers: list[tuple[str, bool]]
) -> None:
    """Whatever claim a request's call left on a job (none, given back, in flight with its
    lease running or ended, uncertain, accepted, a record of before claims, of an earlier
    attempt), and whichever deliveries then confirm the job one after another (the caller's
    message again, other requests with the same reason), each writing its termination record
    or stopped before it (its line written, its lease then over): at most one `terminated`
    line, and a confirmation takes only a claim of its own message, of an earlier attempt, or
    none."""
    deps = terminator.dependencies()
    ledger, table = deps.ledger, deps.ledger_table
    job = str(uuid.uuid4())
    caller_message = "same" if found.caller_is_confirmer else "caller"
    caller = ClaimHolder(uuid.uuid4().hex, caller_message, caller_message)
    _put_claim(ledger, table, job, found, caller)
    # The caller's own `terminated` line, for the attempt the confirmations read (1).
    ours_too = found.state == ACCEPTED and not found.earlier_attempt
    lines = 1 if ours_too or found.state == "of before claims" else 0
    now = int(time.time() * 1000)
    for message, records in confirmers:
        before = claim_item(pipeline, job)
        holder = ClaimHolder(uuid.uuid4().hex, message, message)
        answer = ledger.claim_termination(
            ClaimWanted(job, 1, now), holder, now + 600_000, confirming=True
        )
        others_call = (
            before.get("claim") in (CLAIMED, UNCERTAIN, ACCEPTED) or "acceptedAt" in before
        ) and before.get("messageId") != message
        if answer.state == "ours":
            assert not others_call or before.get("attempt") == "0", (before, message)
            lines += 1
            if records:
                record = TerminationRecord(job, now, None, message, None, message, holder.owner, 1)
                ledger.record_terminations([record])
            else:  # stopped after its line: its claim stays in flight until its lease ends
                end_lease(pipeline, job)
        elif answer.state == "accepted":
            assert answer.holder is not None
        else:
            assert answer.state == "held"
            assert before.get("claim") == CLAIMED
            assert int(before["leaseUntil"]) >= now
    assert lines <= 1
    nobody_called = found.state in ("none", "given back")
    if nobody_called or (found.earlier_attempt and found.state != "of before claims"):
        assert lines == 1  # no other call of this attempt: the first confirmer's line


# -- 2. the pause stops new calls only -------------------------------------------------------
def test_a_paused_redelivery_confirms_what_its_earlier_call_stopped(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """A sweep request's call acted, its answer lost; then `pause`. Its redelivery confirms the
    termination (`terminated`), the only line after the failed one."""
    job = running(world, "train")
    sweep = Message(
        {"jobId": job, "reason": REASON, "policy": "runaway", "requestId": "sweep-1"}, "sweep"
    )
    control.timeout("TerminateJobs", applied=True)
    assert deliver(pipeline, sweep) == [sweep.message_id]
    control.settle()
    pipeline.pause("incident")

    assert deliver(pipeline, sweep) == []

    outcomes = [(a["outcome"], a.get("skip_reason")) for a in pipeline.audit]
    assert outcomes == [("failed", None), ("terminated", None)]
    assert world.final(job)["statusReason"] == REASON
    assert claim_item(pipeline, job)["claim"] == ACCEPTED


def test_a_paused_redelivery_writes_nothing_more_for_settled_jobs(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """A policy request for three jobs: one terminated, one whose call acted unseen, one that
    Batch refused. Paused, its redelivery gives the first no second line, confirms the second
    and skips only the third as paused."""
    done, unseen, refused = (running(world, f"train-{i}") for i in range(3))
    control.fail_in_bulk(refused)
    sweep = Message(
        {"jobIds": [done, refused], "reason": REASON, "policy": "runaway", "requestId": "s"},
        "sweep",
    )
    other = Message(
        {"jobId": unseen, "reason": REASON, "policy": "runaway", "requestId": "t"}, "sweep"
    )
    assert deliver(pipeline, sweep) == [sweep.message_id]
    control.timeout("TerminateJobs", applied=True)
    assert deliver(pipeline, other) == [other.message_id]
    control.settle()
    pipeline.pause("incident")

    assert deliver(pipeline, sweep) == []
    assert deliver(pipeline, other) == []

    by_job: dict[str, list[tuple[str, str | None]]] = {}
    for line in pipeline.audit:
        by_job.setdefault(line["job_id"], []).append((line["outcome"], line.get("skip_reason")))
    assert by_job[done] == [("terminated", None)]
    assert by_job[unseen] == [("failed", None), ("terminated", None)]
    assert by_job[refused] == [("failed", None), ("skipped", "paused")]
    assert world.describe(refused)["status"] == "RUNNING"


# -- 3. lines before ledger writes ------------------------------------------------------------
@pytest.mark.parametrize("confirming", [False, True], ids=["call", "confirmation"])
def test_a_function_stopped_while_recording_keeps_its_terminated_line(
    pipeline: Sandbox,
    world: BatchWorld,
    control: BatchControl,
    monkeypatch: pytest.MonkeyPatch,
    confirming: bool,
) -> None:
    """Lambda stops the function while it writes the termination record after an accepted
    call (or a confirmation): the `terminated` line was written already."""
    job = running(world, "train")
    request = Message({"jobId": job, "reason": "stop", "requestId": "A"})
    if confirming:
        control.timeout("TerminateJobs", applied=True)
        assert deliver(pipeline, request) == [request.message_id]
        control.settle()

    def stopped(self: Ledger, records: Any) -> None:
        raise Stopped

    monkeypatch.setattr(Ledger, "record_terminations", stopped)
    assert deliver(pipeline, request) is None

    assert [line["request_id"] for line in terminated(pipeline, job)] == ["A"]
    # SQS delivers the message again, once the stopped invocation's lease is over: the job is
    # skipped (finished; or, after a confirmation, terminated by this very request).
    monkeypatch.undo()
    control.settle()
    end_lease(pipeline, job)
    assert deliver(pipeline, request) == []
    assert Counter(a["outcome"] for a in pipeline.audit)["terminated"] == 1


def test_a_ledger_request_fits_in_the_time_kept_after_the_last_call() -> None:
    """The ledger client's worst case (attempts of connect and read timeouts, and the backoff
    between them) fits in what the terminator keeps after its last Batch call."""
    config = clients.dynamodb_client().meta.config
    attempts = config.retries["total_max_attempts"]
    worst = attempts * (config.connect_timeout + config.read_timeout) + (attempts - 1)
    kept_seconds = terminator.RESERVE_MILLIS / 1000 - clients.CALL_WORST_CASE_SECONDS
    assert worst <= clients.LEDGER_CALL_WORST_CASE_SECONDS <= kept_seconds
