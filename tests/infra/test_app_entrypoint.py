"""app.py as the CDK CLI runs it: context from CDK_CONTEXT_JSON, output to CDK_OUTDIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.paths import PROJECT_ROOT

BROKEN_POLICIES = """\
version: 1
settings:
  dryrun: true
"""


def run_app(outdir: Path, context: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        # How the CDK CLI hands `-c key=value` and cdk.json context to the app.
        "CDK_CONTEXT_JSON": json.dumps(context),
    }
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "app.py")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_broken_policies_file_fails_with_the_key_named(tmp_path: Path) -> None:
    policies = tmp_path / "policies.yaml"
    policies.write_text(BROKEN_POLICIES, encoding="utf-8")
    result = run_app(tmp_path / "out", {"policiesFile": str(policies)})
    assert result.returncode == 1
    assert "line 3: settings.dryrun: unknown key 'dryrun'" in result.stderr
    assert "did you mean 'dryRun'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_missing_policies_file_fails_clearly(tmp_path: Path) -> None:
    result = run_app(tmp_path / "out", {"policiesFile": str(tmp_path / "absent.yaml")})
    assert result.returncode == 1
    assert "absent.yaml" in result.stderr
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_context_value_fails_with_the_key_named(tmp_path: Path) -> None:
    result = run_app(tmp_path / "out", {"terminatorBatchSize": "lots"})
    assert result.returncode == 1
    assert "terminatorBatchSize: expected a whole number, got 'lots'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cdk_json_runs_app_py() -> None:
    config = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))
    assert config["app"] == "python3 app.py"


def test_broken_fleet_file_fails_with_one_line(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        'version: 1\nmembers:\n  - {account: "2222", regions: [us-east-1]}\n', encoding="utf-8"
    )
    result = run_app(tmp_path / "out", {"fleetFile": str(fleet)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"{fleet}: members[0].account (line 3): an account is 12 digits, got '2222'"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
