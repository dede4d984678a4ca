"""Operator tools on the emulator: audit (Logs Insights, FilterLogEvents fallback), redrive (SQS's
message move task), status, pause / resume, request --wait, and the AWS CLI's conventions."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from batch_terminator.pausing import read_pause
from batch_terminator_cli import auditing, demo, main
from batch_terminator_cli.auditing import AuditQuery, read_audit
from batch_terminator_cli.local_server import LocalServer
from batch_terminator_cli.main import app
from batch_terminator_cli.sandbox import Sandbox
from tests.integration.cli_support import REGION, clean, run, runner


def reject(pipeline: Sandbox, count: int) -> list[str]:
    """Requests the terminator rejects (kept in the DLQ with their error); returns the bodies."""
    bodies = [
        json.dumps({"jobId": f"bad-{i}", "reason": "typo", "dryrun": True}) for i in range(count)
    ]
    for body in bodies:
        pipeline.send(body)
    pipeline.run_terminator()
    return bodies


# ---- usage errors: each of these printed an empty result with exit 0 before ---------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["audit", "--outcome", "killed"], "'killed' is not one of"),
        (["audit", "--source", "cron"], "'cron' is not one of"),
        (["audit", "--limit", "-1"], "--limit"),
        (["audit", "--limit", "0"], "--limit"),
        (["audit", "--job-id", "not-a-job"], "is not a Batch job id"),
        (["audit", "--since", "-5h"], "invalid duration"),
        (["audit", "--output", "xml"], "'xml' is not one of"),
        (["status", "--since", "forever"], "invalid duration"),
        (
            [
                "request",
                "0f2d1f8e-0000-4000-8000-000000000000",
                "--reason",
                "r",
                "--via",
                "events",
                "--queue-url",
                "http://127.0.0.1:1/q",
            ],
            "--queue-url",
        ),
        (
            [
                "request",
                "0f2d1f8e-0000-4000-8000-000000000000",
                "--reason",
                "r",
                "--event-bus",
                "b",
            ],
            "--event-bus",
        ),
        (
            ["request", "0f2d1f8e-0000-4000-8000-000000000000", "--reason", "r", "--timeout", "0"],
            "--timeout",
        ),
        (["redrive", "--show", "-1"], "--show"),
        (["status", "--wait"], "name the jobs to wait for"),
        (["status", "--stack-name", "\b"], "is not a stack name"),
        (["pause", "--reason", "x" * 1025], "at most 1024 characters"),
        (["audit", "--endpoint-url", "http://[::1"], "is not a URL"),
        (["audit", "--endpoint-url", "http://127.0.0.1:99999"], "is not a URL"),
        (["audit", "--region", "us east 1"], "is not a region name"),
        (["local", "--port", "99999"], "--port"),
        (["local", "--sweep-interval", "-5"], "--sweep-interval"),
    ],
)
def test_bad_values_are_usage_errors(arguments: list[str], expected: str) -> None:
    result = run(*arguments)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert result.stdout == ""
    clean(result)


def test_plan_rejects_an_alarm_no_policy_triggers_on(tmp_path: Any) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(demo.DEMO_POLICIES.read_text())
    result = run("plan", "--policies", str(policies), "--alarm", "no-such-alarm")
    assert result.exit_code == 2, result.output
    assert "no policy" in result.stderr
    assert "no-such-alarm" in result.stderr
    clean(result)


def test_validate_a_non_utf8_file_is_one_line_and_exit_1(tmp_path: Any) -> None:
    broken = tmp_path / "policies.yaml"
    broken.write_bytes(b"version: 1\n\xff\xfe policies: []\n")
    result = run("validate", str(broken))
    assert result.exit_code == 1
    assert "not UTF-8 text" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    clean(result)


def test_version_and_short_help() -> None:
    version = run("--version")
    assert version.exit_code == 0
    assert version.stdout.startswith("batch-terminator ")
    for command in ("audit", "redrive", "status", "pause", "resume", "request", "plan"):
        helped = run(command, "-h")
        assert helped.exit_code == 0, helped.output
        for option in ("--profile", "--region", "--endpoint-url", "--output"):
            assert option in helped.stdout, (command, option)


def test_aws_errors_are_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    no_region = run("status")
    assert no_region.exit_code == 1
    assert "no AWS region" in no_region.stderr
    no_profile = run("audit", "--profile", "nobody", *REGION)
    assert no_profile.exit_code == 1
    assert "could not be found" in no_profile.stderr
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    unreachable = run("status", *REGION, "--endpoint-url", f"http://127.0.0.1:{port}")
    assert unreachable.exit_code == 1
    assert "cannot reach the AWS endpoint" in unreachable.stderr
    for result in (no_region, no_profile, unreachable):
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stdout == ""
        clean(result)


def test_a_missing_stack_is_one_line(pipeline: Sandbox) -> None:
    result = run("status", "--stack-name", "Nowhere", *REGION)
    assert result.exit_code == 1
    assert "stack Nowhere does not exist" in result.stderr
    clean(result)


# ---- audit ---------------------------------------------------------------------------------------


def test_audit_finds_a_job_by_its_arn_and_shows_job_ids(stack: Sandbox) -> None:
    job = stack.world.job("runaway", "gpu-training", "RUNNING")
    other = stack.world.job("other", "gpu-training", "RUNNING")
    stack.send({"jobIds": [job, other], "reason": "cleanup"})
    stack.run_terminator()
    arn = f"arn:aws:batch:us-east-1:123456789012:job/{job}"

    by_arn = run("audit", "--job-id", arn, "--output", "json", *REGION)
    table = run("audit", "--job-id", arn, *REGION)

    assert by_arn.exit_code == 0, by_arn.output
    assert [line["job_id"] for line in json.loads(by_arn.stdout)] == [job]
    assert job in table.stdout
    assert other not in table.stdout


def test_audit_limit_keeps_the_newest(stack: Sandbox) -> None:
    jobs = [stack.world.job(f"j{i}", "gpu-training", "RUNNING") for i in range(3)]
    for job in jobs:
        stack.send({"jobId": job, "reason": "one by one"})
        stack.run_terminator()
    result = run("audit", "--limit", "1", "--output", "json", *REGION)
    everything = run("audit", "--output", "json", *REGION)
    assert result.exit_code == 0, result.output
    newest = json.loads(everything.stdout)[0]
    assert [line["job_id"] for line in json.loads(result.stdout)] == [newest["job_id"]]
    assert len(json.loads(everything.stdout)) == 3


def test_audit_text_output_is_one_tab_separated_line_per_decision(stack: Sandbox) -> None:
    job = stack.world.job("runaway", "gpu-training", "RUNNING")
    stack.send({"jobId": job, "reason": "tabs\tand\nnewlines"})  # rejected: control characters
    stack.run_terminator()
    stack.send({"jobId": job, "reason": "spaced   out"})
    stack.run_terminator()
    result = run("audit", "--output", "text", *REGION)
    newest, oldest = (line.split("\t") for line in result.stdout.strip().splitlines())
    assert newest[1:3] == ["terminated", job]
    assert "spaced out" in newest
    assert oldest[1] == "rejected"
    assert len(oldest) == len(newest)


class InsightsLogs:
    """A CloudWatch Logs client whose Insights applies the filter (as AWS does), from lines."""

    def __init__(self, lines: list[dict[str, Any]], polls: int = 2) -> None:
        self.lines = lines
        self.polls = polls
        self.queries: list[dict[str, Any]] = []

    def start_query(self, **kwargs: Any) -> dict[str, str]:
        self.queries.append(kwargs)
        return {"queryId": "q-1"}

    def get_query_results(self, queryId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        assert queryId == "q-1"
        self.polls -= 1
        scanned = {"recordsScanned": float(len(self.lines)), "recordsMatched": 0.0}
        if self.polls > 0:
            return {"status": "Running", "statistics": scanned, "results": []}
        query = self.queries[-1]
        wanted = AuditQuery(timedelta(days=1), limit=query["limit"], outcome=_outcome(query))
        rows = [
            [
                {"field": "@timestamp", "value": "2026-11-29 16:00:00.000"},
                {"field": "@message", "value": json.dumps(line)},
            ]
            for line in self.lines
            if wanted.matches(line)
        ][: query["limit"]]
        return {"status": "Complete", "statistics": scanned, "results": rows}


def _outcome(query: dict[str, Any]) -> str | None:
    text = query["queryString"]
    return text.split('outcome = "')[1].split('"')[0] if 'outcome = "' in text else None


def audit_line(i: int, outcome: str = "terminated") -> dict[str, Any]:
    return {
        "message": "termination",
        "outcome": outcome,
        "job_id": f"job-{i}",
        "timestamp": f"t{i:05}",
    }


def test_audit_runs_a_logs_insights_query_and_reports_progress() -> None:
    logs = InsightsLogs([audit_line(1), audit_line(2, "skipped"), {"message": "batch processed"}])
    progress: list[tuple[str, dict[str, Any]]] = []
    query = AuditQuery(timedelta(hours=1), outcome="skipped", limit=5)

    result = read_audit(
        logs,
        "g",
        query,
        datetime.now(UTC),
        on_progress=lambda s, st: progress.append((s, st)),
        sleep=lambda _s: None,
    )

    assert result.via == "insights"
    assert [line["job_id"] for line in result.lines] == ["job-2"]
    assert [status for status, _ in progress] == ["Running", "Complete"]
    assert result.records_scanned == 3
    assert (
        'filter message = "termination" and outcome = "skipped"' in logs.queries[0]["queryString"]
    )


def test_audit_says_when_insights_row_limit_is_hit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auditing, "INSIGHTS_MAX_ROWS", 3)
    logs = InsightsLogs([audit_line(i) for i in range(5)], polls=1)
    result = read_audit(logs, "g", AuditQuery(timedelta(hours=1), limit=10), datetime.now(UTC))
    assert result.truncated
    assert len(result.lines) == 3
    assert logs.queries[0]["limit"] == 3


def test_audit_falls_back_to_filter_log_events_with_one_note(pipeline: Sandbox) -> None:
    job = pipeline.world.job("runaway", "gpu-training", "RUNNING")
    pipeline.send({"jobId": job, "reason": "r"})
    pipeline.run_terminator()
    logs = pipeline.session.client("logs")
    group = pipeline.deployment.terminator_log_group

    class NoInsights:
        def __getattr__(self, name: str) -> Any:
            return getattr(logs, name)

        def start_query(self, **_kwargs: Any) -> Any:
            error = {"Error": {"Code": "UnknownOperationException", "Message": "no"}}
            raise ClientError(error, "StartQuery")  # type: ignore[arg-type]

    notes: list[str] = []
    query = AuditQuery(timedelta(hours=1), job_id=job)
    result = read_audit(NoInsights(), group, query, datetime.now(UTC), note=notes.append)
    ignored = read_audit(
        logs,
        group,
        AuditQuery(timedelta(hours=1), outcome="skipped"),
        datetime.now(UTC),
        note=notes.append,
    )

    assert result.via == "filter"
    assert [line["job_id"] for line in result.lines] == [job]
    assert len(notes) == 2
    assert "FilterLogEvents" in notes[0]
    # moto's Insights ignores the filter: its rows are checked, and the fallback reads right.
    assert ignored.via == "filter"
    assert ignored.lines == []


def test_audit_table_keeps_job_ids_whole_in_80_columns(stack: Sandbox) -> None:
    jobs = [
        stack.world.job(
            "a-rather-long-job-name-" * 3,
            "gpu-training",
            "RUNNING",
            tags={"batch-terminator:protect": "1"},
        ),
        stack.world.job("short", "spot-cpu", "RUNNING"),
    ]
    stack.send(
        {
            "jobIds": jobs,
            "reason": "a reason that is long enough to need folding " * 3,
            "requestedBy": "arn:aws:iam::123456789012:user/someone-with-a-long-name",
        }
    )
    stack.run_terminator()
    lines = read_audit(
        stack.session.client("logs"),
        stack.deployment.terminator_log_group,
        AuditQuery(timedelta(hours=1)),
        datetime.now(UTC),
    ).lines
    console = Console(width=80, record=True, file=io.StringIO())
    auditing.render_audit(console, auditing.AuditResult(lines, "filter"))
    text = console.export_text()
    assert all(len(row) <= 80 for row in text.splitlines())
    for job in jobs:
        assert any(job in row for row in text.splitlines()), job


# ---- pause, resume, status -----------------------------------------------------------------------


def test_pause_writes_the_item_the_policy_paths_read_and_resume_clears_it(stack: Sandbox) -> None:
    dynamodb = stack.session.client("dynamodb")
    paused = run("pause", "--reason", "incident 42", "--output", "json", *REGION)
    assert paused.exit_code == 0, paused.output
    item = read_pause(dynamodb, stack.deployment.ledger_table)
    assert item is not None
    assert item.reason == "incident 42"
    assert item.paused_by.startswith("arn:aws:")  # the caller's STS identity
    assert json.loads(paused.stdout)["pausedBy"] == item.paused_by

    state = run("status", "--output", "json", *REGION)
    assert json.loads(state.stdout)["paused"] is True
    assert "PAUSED" in run("status", *REGION).stdout

    resumed = run("resume", "--output", "json", *REGION)
    assert json.loads(resumed.stdout) == {"paused": False, "wasPaused": True}
    assert read_pause(dynamodb, stack.deployment.ledger_table) is None
    again = run("resume", *REGION)
    assert again.exit_code == 0
    assert "was not paused" in again.stderr
    assert json.loads(run("status", "--output", "json", *REGION).stdout)["paused"] is False


def test_status_shows_the_queue_depths(stack: Sandbox) -> None:
    reject(stack, 2)
    stack.send({"jobId": "0f2d1f8e-0000-4000-8000-000000000000", "reason": "waiting"})
    result = run("status", "--output", "json", *REGION)
    assert result.exit_code == 0, result.output
    queues = json.loads(result.stdout)["queues"]
    assert queues["requestQueue"]["visible"] == 1
    assert queues["deadLetterQueue"]["visible"] == 2
    text = run("status", "--output", "text", *REGION).stdout.splitlines()
    assert text[0].split("\t")[:2] == ["PAUSED", "False"]


def test_status_of_jobs_tells_each_outcome(stack: Sandbox) -> None:
    world = stack.world
    terminated = world.job("runaway", "gpu-training", "RUNNING")
    protected = world.job(
        "golden", "gpu-training", "RUNNING", tags={"batch-terminator:protect": "1"}
    )
    pending = world.job("later", "gpu-training", "RUNNING")
    stack.send({"jobIds": [terminated, protected], "reason": "cleanup"})
    stack.run_terminator()
    unknown = "0f2d1f8e-0000-4000-8000-000000000000"

    result = run("status", terminated, protected, pending, unknown, "--output", "json", *REGION)
    decided = run(
        "status", terminated, f"arn:aws:batch:us-east-1:123456789012:job/{protected}", *REGION
    )

    assert result.exit_code == 1  # some jobs have no decision yet
    assert "2 of 4 jobs have no decision yet" in result.stderr
    states = {s["jobId"]: s for s in json.loads(result.stdout)}
    assert states[terminated]["outcome"] == "terminated"
    assert states[protected]["outcome"] == "skipped"
    assert "protected" in states[protected]["detail"]
    assert states[pending]["outcome"] == "pending"
    assert states[pending]["batchStatus"] == "RUNNING"
    assert states[unknown]["outcome"] == "unknown"
    assert decided.exit_code == 0, decided.output
    assert terminated in decided.stdout
    assert protected in decided.stdout


# ---- request --wait ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def local(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    server = LocalServer(demo.demo_policies(), port=free_port(), poll_seconds=0.2, sweep_seconds=0)
    server.start(str(tmp_path))
    monkeypatch.setattr(main, "_POLL_SECONDS", 0.2)
    try:
        yield server
    finally:
        server.stop()


def test_request_wait_prints_each_outcome(local: LocalServer) -> None:
    assert local.world is not None
    assert local.deployment is not None
    runaway = local.world.job("runaway", "gpu-training", "RUNNING", age=timedelta(minutes=5))
    golden = local.world.job(
        "golden", "gpu-training", "RUNNING", tags={"batch-terminator:protect": "1"}
    )

    # No --queue-url or --log-group: `local` publishes the stack's outputs, as a deployment does.
    result = run(
        "request",
        runaway,
        golden,
        "--reason",
        "Terminating job.",
        "--wait",
        "--timeout",
        "60",
        "--output",
        "json",
        "--endpoint-url",
        local.endpoint_url,
        *REGION,
    )

    assert result.exit_code == 0, result.output
    # The in-process server's functions may print their EMF lines to the same stdout first.
    printed = result.stdout[result.stdout.index("[\n") :]
    states = {s["jobId"]: s["outcome"] for s in json.loads(printed)}
    assert states == {runaway: "terminated", golden: "skipped"}


def test_request_wait_times_out_with_exit_1(
    pipeline: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0.2)
    job = pipeline.world.job("runaway", "gpu-training", "RUNNING")
    result = run(
        "request",
        job,
        "--reason",
        "r",
        "--wait",
        "--timeout",
        "1",
        "--output",
        "text",
        *REGION,
        "--queue-url",
        pipeline.deployment.request_queue_url,
        "--log-group",
        pipeline.deployment.terminator_log_group,
    )
    assert result.exit_code == 1
    assert result.stdout.split("\t")[:2] == [job, "pending"]
    assert "timed out" in result.stderr
    clean(result)


# ---- redrive -------------------------------------------------------------------------------------


def test_redrive_dry_run_lists_each_message_and_moves_nothing(stack: Sandbox) -> None:
    bodies = reject(stack, 3)
    result = run("redrive", "--dry-run", "--output", "json", *REGION)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["moveTask"] is None
    assert sorted(m["bodyExcerpt"] for m in listed["messages"]) == sorted(
        auditing_excerpt(b) for b in bodies
    )
    assert all("dryrun" in (m["error"] or "") for m in listed["messages"])
    assert all(m["receiveCount"] >= 1 for m in listed["messages"])
    assert len(stack.dead_letters()) == 3  # still there, visible
    table = run("redrive", "--dry-run", *REGION)
    for message in listed["messages"]:
        assert message["messageId"] in table.stdout


def auditing_excerpt(body: str) -> str:
    from batch_terminator_cli.operating import excerpt

    return excerpt(body)


def test_redrive_moves_every_message_back_with_its_attributes(
    stack: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0.05)
    bodies = reject(stack, 4)
    before = {m["MessageId"] for m in stack.dead_letters()}

    result = run("redrive", "--output", "json", *REGION)

    assert result.exit_code == 0, result.output
    task = json.loads(result.stdout)["moveTask"]
    assert task["Status"] == "COMPLETED"
    assert task["ApproximateNumberOfMessagesMoved"] == 4
    assert stack.dead_letters() == []
    moved = stack.sqs.receive_message(
        QueueUrl=stack.deployment.request_queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    )["Messages"]
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    assert all("error" in m["MessageAttributes"] for m in moved)
    assert not before & {m["MessageId"] for m in moved}
    empty = run("redrive", *REGION)
    assert empty.exit_code == 0
    assert "the DLQ is empty" in empty.stderr


def test_redrive_never_sends_or_deletes_messages_itself(
    stack: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0.05)
    reject(stack, 2)
    called: list[str] = []
    real_client = boto3.Session.client

    def client(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        made = real_client(self, service, *args, **kwargs)
        made.meta.events.register("before-call.sqs.*", lambda model, **_: called.append(model.name))
        return made

    monkeypatch.setattr(boto3.Session, "client", client)
    assert run("redrive", *REGION).exit_code == 0
    assert "StartMessageMoveTask" in called
    assert not {"SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch"} & set(
        called
    )


def test_redrive_reports_a_message_that_cannot_move_back_in_one_line(
    stack: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stack's queues take the same size, so this cannot happen there: shrink the request
    # queue to make the oldest DLQ message too large for it.
    monkeypatch.setattr(main, "_POLL_SECONDS", 0.05)
    sqs, dlq = stack.sqs, stack.deployment.dlq_url
    sqs.send_message(QueueUrl=dlq, MessageBody="x" * 2000)
    reject(stack, 2)
    sqs.set_queue_attributes(
        QueueUrl=stack.deployment.request_queue_url, Attributes={"MaximumMessageSize": "1024"}
    )

    result = run("redrive", *REGION)

    assert result.exit_code == 1
    clean(result)
    [line] = [x for x in result.stderr.splitlines() if "move task ended FAILED" in x]
    assert "after 0 messages" in line
    assert "shorter than 1024 bytes" in line
    assert len(stack.dead_letters()) == 3  # the message and every one behind it stay


# ---- the emulator's message move tasks behave as SQS documents ------------------------------------


def _queues(sqs: Any) -> tuple[str, str, str, str]:
    dlq = sqs.create_queue(QueueName="move-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    source = sqs.create_queue(
        QueueName="move-source",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
        },
    )["QueueUrl"]
    source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return dlq, dlq_arn, source, source_arn


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    bodies=st.lists(
        st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=0xD7FF), min_size=1, max_size=40
        ),
        min_size=1,
        max_size=12,
    )
)
def test_move_task_moves_in_order_keeps_attributes_new_ids(
    pipeline: Sandbox, bodies: list[str]
) -> None:
    import time

    sqs = pipeline.sqs
    dlq, dlq_arn, source, source_arn = _queues(sqs)
    try:
        sent = [
            sqs.send_message(
                QueueUrl=dlq,
                MessageBody=body,
                MessageAttributes={"error": {"DataType": "String", "StringValue": f"e{i}"}},
            )["MessageId"]
            for i, body in enumerate(bodies)
        ]
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)
        for _ in range(100):
            [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
            if task["Status"] != "RUNNING":
                break
            time.sleep(0.02)
        assert task["Status"] == "COMPLETED"
        assert task["ApproximateNumberOfMessagesMoved"] == len(bodies)
        moved: list[dict[str, Any]] = []
        while got := sqs.receive_message(
            QueueUrl=source,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", []):
            moved.extend(got)
        assert [m["Body"] for m in moved] == bodies
        assert [m["MessageAttributes"]["error"]["StringValue"] for m in moved] == [
            f"e{i}" for i in range(len(bodies))
        ]
        assert not set(sent) & {m["MessageId"] for m in moved}
        assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
    finally:
        sqs.delete_queue(QueueUrl=dlq)
        sqs.delete_queue(QueueUrl=source)


def test_move_task_one_per_queue_and_only_from_a_dlq(pipeline: Sandbox) -> None:
    sqs = pipeline.sqs
    dlq, dlq_arn, _source, source_arn = _queues(sqs)
    for i in range(5):
        sqs.send_message(QueueUrl=dlq, MessageBody=str(i))
    handle = sqs.start_message_move_task(
        SourceArn=dlq_arn, DestinationArn=source_arn, MaxNumberOfMessagesPerSecond=1
    )["TaskHandle"]
    with pytest.raises(ClientError, match="Only one active task"):
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)
    with pytest.raises(ClientError, match="Dead Letter Queue"):
        sqs.start_message_move_task(SourceArn=source_arn)
    with pytest.raises(ClientError, match="MaxNumberOfMessagesPerSecond"):
        sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)
    sqs.cancel_message_move_task(TaskHandle=handle)
    [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert task["Status"] == "CANCELLED"
    assert "TaskHandle" not in task
    left = int(
        sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )
    assert left + task["ApproximateNumberOfMessagesMoved"] == 5  # nothing lost, nothing doubled


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=st.integers(0, 4), after=st.integers(0, 4), extra=st.integers(1, 3000))
def test_move_task_fails_at_a_message_the_destination_refuses_and_keeps_it_and_the_rest(
    pipeline: Sandbox, before: int, after: int, extra: int
) -> None:
    import time

    sqs = pipeline.sqs
    dlq, dlq_arn, source, source_arn = _queues(sqs)
    try:
        sqs.set_queue_attributes(QueueUrl=source, Attributes={"MaximumMessageSize": "1024"})
        for i in range(before):
            sqs.send_message(QueueUrl=dlq, MessageBody=f"small {i}")
        big = sqs.send_message(QueueUrl=dlq, MessageBody="x" * (1024 + extra))["MessageId"]
        for i in range(after):
            sqs.send_message(QueueUrl=dlq, MessageBody=f"behind {i}")
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)
        for _ in range(100):
            [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]  # never raises
            if task["Status"] != "RUNNING":
                break
            time.sleep(0.02)
        assert task["Status"] == "FAILED"
        assert task["ApproximateNumberOfMessagesMoved"] == before
        assert big in task["FailureReason"]
        assert "shorter than 1024 bytes" in task["FailureReason"]
        assert "TaskHandle" not in task
        left = int(
            sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        assert left == 1 + after
        moved = int(
            sqs.get_queue_attributes(
                QueueUrl=source, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        assert moved == before
    finally:
        sqs.delete_queue(QueueUrl=dlq)
        sqs.delete_queue(QueueUrl=source)


# ---- whatever text an option gets: exit 0, 1 or 2, one line, never a traceback -------------------

OPTIONS: dict[str, list[str]] = {
    "audit": [
        "--job-id",
        "--outcome",
        "--policy",
        "--source",
        "--requested-by",
        "--since",
        "--limit",
        "--output",
        "--log-group",
        "--stack-name",
        "--region",
        "--endpoint-url",
        "--profile",
    ],
    "status": [
        "--since",
        "--table",
        "--queue-url",
        "--dlq-url",
        "--timeout",
        "--output",
        "--stack-name",
        "--log-group",
    ],
    "redrive": ["--show", "--dlq-url", "--queue-url", "--output", "--stack-name"],
    "pause": ["--reason", "--table", "--output", "--region"],
    "resume": ["--table", "--output", "--stack-name"],
    "request": [
        "--reason",
        "--via",
        "--if-status",
        "--requested-by",
        "--queue-url",
        "--event-bus",
        "--timeout",
        "--output",
    ],
    "plan": ["--alarm", "--policies", "--output"],
    "validate": [],
}
JOB = "0f2d1f8e-0000-4000-8000-000000000000"


def _arguments(command: str, option: str | None, text: str) -> list[str]:
    base = {
        "request": [JOB, "--reason", "r", "--dry-run"],
        "status": [],
        "plan": ["--policies", str(demo.DEMO_POLICIES)],
        "validate": [],
        "redrive": ["--dry-run"],
    }.get(command, [])
    if option is None:
        return (
            [command, *base, text]
            if command in ("status", "validate", "request")
            else [command, *base]
        )
    return [command, *base, option, text]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_text_in_any_option_exits_0_1_or_2_without_a_traceback(
    stack: Sandbox, data: st.DataObject
) -> None:
    command = data.draw(st.sampled_from(sorted(OPTIONS)))
    option = data.draw(st.sampled_from([None, *OPTIONS[command]]))
    text = data.draw(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=60,
        )
        | st.sampled_from(
            [
                "-1",
                "0",
                "99999",
                "1e9",
                "nan",
                "inf",
                "--",
                "-h",
                JOB,
                "table",
                "json",
                "text",
                "http://127.0.0.1:1",
                "arn:aws:batch:us-east-1:123456789012:job/x",
            ]
        )
    )
    arguments = _arguments(command, option, text)
    result = runner.invoke(app, [*arguments, *REGION] if "--region" not in arguments else arguments)
    assert result.exit_code in (0, 1, 2), (arguments, result.output)
    clean(result)


def test_plan_table_keeps_job_ids_whole_in_80_columns(pipeline: Sandbox) -> None:
    from batch_terminator_cli.planning import make_plan, render_plan

    demo.seed_jobs(pipeline.world)
    ids = demo.seed_policy_jobs(pipeline.world)
    run_ = make_plan(pipeline.session.client("batch"), demo.demo_policies(), datetime.now(UTC))
    console = Console(width=80, record=True, file=io.StringIO())
    render_plan(console, run_)
    rows = console.export_text().splitlines()
    assert all(len(row) <= 80 for row in rows)
    planned = [s.job.job_id for s in run_.evaluation.selections]
    assert ids["train-gpt-c"] in planned
    for job in planned:
        assert any(job in row for row in rows), job


def test_ctrl_c_is_one_line_and_exit_130(stack: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from batch_terminator_cli import operating

    def interrupted(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(operating, "queue_depth", interrupted)
    result = run("status", *REGION)
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted"
    clean(result)


def test_the_filter_pattern_names_the_jobs_it_looks_for() -> None:
    query = AuditQuery(timedelta(hours=1), any_job=("a", "b"))
    assert query.filter_pattern() == (
        '{ $.message = "termination" && ($.job_id = "a" || $.job_id = "b") }'
    )
    assert query.matches({"message": "termination", "job_id": "b"})
    assert not query.matches({"message": "termination", "job_id": "c"})


def test_audit_command_shows_insights_progress_and_the_row_limit(
    stack: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch_terminator_cli.aws import Aws

    monkeypatch.setattr(auditing, "INSIGHTS_MAX_ROWS", 2)
    insights = InsightsLogs([audit_line(i) for i in range(4)], polls=2)
    real_client = Aws.client
    monkeypatch.setattr(
        Aws,
        "client",
        lambda self, service: insights if service == "logs" else real_client(self, service),
    )
    monkeypatch.setattr(auditing.time, "sleep", lambda _s: None)

    result = run("audit", "--output", "json", *REGION)

    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 2
    assert "Logs Insights scanned 4 records" in result.stderr
    assert "at most 2 rows a query" in result.stderr


def test_status_wait_times_out_with_exit_1(stack: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "_POLL_SECONDS", 0.2)
    job = stack.world.job("waiting", "gpu-training", "RUNNING")
    result = run("status", job, "--wait", "--timeout", "1", "--output", "text", *REGION)
    assert result.exit_code == 1
    assert result.stdout.split("\t")[:2] == [job, "pending"]
    assert "1 of 1 jobs have no decision yet after 1 s" in result.stderr
