"""Bytecode for the Lambda runtime's Python, compiled at build time and shipped in the asset.

Lambda unpacks the asset into /var/task, which is read-only: Python cannot cache the bytecode it
compiles there, so every cold start compiles every module it imports from source. That is a
third of the terminator's cold import (bench/import_time.py). Shipping `__pycache__/*.pyc` built
by the runtime's own Python version (bytecode is per minor version: `cpython-313` for
python3.13) removes it. Python's import system loads such a file next to its source without
writing anything ("Cached bytecode invalidation", Python docs, importlib; PEP 3147, PEP 552).

The files are compiled with `unchecked-hash` invalidation (PEP 552): they carry the source's
hash and are used as they are, with no timestamp, so the asset stays byte-for-byte reproducible
(and its CDK hash stable); `PYTHONHASHSEED=0` keeps set constants in one order. Tracebacks name
/var/task paths, as they would for source compiled there.

When the build machine has no interpreter of the runtime's version, the asset ships source only
and the functions compile it at each cold start, as before: correct, only slower.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

# `python3.13` → (3, 13). Lambda's runtime identifiers (Lambda developer guide, "Lambda
# runtimes").
_RUNTIME: Final = re.compile(r"python(?P<major>3)\.(?P<minor>[0-9]+)")
_VERSION_PROBE: Final = "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"


def runtime_version(runtime: str) -> tuple[int, int] | None:
    """`python3.13` → (3, 13); None for a runtime that is not a Python one."""
    match = _RUNTIME.fullmatch(runtime)
    return (int(match.group("major")), int(match.group("minor"))) if match else None


def _candidates(version: tuple[int, int]) -> list[Path]:
    name = f"python{version[0]}.{version[1]}"
    found = [Path(p) for p in (shutil.which(name),) if p]
    # pyenv keeps each version under $PYENV_ROOT/versions/<x.y.z>, off the PATH until selected.
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if root.is_dir():
        found += sorted(root.glob(f"{version[0]}.{version[1]}.*/bin/{name}"), reverse=True)
    return found


def find_interpreter(runtime: str) -> Path | None:
    """A CPython of the runtime's minor version on this machine (PATH, then pyenv), checked by
    running it; None when there is none."""
    version = runtime_version(runtime)
    if version is None:
        return None
    for candidate in _candidates(version):
        try:
            answer = subprocess.run(  # noqa: S603 - an interpreter found on PATH or in pyenv
                [str(candidate), "-I", "-c", _VERSION_PROBE],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if answer == [f"{version[0]}.{version[1]}", "cpython"]:
            return candidate
    return None


def compile_package(package: Path, interpreter: Path, task_root: str) -> None:
    """Write `__pycache__/<module>.<tag>.pyc` beside every module under `package`, compiled by
    `interpreter`, naming `task_root`/<package>/... in tracebacks. Raises CalledProcessError
    when a module does not compile (the asset is then not built)."""
    subprocess.run(  # noqa: S603 - the interpreter find_interpreter checked
        [
            str(interpreter),
            # Not -I: it would ignore PYTHONHASHSEED. -s and a bare environment keep it apart.
            "-s",
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            "-d",
            f"{task_root}/{package.name}",
            str(package),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
    )
