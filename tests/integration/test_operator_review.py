"""Operator tools under faults: a `failed` line with a delivery left is no outcome, a malformed
pause item is a pause that never breaks a command, a policies file is read at most one byte past
its cap whatever it is, and a Logs Insights query that ends without results is one clear line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_terminator.models.policies import PoliciesFile
from batch_terminator.pausing import (
    MAX_PAUSED_AT,
    PAUSE_KEY,
    Pause,
    pause_from_item,
    read_pause,
    write_pause,
)
from batch_terminator_cli import auditing, main, operating, policies_file
from batch_terminator_cli.sandbox import MAX_RECEIVE_COUNT, Sandbox
from tests.integration.cli_support import REGION, clean, run

# ---- 1. a failed line is final only when its request has no delivery left -----------------------


def _failed_once(stack: Sandbox) -> str:
    """A job whose request failed on its first delivery (one throttle) and is queued again."""
    job = stack.world.job("runaway", "gpu-training", "RUNNING", age=timedelta(hours=3))
    stack.send({"jobId": job, "reason": "stop it", "requestId": "op-1"})
    stack.control.throttle("TerminateJobs")
    stack.run_terminator(max_invocations=1)
    assert stack.outcome(job) == "failed"
    assert stack.queued() == 1  # SQS delivers it again
    return job


def test_status_shows_a_failed_line_with_a_delivery_left_as_pending(stack: Sandbox) -> None:
    job = _failed_once(stack)

    result = run("status", job, "--output", "json", *REGION)

    assert result.exit_code == 1, result.output
    [state] = json.loads(result.stdout)
    assert state["outcome"] == "pending"
    assert state["detail"].startswith("failed, will be retried: TooManyRequestsException")
    assert state["batchStatus"] == "RUNNING"
    assert "1 of 1 jobs have no decision yet" in result.stderr
    clean(result)

    stack.run_terminator()  # the next delivery terminates it
    after = run("status", job, "--output", "json", *REGION)
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)[0]["outcome"] == "terminated"


def test_status_wait_keeps_waiting_on_a_failed_line_with_a_delivery_left(
    stack: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0.2)
    job = _failed_once(stack)

    result = run("status", job, "--wait", "--timeout", "1", "--output", "text", *REGION)

    assert result.exit_code == 1, result.output
    assert result.stdout.split("\t")[:2] == [job, "pending"]
    assert "after 1 s" in result.stderr
    clean(result)


def test_request_wait_keeps_waiting_on_a_failed_line_with_a_delivery_left(
    stack: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch_terminator_cli import requesting

    monkeypatch.setattr(main, "_POLL_SECONDS", 0.2)
    job = stack.world.job("runaway", "gpu-training", "RUNNING", age=timedelta(hours=3))
    real_send = requesting.send

    def send_then_fail_once(*args: Any, **kwargs: Any) -> Any:
        sent = real_send(*args, **kwargs)
        stack.control.throttle("TerminateJobs")  # the first delivery fails, SQS keeps it
        stack.run_terminator(max_invocations=1)
        return sent

    monkeypatch.setattr(requesting, "send", send_then_fail_once)

    result = run(
        "request", job, "--reason", "stop", "--wait", "--timeout", "1", "--output", "text", *REGION
    )

    assert stack.outcome(job) == "failed"
    assert stack.queued() == 1
    assert result.exit_code == 1, result.output
    assert result.stdout.split("\t")[:3] == [
        job,
        "pending",
        "failed, will be retried: TooManyRequestsException: Injected TooManyRequestsException "
        "for TerminateJobs\n",
    ]
    assert "timed out" in result.stderr
    clean(result)


def test_a_failed_request_parked_in_the_dlq_is_final(stack: Sandbox) -> None:
    job = stack.world.job("runaway", "gpu-training", "RUNNING", age=timedelta(hours=3))
    stack.send({"jobId": job, "reason": "stop it", "requestId": "op-2"})
    stack.control.throttle("TerminateJobs", times=10 * MAX_RECEIVE_COUNT)
    stack.run_terminator()
    assert len(stack.dead_letters()) == 1  # the terminator parked it on its last delivery

    result = run("status", job, "--output", "json", *REGION)
    waited = run("status", job, "--wait", "--timeout", "5", "--output", "text", *REGION)

    assert result.exit_code == 0, result.output
    [state] = json.loads(result.stdout)
    assert state["outcome"] == "failed"
    assert state["detail"].startswith("failed: TooManyRequestsException")
    assert waited.exit_code == 0, waited.output
    assert waited.stdout.split("\t")[:2] == [job, "failed"]
    assert len(stack.dead_letters()) == 1  # read, not consumed


def test_a_failed_request_sqs_moved_to_the_dlq_is_final(stack: Sandbox) -> None:
    """SQS moves a message past maxReceiveCount itself, without the terminator's attributes:
    its body's requestId still names it."""
    job = _failed_once(stack)
    body = stack.sqs.receive_message(QueueUrl=stack.deployment.request_queue_url)["Messages"][0]
    stack.sqs.delete_message(
        QueueUrl=stack.deployment.request_queue_url, ReceiptHandle=body["ReceiptHandle"]
    )
    stack.sqs.send_message(QueueUrl=stack.deployment.dlq_url, MessageBody=body["Body"])

    result = run("status", job, "--output", "json", *REGION)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["outcome"] == "failed"


@settings(max_examples=60, deadline=None)
@given(
    in_dlq=st.sets(st.sampled_from(["m-1", "r-1", "m-2", "r-2", "other"])),
    message_id=st.sampled_from(["m-1", "m-2", None]),
    request_id=st.sampled_from(["r-1", "r-2", None]),
)
def test_job_states_failed_is_final_exactly_when_its_request_is_in_the_dlq(
    in_dlq: set[str], message_id: str | None, request_id: str | None
) -> None:
    job = "0f2d1f8e-0000-4000-8000-000000000000"
    line = {
        "message": "termination",
        "outcome": "failed",
        "job_id": job,
        "error": "boom",
        "message_id": message_id,
        "request_id": request_id,
        "status_before": "RUNNING",
        "timestamp": "t1",
    }
    calls: list[int] = []

    def parked() -> frozenset[str]:
        calls.append(1)
        return frozenset(in_dlq)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            operating,
            "read_audit",
            lambda *_a, **_k: auditing.AuditResult([line], "filter"),
        )
        [state] = operating.job_states(
            None,
            None,
            "g",
            [job],
            timedelta(hours=1),
            None,
            parked=parked,  # type: ignore[arg-type]
        )
    final = bool({message_id, request_id} & in_dlq - {None})
    assert state.known is final
    assert state.outcome == ("failed" if final else "pending")
    assert state.detail == ("failed: boom" if final else "failed, will be retried: boom")
    assert len(calls) == 1


# ---- 2. a malformed pause item is a pause in force, and never an error ----------------------------

_TEXT = st.text(max_size=30)
_SCALAR = st.one_of(
    st.builds(lambda v: {"S": v}, _TEXT),
    st.builds(lambda v: {"N": v}, _TEXT),
    st.builds(lambda v: {"N": str(v)}, st.integers(min_value=-(10**40), max_value=10**40)),
    st.builds(lambda v: {"N": repr(v)}, st.floats()),
    st.builds(lambda v: {"B": v}, st.binary(max_size=8)),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda v: {"SS": v}, st.lists(_TEXT, max_size=3)),
    st.builds(lambda v: {"NS": v}, st.lists(_TEXT, max_size=3)),
    st.dictionaries(_TEXT, _TEXT, max_size=2),
    st.none(),
    st.integers(),
    _TEXT,
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
        st.builds(lambda v: {"M": v}, st.dictionaries(_TEXT, inner, max_size=3)),
    ),
    max_leaves=6,
)
_ITEM = st.dictionaries(
    st.one_of(st.sampled_from(["pausedBy", "pausedAt", "reason"]), _TEXT), _VALUE, max_size=5
)


class OneItemTable:
    """A DynamoDB client with one table: GetItem, PutItem (as boto3's low-level client)."""

    def __init__(self, item: Any = None) -> None:
        self.item = item

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["Key"] == {"pk": {"S": PAUSE_KEY}}
        assert kwargs["ConsistentRead"] is True
        return {} if self.item is None else {"Item": self.item}

    def put_item(self, **kwargs: Any) -> None:
        self.item = kwargs["Item"]


def _well_formed(item: dict[str, Any]) -> bool:
    def string(name: str) -> bool:
        value = item.get(name)
        return isinstance(value, dict) and isinstance(value.get("S"), str)

    at = item.get("pausedAt")
    number = at.get("N") if isinstance(at, dict) else None
    return (
        string("pausedBy")
        and ("reason" not in item or string("reason"))
        and isinstance(number, str)
        and number.isascii()
        and number.isdigit()
        and int(number) <= MAX_PAUSED_AT
    )


@settings(max_examples=400, deadline=None)
@given(item=_ITEM)
def test_read_pause_never_raises_and_any_item_is_a_pause_in_force(item: dict[str, Any]) -> None:
    found = read_pause(OneItemTable({"pk": {"S": PAUSE_KEY}, **item}), "ledger")

    assert isinstance(found, Pause)  # fail closed: an item exists, the system is paused
    assert isinstance(found.paused_by, str)
    assert isinstance(found.reason, str)
    assert found.paused_at is None or 0 <= found.paused_at <= MAX_PAUSED_AT
    if _well_formed(item):
        assert found.malformed is None
        assert found.paused_by == item["pausedBy"]["S"]
        assert found.paused_at == int(item["pausedAt"]["N"])
    else:
        assert found.malformed
    shown = operating.pause_as_json(found)  # what `status` and `pause` print
    assert shown["paused"] is True
    json.dumps(shown)


@given(item=st.one_of(st.none(), st.integers(), _TEXT, st.lists(_TEXT)))
def test_an_item_that_is_not_a_map_is_a_malformed_pause(item: Any) -> None:
    found = pause_from_item(item)
    assert found.malformed == "the item is not a map" or "missing" in (found.malformed or "")


@given(
    paused_by=_TEXT,
    paused_at=st.integers(min_value=0, max_value=MAX_PAUSED_AT),
    reason=_TEXT,
)
def test_a_written_pause_reads_back_as_written(paused_by: str, paused_at: int, reason: str) -> None:
    table = OneItemTable()
    write_pause(table, "ledger", Pause(paused_by, paused_at, reason))
    assert read_pause(table, "ledger") == Pause(paused_by, paused_at, reason)


def test_no_item_is_no_pause() -> None:
    assert read_pause(OneItemTable(), "ledger") is None


@pytest.mark.parametrize(
    ("paused_at", "note"),
    [
        ({"N": "1.5"}, "pausedAt '1.5' is not a time"),
        ({"N": "99999999999999"}, "pausedAt '99999999999999' is not a time"),
        ({"S": "yesterday"}, "pausedAt is not a number"),
    ],
)
def test_status_and_pause_show_a_hand_written_malformed_pause(
    stack: Sandbox, paused_at: dict[str, str], note: str
) -> None:
    stack.session.client("dynamodb").put_item(
        TableName=stack.deployment.ledger_table,
        Item={
            "pk": {"S": PAUSE_KEY},
            "pausedBy": {"S": "alice"},
            "pausedAt": paused_at,
            "reason": {"S": "incident\n4711"},
        },
    )

    table = run("status", *REGION)
    as_json = run("status", "--output", "json", *REGION)
    summary = stack.run_sweeper()  # the policy paths read it as a pause in force

    assert table.exit_code == 0, table.output
    paused_lines = [line for line in table.stdout.splitlines() if line.startswith("PAUSED")]
    assert paused_lines == ["PAUSED since an unreadable time by alice: incident 4711"], table.stdout
    [malformed] = [line for line in table.stdout.splitlines() if "malformed" in line]
    assert note in malformed
    state = json.loads(as_json.stdout)
    assert (state["paused"], state["pausedAt"], state["pausedBy"]) == (True, None, "alice")
    assert note in state["malformed"]
    assert summary["paused"] is True

    rewritten = run("pause", "--reason", "again", "--output", "json", *REGION)
    assert rewritten.exit_code == 0, rewritten.output
    assert "was already paused by alice" in rewritten.stderr
    found = read_pause(stack.session.client("dynamodb"), stack.deployment.ledger_table)
    assert found is not None
    assert found.malformed is None
    assert found.reason == "again"
    for result in (table, as_json, rewritten):
        clean(result)


# ---- 3. a policies file is read at most one byte past the cap, and parsed once --------------------


def test_validate_reads_a_fifo_at_most_one_byte_past_the_cap(tmp_path: Path) -> None:
    fifo = tmp_path / "policies.yaml"
    os.mkfifo(fifo)
    offered = 16 * policies_file.MAX_FILE_BYTES
    written = [0]

    def writer() -> None:
        chunk = b"# " + b"x" * 65_533 + b"\n"
        try:
            with fifo.open("wb", buffering=0) as pipe:
                while written[0] < offered:
                    written[0] += pipe.write(chunk)
        except BrokenPipeError:  # the reader stopped reading: as it should
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    result = run("validate", str(fifo))
    thread.join(timeout=30)

    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert result.exit_code == 1, result.output
    assert "too large: more than 1,048,576 bytes" in result.stderr
    # What the reader read, plus what the pipe's buffer held and one chunk in flight.
    assert written[0] < policies_file.MAX_FILE_BYTES + 4 * 65_536, written[0]
    clean(result)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_validate_dev_zero_is_too_large_in_bounded_memory() -> None:
    limit = 1024**3  # address space: far more than the CLI needs, far less than /dev/zero's
    code = (
        "import resource, sys;"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}));"
        "from batch_terminator_cli.main import app;"
        "sys.argv = ['batch-terminator', 'validate', '/dev/zero'];"
        "app()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "too large: more than 1,048,576 bytes" in done.stderr
    assert "internal error" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_policies_file_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "version: 1\nsettings: {jobQueues: [gpu-training]}\npolicies:\n"
        "  - name: runaway\n    match: {jobQueues: [gpu-training]}\n"
        "    when: {status: RUNNING, olderThan: 1h}\n"
    )
    parses: list[int] = []
    real = policies_file._LOADER

    def counting(stream: str) -> Any:
        parses.append(1)
        return real(stream)

    monkeypatch.setattr(policies_file, "_LOADER", counting)
    monkeypatch.setattr(yaml, "safe_load", lambda *_a: pytest.fail("parsed a second time"))
    monkeypatch.setattr(yaml, "compose", lambda *_a, **_k: pytest.fail("parsed a second time"))

    loaded = policies_file.parse_policies(text)

    assert parses == [1]
    assert [p.name for p in loaded.policies] == ["runaway"]


_NAME = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(_NAME, min_size=0, max_size=5, unique=True),
    hours=st.integers(min_value=1, max_value=48),
    style=st.sampled_from([None, False]),
)
def test_the_loader_gives_what_pyyaml_safe_load_gives(
    names: list[str], hours: int, style: bool | None
) -> None:
    data = {
        "version": 1,
        "settings": {"jobQueues": ["gpu-training"]},
        "policies": [
            {
                "name": name,
                "match": {"jobQueues": ["gpu-training"]},
                "when": {"status": "RUNNING", "olderThan": f"{hours}h"},
            }
            for name in names
        ],
    }
    text = yaml.safe_dump(data, default_flow_style=style)
    assert policies_file.parse_policies(text) == PoliciesFile.model_validate(
        yaml.load(text, Loader=yaml.SafeLoader)
    )


# ---- 4. a Logs Insights query that ends without results ------------------------------------------


class EndingLogs:
    """A CloudWatch Logs client whose Insights query ends `status`."""

    def __init__(self, status: str) -> None:
        self.status = status

    def start_query(self, **_kwargs: Any) -> dict[str, str]:
        return {"queryId": "q-1"}

    def get_query_results(self, queryId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        assert queryId == "q-1"
        return {"status": self.status, "statistics": {"recordsScanned": 5.0}, "results": []}


@pytest.mark.parametrize("status", ["Timeout", "Failed", "Cancelled", "Unknown"])
def test_audit_names_an_insights_query_that_ended_and_suggests_a_narrower_since(
    stack: Sandbox, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    from batch_terminator_cli.aws import Aws

    real_client = Aws.client
    monkeypatch.setattr(
        Aws,
        "client",
        lambda self, service: (
            EndingLogs(status) if service == "logs" else real_client(self, service)
        ),
    )

    result = run("audit", "--since", "7d", *REGION)

    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: the Logs Insights query ended {status}")
    assert "last 168 h" in line
    assert "narrower --since" in line
    clean(result)


def test_a_deeply_nested_file_is_one_line_not_a_crash(tmp_path: Path) -> None:
    """libyaml's own composer recurses in C: 60 KB of `[` would end the process (SIGSEGV)."""
    deep = tmp_path / "policies.yaml"
    deep.write_text("version: 1\nx: " + "[" * 60_000 + "]" * 60_000 + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "batch_terminator_cli.main", "validate", str(deep)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-300:])
    assert "nested too deeply" in done.stderr
