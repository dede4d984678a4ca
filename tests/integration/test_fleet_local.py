"""`batch-terminator local --fleet`: the fleet served on 127.0.0.1, reached through the AWS CLI
profiles it writes, answers the fleet commands as a deployed fleet would."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path

from batch_terminator_cli.demo import demo_policies
from batch_terminator_cli.local_server import LocalFleetServer
from batch_terminator_cli.sandbox import environment
from tests.integration.cli_support import clean, run

TEAM_A, TEAM_B, AUDIT = "222222222222", "333333333333", "111111111111"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_local_fleet_answers_status_request_and_the_central_audit(tmp_path: Path) -> None:
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        "version: 1\n"
        f"central: {{account: '{AUDIT}', region: us-east-1, profile: audit}}\n"
        "members:\n"
        f"  - {{account: '{TEAM_A}', regions: [us-east-1], profile: team-a}}\n"
        f"  - {{account: '{TEAM_B}', regions: [eu-west-1], profile: team-b}}\n",
        encoding="utf-8",
    )
    policies = demo_policies()
    server = LocalFleetServer(
        {(TEAM_A, "us-east-1"): policies, (TEAM_B, "eu-west-1"): policies},
        central=(AUDIT, "us-east-1"),
        port=_free_port(),
        sweep_seconds=0,
    )
    fleet = server.start(str(tmp_path))
    try:
        names = {TEAM_A: "team-a", TEAM_B: "team-b", AUDIT: "audit"}
        credentials, config = server.write_profiles(tmp_path, names)
        jobs = {
            (m.account, m.region): m.box.world.job(
                "notebook", "spot-cpu", "RUNNING", age=timedelta(minutes=30), definition="etl"
            )
            for m in fleet.members
        }
        files = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}
        with environment(files):
            status = run("status", "--fleet", str(fleet_file), "--output", "json")
            clean(status)
            assert status.exit_code == 0, status.output
            rows = json.loads(status.stdout)
            assert [(r["account"], r["region"], r["paused"]) for r in rows] == [
                (TEAM_A, "us-east-1", False),
                (TEAM_B, "eu-west-1", False),
            ]
            for (account, region), job in jobs.items():
                sent = run(
                    "request", job, "--reason", f"stop {account}", "--profile", names[account],
                    "--region", region,
                )  # fmt: skip
                clean(sent)
                assert sent.exit_code == 0, sent.output
            server.serve_once()
            central = run(
                "audit", "--central", "--fleet", str(fleet_file), "--outcome", "terminated",
                "--output", "json",
            )  # fmt: skip
            clean(central)
            assert central.exit_code == 0, central.output
            found = {
                (r["account"], r["region"], r["job_id"], r["reason"])
                for r in json.loads(central.stdout)
            }
            assert found == {(a, r, job, f"stop {a}") for (a, r), job in jobs.items()}
    finally:
        server.stop()
