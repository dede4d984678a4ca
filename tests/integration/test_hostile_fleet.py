"""Hostile review of the fleet (issue 9) through the CLI, on the emulated fleet of
test_fleet_emulator: two profiles reaching one member, --output json purity, a profile that
reaches another account than the fleet file says, and a central log group holding what a
member (or EventBridge's retries) can put there.

Each test holds a defect the review found, now fixed, or an attack that found nothing and is
kept so that it keeps failing to break it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_terminator.contract import DECISION_DETAIL_TYPE, EVENT_SOURCE, FLEET_LOG_GROUP
from batch_terminator_cli import conventions
from batch_terminator_cli.demo import DEMO_POLICIES
from batch_terminator_cli.sandbox import environment
from tests.integration.cli_support import clean, run
from tests.integration.test_fleet_cli import fleet_scene
from tests.integration.test_fleet_emulator import OUTSIDER, TEAM_A, TEAM_B, Scene

__all__ = ["fleet_scene"]

MARKUP = "[bold red]FORGED[/][link=https://example.com]x[/link]"


@pytest.fixture
def again(fleet_scene: tuple[Scene, Path], tmp_path: Path) -> Iterator[Path]:
    """The scene's profiles plus `team-a-again`: team A's own access key under another name (an
    operator with a `dev` and a `dev-admin` profile for one account)."""
    _scene, home = fleet_scene
    original = (home / "credentials").read_text(encoding="utf-8")
    section = original.split("[team-a]\n", 1)[1].split("[", 1)[0]
    credentials = tmp_path / "credentials"
    credentials.write_text(f"{original}[team-a-again]\n{section}", encoding="utf-8")
    with environment({"AWS_SHARED_CREDENTIALS_FILE": str(credentials)}):
        yield home


def decision_keys(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (row["account"], row["region"], row["job_id"], row["outcome"], row["timestamp"])
        for row in rows
        if "outcome" in row
    ]


def test_two_profiles_reaching_one_member_do_not_double_its_decisions(again: Path) -> None:
    result = run(
        "audit", "--profiles", "team-a,team-a-again", "--regions", "us-east-1",
        "--output", "json", "--limit", "500",
    )  # fmt: skip
    clean(result)
    keys = decision_keys(json.loads(result.stdout))
    assert keys
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "arguments",
    [
        ["status"],
        ["plan", "--policies", str(DEMO_POLICIES)],
        ["audit", "--limit", "500"],
    ],
    ids=["status", "plan", "audit"],
)
def test_a_member_reached_through_two_profiles_is_asked_once_and_the_note_names_both(
    again: Path, arguments: list[str]
) -> None:
    """One member, whichever command: the first profile named is the one asked, and stderr
    says which profile was not asked and why."""
    result = run(
        *arguments, "--profiles", "team-a-again,team-a", "--regions", "us-east-1",
        "--output", "json",
    )  # fmt: skip
    clean(result)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(row["account"], row["region"]) for row in rows} <= {(TEAM_A, "us-east-1")}
    if arguments[0] == "status":
        assert len(rows) == 1
    note = " ".join(result.stderr.split())
    assert (
        f"profile team-a reaches account {TEAM_A} in us-east-1, already asked through profile "
        "team-a-again" in note
    )
    assert "1 of 1 members answered" in note


@pytest.mark.parametrize(
    "arguments",
    [
        ["audit", "--fleet", "{home}/fleet.yaml", "--limit", "500"],
        ["audit", "--central", "--fleet", "{home}/fleet.yaml"],
        ["audit", "--profiles", "team-a,ghost,down", "--regions", "us-east-1, eu-west-1"],
        ["plan", "--policies", str(DEMO_POLICIES), "--profiles", "team-a,ghost,nokeys"],
        ["status", "--profiles", "team-b,empty,down", "--regions", "eu-west-1"],
    ],
)
def test_json_output_is_nothing_but_json(
    fleet_scene: tuple[Scene, Path], arguments: list[str]
) -> None:
    """stdout is one JSON document (progress, notes and the summary on stderr), and the exit
    code says whether every member answered (nothing found here)."""
    _scene, home = fleet_scene
    asked = [part.replace("{home}", str(home)) for part in arguments]
    result = run(*asked, "--output", "json")
    clean(result)
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    failed = [row for row in rows if "error" in row and "outcome" not in row]
    assert result.exit_code == (1 if failed else 0), result.output
    for row in failed:
        assert row["profile"]
        assert "\n" not in row["error"]


def test_a_profile_reaching_another_account_than_the_fleet_file_says_is_an_error_row(
    fleet_scene: tuple[Scene, Path],
) -> None:
    """A fleet file naming team A's profile for team B's account: team A's decisions are never
    shown as team B's (nothing found here)."""
    _scene, home = fleet_scene
    fleet = home / "swapped.yaml"
    fleet.write_text(
        "version: 1\n"
        "members:\n"
        f"  - {{account: '{TEAM_B}', regions: [us-east-1, eu-west-1], profile: team-a}}\n",
        encoding="utf-8",
    )
    result = run("audit", "--fleet", str(fleet), "--output", "json", "--limit", "500")
    clean(result)
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [row for row in rows if "outcome" in row] == []
    assert len(rows) == 2
    for row in rows:
        assert row["account"] == TEAM_A
        assert f"not {TEAM_B} as the fleet file says" in row["error"]


def put_central(scene: Scene, *messages: str) -> None:
    """Write `messages` into the central log group, as if EventBridge (or anyone allowed to)
    had."""
    logs = scene.fleet.central_session().client("logs")
    stream = f"hostile-{time.time_ns()}"
    logs.create_log_stream(logGroupName=FLEET_LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=FLEET_LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now, "message": message} for message in messages],
    )


def central_events(scene: Scene) -> list[dict[str, Any]]:
    logs = scene.fleet.central_session().client("logs")
    found = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=FLEET_LOG_GROUP):
        for event in page["events"]:
            try:
                message = json.loads(event["message"])
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("source") == EVENT_SOURCE:
                found.append(message)
    return found


def test_hostile_lines_in_the_central_log_are_shown_literally_and_never_crash(
    fleet_scene: tuple[Scene, Path],
) -> None:
    """Lines that are not JSON, not decision events, or decision events with markup, newlines
    and a huge reason in their Batch text, and one whose detail claims another account than its
    envelope: the central audit prints every real decision, the markup as written, and the
    envelope's account (nothing found here)."""
    scene, home = fleet_scene
    real = next(e for e in central_events(scene) if e["account"] == TEAM_A)
    hostile = json.loads(json.dumps(real))
    hostile["id"] = "hostile-1"
    hostile["detail"].update(
        job_id="hostile-job",
        outcome="terminated",
        skip_reason=None,
        job_name=MARKUP,
        reason=f"line one\n{TEAM_B}\teu-west-1\tterminated\n" + "x" * 100_000,
        account=OUTSIDER,
        region="ap-south-1",
    )
    put_central(
        scene,
        "not json at all [red]x[/red]",
        "[1, 2, 3]",
        json.dumps({"source": EVENT_SOURCE, "detail-type": DECISION_DETAIL_TYPE, "detail": None}),
        json.dumps({"source": "other", "detail-type": "x", "detail": {"job_id": "other"}}),
        json.dumps(hostile),
    )
    fleet = str(home / "fleet.yaml")
    with wide_console():  # no folding: the markup whole on one line
        table = run("audit", "--central", "--fleet", fleet, "--limit", "500")
    clean(table)
    assert table.exit_code == 0, table.output
    assert MARKUP in table.stdout
    text = run("audit", "--central", "--fleet", fleet, "--limit", "500", "--output", "text")
    clean(text)
    lines = [line for line in text.stdout.splitlines() if "hostile-job" in line]
    assert len(lines) == 1
    assert lines[0].startswith(f"{TEAM_A}\t")
    rows = json.loads(
        run("audit", "--central", "--fleet", fleet, "--limit", "500", "--output", "json").stdout
    )
    (row,) = [row for row in rows if row["job_id"] == "hostile-job"]
    assert (row["account"], row["region"]) == (TEAM_A, real["region"])
    assert not [row for row in rows if row["account"] == OUTSIDER]
    assert "other" not in {row["job_id"] for row in rows}


def test_an_event_stored_twice_is_one_decision_in_audit_central(
    fleet_scene: tuple[Scene, Path],
) -> None:
    scene, home = fleet_scene
    stored = next(e for e in central_events(scene) if e["detail"]["outcome"] == "terminated")
    put_central(scene, json.dumps(stored))
    result = run(
        "audit", "--central", "--fleet", str(home / "fleet.yaml"), "--limit", "500",
        "--outcome", "terminated", "--output", "json",
    )  # fmt: skip
    clean(result)
    keys = decision_keys(json.loads(result.stdout))
    assert len(keys) == len(set(keys))


# ---- a member whose endpoint accepts the connection and never answers ------------------------

HANG_LIMIT_SECONDS = 20


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """An HTTP endpoint that accepts every connection and never answers (a member behind a
    stuck proxy or a black-holed VPC endpoint)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def test_a_member_that_never_answers_gets_its_error_row_within_a_bounded_time(
    hanging_endpoint: str, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text(
        f"[profile hang]\nendpoint_url = {hanging_endpoint}\nregion = us-east-1\n",
        encoding="utf-8",
    )
    (tmp_path / "credentials").write_text(
        "[hang]\naws_access_key_id = AKIAHANGING\naws_secret_access_key = secret\n",
        encoding="utf-8",
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    command = [
        sys.executable, "-c", "from batch_terminator_cli.main import app; app()",
        "status", "--profiles", "hang", "--regions", "us-east-1", "--output", "json",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_LIMIT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"one hanging member held the command over {HANG_LIMIT_SECONDS} s")
    assert done.returncode == 1
    [row] = json.loads(done.stdout)
    assert row["profile"] == "hang"
    assert "timeout" in row["error"].lower()


def test_a_fleet_file_region_the_cli_refuses_is_named_not_an_internal_error(
    fleet_scene: tuple[Scene, Path],
) -> None:
    _scene, home = fleet_scene
    fleet = home / "newline-region.yaml"
    fleet.write_text(
        'version: 1\nmembers:\n  - {account: "' + TEAM_B + '", regions: ["eu-west-1\\n"], '
        "profile: team-b}\n",
        encoding="utf-8",
    )
    result = run("status", "--fleet", str(fleet), "--output", "json")
    clean(result)


@contextlib.contextmanager
def wide_console() -> Iterator[None]:
    """The CLI's consoles 1,000 columns wide, whatever the terminal (or COLUMNS when the
    consoles were made) says: a cell is then never folded."""
    consoles = (conventions.out, conventions.err)
    widths = [console._width for console in consoles]
    try:
        for console in consoles:
            console.width = 1000
        yield
    finally:
        for console, width in zip(consoles, widths, strict=True):
            console._width = width


def test_a_profile_name_with_markup_is_printed_literally(fleet_scene: tuple[Scene, Path]) -> None:
    """A profile name is the operator's text, shown in the error row as written (nothing found
    here)."""
    with wide_console():
        result = run("status", "--profiles", f"team-b,{MARKUP}", "--regions", "eu-west-1")
    clean(result)
    assert result.exit_code == 1
    assert f"profile {MARKUP}:" in result.stdout
