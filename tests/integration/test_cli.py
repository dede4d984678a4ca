"""The command line: validate, schema, plan (read-only, equal to the next sweep), request, local."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli import demo
from batch_terminator_cli.local_server import LocalServer
from batch_terminator_cli.main import app
from batch_terminator_cli.planning import READ_ONLY_OPERATIONS, make_plan
from batch_terminator_cli.sandbox import Sandbox
from batch_terminator_cli.schema import policies_schema_json

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_validate_accepts_the_shipped_example() -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "policies.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid, 3 policies" in result.output


def test_validate_names_the_line_and_the_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "policies.yaml"
    broken.write_text(
        "version: 1\n"
        "policies:\n"
        "  - name: cap\n"
        "    when: {status: RUNNING, olderThan: 2h}\n"
        "    maxPerRuns: 5\n"
    )
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:5" in result.output
    assert "policies[0].maxPerRuns" in result.output
    assert "did you mean 'maxPerRun'?" in result.output


def test_committed_schema_is_generated_from_the_model() -> None:
    committed = (ROOT / "policies.schema.json").read_text()
    assert committed == policies_schema_json(), "policies.schema.json is stale: run `make schema`"


def test_schema_rejects_unknown_keys_for_editors() -> None:
    schema = json.loads(policies_schema_json())
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Policy"]["additionalProperties"] is False


@pytest.fixture
def policies() -> PoliciesFile:
    return demo.demo_policies()


def test_plan_calls_only_read_apis(pipeline: Sandbox, world: Any) -> None:
    demo.seed_jobs(world)
    demo.seed_policy_jobs(world)
    client = pipeline.session.client("batch")
    called: list[str] = []
    client.meta.events.register("before-call.batch.*", lambda model, **_: called.append(model.name))

    run = make_plan(client, pipeline.policies, datetime.now(UTC))

    assert run.evaluation.selections
    assert set(called) <= READ_ONLY_OPERATIONS
    assert "TerminateJob" not in READ_ONLY_OPERATIONS
    assert "TerminateJobs" not in READ_ONLY_OPERATIONS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalServer]:
    server = LocalServer(demo.demo_policies(), port=free_port(), poll_seconds=0.2, sweep_seconds=0)
    audit: list[dict[str, Any]] = []
    server.start(str(tmp_path), on_audit=audit.append)
    server.audit = audit  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


def test_plan_against_local_lists_exactly_what_the_next_sweep_terminates(
    local: LocalServer, tmp_path: Path
) -> None:
    assert local.world is not None
    # Only the sweep acts here: with Batch events on, deadlines would act on their own.
    local.world.control.publish_events(False)
    demo.seed_jobs(local.world)
    ids = demo.seed_policy_jobs(local.world)
    policies_file = tmp_path / "demo.yaml"
    policies_file.write_text(demo.DEMO_POLICIES.read_text())

    result = runner.invoke(
        app,
        [
            "plan",
            "--policies",
            str(policies_file),
            "--output",
            "json",
            "--endpoint-url",
            local.endpoint_url,
            "--region",
            "us-east-1",
        ],
    )
    assert result.exit_code == 0, result.output
    planned = {s["jobId"] for s in json.loads(result.stdout)["selections"] if not s["dryRun"]}

    local.sweep_now()
    local.process_requests()

    terminated = {line["job_id"] for line in local.audit if line["outcome"] == "terminated"}  # type: ignore[attr-defined]
    # A whole array is planned as its parent; each child it stops has its own audit line.
    through_parents = {j for j in terminated if ":" in j and j.split(":")[0] in planned}
    assert planned == terminated - through_parents
    assert ids["train-gpt-c"] in planned
    assert ids["train-small"] not in planned


def test_request_command_terminates_through_local(
    local: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert local.world is not None
    assert local.deployment is not None
    # Young enough that no policy's deadline acts first: `local` runs every event path.
    job = local.world.job("runaway", "gpu-training", "RUNNING", age=timedelta(minutes=5))

    result = runner.invoke(
        app,
        [
            "request",
            job,
            "--reason",
            "Terminating job.",
            "--endpoint-url",
            local.endpoint_url,
            "--queue-url",
            local.deployment.request_queue_url,
            "--region",
            "us-east-1",
            "--requested-by",
            "alice",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"requestedBy": "alice"' in result.output
    local.process_requests()

    described = local.world.final(job)
    assert (described["status"], described["statusReason"]) == ("FAILED", "Terminating job.")


def test_request_command_validates_before_sending() -> None:
    result = runner.invoke(
        app, ["request", "not a job id!", "--reason", "x", "--queue-url", "http://127.0.0.1:1/q"]
    )
    assert result.exit_code == 2
    assert "is not a Batch job id" in result.output


def test_audit_reads_decisions_back_from_the_log_group(pipeline: Sandbox, world: Any) -> None:
    terminated = world.job("runaway", "gpu-training", "RUNNING")
    protected = world.job(
        "golden", "gpu-training", "RUNNING", tags={"batch-terminator:protect": "1"}
    )
    pipeline.send({"jobIds": [terminated, protected], "reason": "cleanup", "requestedBy": "alice"})
    pipeline.send('{"jobId": "x", "reason": "typo", "dryrun": true}')
    pipeline.run_terminator()
    group = ["--log-group", pipeline.deployment.terminator_log_group]

    everything = runner.invoke(app, ["audit", *group, "--output", "json"])
    skipped = runner.invoke(app, ["audit", *group, "--outcome", "skipped", "--output", "json"])
    by_job = runner.invoke(app, ["audit", *group, "--job-id", terminated])
    table = runner.invoke(app, ["audit", *group, "--requested-by", "alice"])

    assert everything.exit_code == 0, everything.output
    assert sorted(line["outcome"] for line in json.loads(everything.stdout)) == [
        "rejected",
        "skipped",
        "terminated",
    ]
    [line] = json.loads(skipped.stdout)
    assert (line["job_id"], line["skip_reason"]) == (
        protected,
        "protected: job carries tag batch-terminator:protect",
    )
    assert "runaway" in by_job.output
    assert "golden" not in by_job.output
    assert "runaway" in table.output
    assert "golden" in table.output
    assert "typo" not in table.output


def test_audit_filter_pattern_is_a_json_pattern() -> None:
    from batch_terminator_cli.auditing import AuditQuery

    query = AuditQuery(timedelta(hours=1), job_id="j-1", outcome="skipped")
    assert (
        query.filter_pattern()
        == '{ $.message = "termination" && $.job_id = "j-1" && $.outcome = "skipped" }'
    )


# ---- the preview tells the truth: text from users and Batch is shown literally ------------------


def test_plan_shows_dry_runs_and_hostile_names_literally(
    pipeline: Sandbox, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from batch_terminator_cli.planning import render_plan

    hostile = "[bold]x[/bold][red]"
    world.job(hostile, "gpu-training", "RUNNING", age=timedelta(hours=13), definition="train-gpt")
    dry = PoliciesFile.model_validate(
        {
            **pipeline.policies.to_document(),
            "settings": {"jobQueues": ["gpu-training", "spot-cpu"], "dryRun": True},
        }
    )
    console = Console(width=400, record=True)
    render_plan(console, make_plan(pipeline.session.client("batch"), dry, datetime.now(UTC)))
    text = console.export_text()

    assert "gpu-runtime-cap [dry run]" in text
    assert "Would terminate now (0 jobs); dry run, would terminate but will not (1 jobs)" in text
    assert hostile in text


def test_validate_shows_patterns_in_its_messages_literally(tmp_path: Path) -> None:
    broken = tmp_path / "policies.yaml"
    broken.write_text(
        "version: 1\npolicies:\n  - name: Bad_Name\n    when: {status: RUNNING, olderThan: 2h}\n"
    )
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1
    assert "[a-z0-9]" in result.output  # the name pattern, not eaten as markup


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000000000d", "at most 366d"),
        ("9" * 5000 + "d", "at most 366d"),
        ("-1h", "invalid duration"),
    ],
)
def test_validate_rejects_absurd_durations_with_one_clear_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    broken = tmp_path / "policies.yaml"
    broken.write_text(
        f"version: 1\npolicies:\n  - name: cap\n    when: {{status: RUNNING, olderThan: '{text}'}}\n"
    )
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_validate_rejects_starting_aged_without_runnable(tmp_path: Path) -> None:
    broken = tmp_path / "policies.yaml"
    broken.write_text(
        "version: 1\npolicies:\n  - name: slow-start\n    when: {status: STARTING, olderThan: 30m}\n"
    )
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 1
    assert "STARTING needs RUNNABLE" in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"version: 1\nsettings: !include s.yaml\n", "not valid YAML: could not determine"),
        (b"version: 1\n? [a, b]\n: c\n", "not valid YAML: found unhashable key"),
        ("version: 1\n".encode("utf-16"), "not UTF-8 text"),
        (("version: 1\nx: " + "[" * 5000 + "]" * 5000).encode(), "nested too deeply"),
        (b"version: 1\nsettings: &a\n  jobQueues: [*a]\n", "nested too deeply"),
        (b"version: 1\npolicies: [\n", "not valid YAML"),
    ],
)
def test_validate_reports_any_broken_file_in_one_clear_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    broken = tmp_path / "policies.yaml"
    broken.write_bytes(content)
    for command in (["validate", str(broken)], ["plan", "--policies", str(broken)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        assert expected in result.output
        assert isinstance(result.exception, SystemExit)


def test_an_endpoint_without_a_scheme_is_a_usage_error() -> None:
    result = runner.invoke(
        app, ["plan", "--policies", str(ROOT / "policies.yaml"), "--endpoint-url", "127.0.0.1:5050"]
    )
    assert result.exit_code == 2
    assert "is not a URL" in result.output
    assert isinstance(result.exception, SystemExit)


def test_a_stack_without_its_outputs_is_one_clear_line(pipeline: Sandbox) -> None:
    cloudformation = pipeline.session.client("cloudformation")
    cloudformation.create_stack(
        StackName="Half",
        TemplateBody=json.dumps(
            {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
        ),
    )
    for command in (
        ["request", "0f2d1f8e-0000-4000-8000-000000000000", "--reason", "r"],
        ["audit"],
    ):
        result = runner.invoke(app, [*command, "--stack-name", "Half", "--region", "us-east-1"])
        assert result.exit_code == 1, result.output
        assert "stack Half has no output" in result.output
        assert isinstance(result.exception, SystemExit)


def test_local_on_a_port_in_use_exits_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["local", "--port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "arguments", [["--port", "99999"], ["--port", "0"], ["--sweep-interval", "-5"]]
)
def test_local_rejects_impossible_options_as_usage_errors(arguments: list[str]) -> None:
    result = runner.invoke(app, ["local", *arguments])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
