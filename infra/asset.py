"""The Lambda asset: the runtime package, its validated policies, and a newer Batch API model.

Built by copying files only: the Powertools layer and the Lambda runtime provide every
dependency, so nothing is installed or bundled; the package's bytecode for the runtime's Python
is compiled beside it when this machine has that Python (`infra.bytecode`). The output depends only on its inputs, so the
CDK asset hash is stable.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Final

import botocore

from batch_terminator.models.policies import PoliciesFile
from infra.bytecode import compile_package, find_interpreter
from infra.paths import LAMBDA_PACKAGE_DIR

PACKAGE_NAME: Final = "batch_terminator"
POLICIES_JSON: Final = "policies.json"
BOTOCORE_DATA_DIR: Final = "botocore_data"
BATCH_MODEL: Final = Path("batch", "2016-08-10", "service-2.json.gz")
# Where Lambda unpacks the asset; AWS_DATA_PATH points the runtime's botocore at our models.
LAMBDA_TASK_ROOT: Final = "/var/task"
AWS_DATA_PATH: Final = f"{LAMBDA_TASK_ROOT}/{BOTOCORE_DATA_DIR}"

_ASSET_ENTRIES: Final = frozenset({PACKAGE_NAME, BOTOCORE_DATA_DIR})


def installed_batch_model() -> Path:
    """The Batch model of the pinned botocore, which knows the bulk TerminateJobs call."""
    return Path(botocore.__file__).parent / "data" / BATCH_MODEL


def build_lambda_asset(
    policies: PoliciesFile, out_dir: Path, python_runtime: str | None = None
) -> Path:
    """(Re)create `out_dir` as the asset directory and return it. With `python_runtime` (a
    Lambda runtime identifier such as `python3.13`), the package's bytecode for that Python is
    shipped too when this machine has that Python (`infra.bytecode`); otherwise a one-line note
    on stderr says the functions will compile their source at each cold start. Raises ValueError
    for a directory this code did not create; CalledProcessError when a module does not
    compile."""
    out_dir = out_dir.resolve()
    _refuse_foreign_directory(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        shutil.copytree(
            LAMBDA_PACKAGE_DIR,
            staging / PACKAGE_NAME,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        (staging / PACKAGE_NAME / POLICIES_JSON).write_text(policies.to_json(), encoding="utf-8")
        if python_runtime is not None:
            _ship_bytecode(staging / PACKAGE_NAME, python_runtime)
        model = staging / BOTOCORE_DATA_DIR / BATCH_MODEL
        model.parent.mkdir(parents=True)
        shutil.copyfile(installed_batch_model(), model)
        _normalize_modes(staging)
        # Build beside the target and swap it in, so a failed build never leaves half an asset.
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _ship_bytecode(package: Path, python_runtime: str) -> None:
    interpreter = find_interpreter(python_runtime)
    if interpreter is None:
        print(
            f"note: no {python_runtime} interpreter on this machine: the Lambda asset ships "
            "source only, and each cold start compiles it (install that Python to ship bytecode)",
            file=sys.stderr,
        )
        return
    compile_package(package, interpreter, LAMBDA_TASK_ROOT)


def _refuse_foreign_directory(out_dir: Path) -> None:
    """The directory is deleted and rebuilt: never do that to one this code did not create."""
    if out_dir.exists() and not {entry.name for entry in out_dir.iterdir()} <= _ASSET_ENTRIES:
        raise ValueError(
            f"{out_dir} holds files that are not a Lambda asset; refusing to replace it"
        )


def _normalize_modes(root: Path) -> None:
    # Lambda needs world-readable files; fixed modes also keep the zip independent of the umask.
    root.chmod(0o755)
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            Path(directory, name).chmod(0o755)
        for name in files:
            Path(directory, name).chmod(0o644)
