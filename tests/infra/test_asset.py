"""The Lambda asset: runtime package, policies.json, and the newer Batch model for botocore."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from importlib.util import cache_from_source, source_hash
from pathlib import Path

import pytest
from aws_cdk import FileSystem

from batch_terminator.config import load_config
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.policies_file import load_policies
from infra.asset import BATCH_MODEL, build_lambda_asset
from infra.paths import LAMBDA_PACKAGE_DIR, PROJECT_ROOT
from tests.infra.support import Synthesized


@pytest.fixture(scope="module")
def policies() -> PoliciesFile:
    return load_policies(PROJECT_ROOT / "policies.yaml")


# The Python running the tests stands for the Lambda runtime's: this machine has it for sure.
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def asset(policies: PoliciesFile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lambda_asset(policies, tmp_path_factory.mktemp("asset") / "lambda-asset", RUNTIME)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mode & 0o777)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_top_level_holds_the_package_and_the_models(asset: Path) -> None:
    assert sorted(p.name for p in asset.iterdir()) == ["batch_terminator", "botocore_data"]


def test_package_is_a_copy_with_only_its_own_bytecode(asset: Path) -> None:
    copied = {
        str(p.relative_to(asset / "batch_terminator"))
        for p in (asset / "batch_terminator").rglob("*")
        if p.is_file() and p.suffix != ".pyc"
    }
    source = {
        str(p.relative_to(LAMBDA_PACKAGE_DIR))
        for p in LAMBDA_PACKAGE_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert copied == source | {"policies.json"}
    assert "handlers/terminator.py" in copied
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in copied)


def test_policies_json_round_trips(asset: Path, policies: PoliciesFile) -> None:
    text = (asset / "batch_terminator" / "policies.json").read_text(encoding="utf-8")
    assert load_config(asset / "batch_terminator" / "policies.json") == policies
    # The schema reads it as the functions do: what was validated is what ships.
    assert PoliciesFile.model_validate(json.loads(text)) == policies
    # Written by alias, as the runtime reads it.
    assert "sweepInterval" in json.loads(text)["settings"]


def test_batch_model_knows_bulk_terminate_jobs(asset: Path) -> None:
    model_path = asset / "botocore_data" / BATCH_MODEL
    assert model_path.relative_to(asset).as_posix() == (
        "botocore_data/batch/2016-08-10/service-2.json.gz"
    )
    with gzip.open(model_path, "rt", encoding="utf-8") as model_file:
        model = json.load(model_file)
    assert model["metadata"]["serviceId"] == "Batch"
    assert "TerminateJobs" in model["operations"]
    assert "TerminateJob" in model["operations"]


def test_files_are_world_readable(asset: Path) -> None:
    for path in asset.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


def test_rebuild_is_identical_and_hashes_the_same(
    asset: Path, policies: PoliciesFile, tmp_path: Path
) -> None:
    again = build_lambda_asset(policies, tmp_path / "again", RUNTIME)
    assert tree(again) == tree(asset)
    assert FileSystem.fingerprint(str(again)) == FileSystem.fingerprint(str(asset))


def test_rebuild_replaces_the_previous_asset(policies: PoliciesFile, tmp_path: Path) -> None:
    out = tmp_path / "asset"
    build_lambda_asset(policies, out)
    (out / "batch_terminator" / "stale.py").write_text("", encoding="utf-8")
    build_lambda_asset(policies, out)
    assert not (out / "batch_terminator" / "stale.py").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["asset"]  # no staging directory left


def test_refuses_to_replace_a_foreign_directory(policies: PoliciesFile, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="refusing"):
        build_lambda_asset(policies, tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_stack_deploys_the_built_asset(synth: Synthesized) -> None:
    [staged] = [p for p in synth.outdir.iterdir() if p.name.startswith("asset.")]
    assert (staged / "botocore_data" / BATCH_MODEL).is_file()
    assert (staged / "batch_terminator" / "policies.json").is_file()
    assert os.access(staged / "batch_terminator" / "handlers" / "terminator.py", os.R_OK)


def test_every_module_ships_its_bytecode_for_the_runtime(asset: Path) -> None:
    modules = sorted((asset / "batch_terminator").rglob("*.py"))
    assert modules
    shipped = set((asset / "batch_terminator").rglob("*.pyc"))
    assert shipped == {Path(cache_from_source(str(module))) for module in modules}
    for module in modules:
        data = Path(cache_from_source(str(module))).read_bytes()
        # PEP 552 header: magic, flags (0b11: hash-based, checked), the source's hash.
        assert int.from_bytes(data[4:8], "little") == 0b11, module
        assert data[8:16] == source_hash(module.read_bytes()), module


def _loaded_from(asset: Path, module: str) -> str:
    """Where `python -v` says the module's code object came from."""
    done = subprocess.run(
        [sys.executable, "-S", "-B", "-v", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": os.pathsep.join([str(asset), *sys.path[1:]]), "PYTHONHASHSEED": "0"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    leaf = module.rsplit(".", 1)[-1]
    [line] = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("# code object from") and f"/{leaf}." in line
    ]
    return line


def test_the_shipped_bytecode_is_what_imports(asset: Path) -> None:
    assert ".pyc" in _loaded_from(asset, "batch_terminator.decisions")


def test_a_source_edited_after_the_build_is_compiled_not_ignored(
    asset: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "asset"
    subprocess.run(["cp", "-r", str(asset), str(copy)], check=True)
    source = copy / "batch_terminator" / "decisions.py"
    source.write_text(source.read_text(encoding="utf-8") + "\nEDITED = True\n", encoding="utf-8")
    assert _loaded_from(copy, "batch_terminator.decisions").endswith("decisions.py")


def test_without_the_runtimes_python_the_asset_ships_source_and_says_so(
    policies: PoliciesFile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = build_lambda_asset(policies, tmp_path / "asset", "python3.99")
    assert not list(out.rglob("*.pyc"))
    assert "no python3.99 interpreter" in capsys.readouterr().err
