"""Bytecode for the Lambda runtime's Python, compiled at build time and shipped in the asset.

Lambda unpacks the asset into /var/task, which is read-only: Python cannot cache the bytecode it
compiles there, so every cold start compiles every module it imports from source. That is a
third of the terminator's cold import (bench/import_time.py). Shipping `__pycache__/*.pyc` built
by the runtime's own Python version (bytecode is per minor version: `cpython-313` for
python3.13) removes it. Python's import system loads such a file next to its source without
writing anything ("Cached bytecode invalidation", Python docs, importlib; PEP 3147, PEP 552).

The files are compiled with `checked-hash` invalidation (PEP 552): they carry the source's hash
instead of a timestamp, so the asset stays byte-for-byte reproducible (and its CDK hash stable),
and Python uses one only while its source still has that hash (an edit made in the console is
compiled, not ignored); `PYTHONHASHSEED=0` keeps set constants in one order. Tracebacks name
/var/task paths, as they would for source compiled there.

When the build machine has no interpreter of the runtime's version, the asset ships source only
and the functions compile it at each cold start, as before: correct, only slower.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

# `python3.13` → (3, 13). Lambda's runtime identifiers (Lambda developer guide, "Lambda
# runtimes").
_RUNTIME: Final = re.compile(r"python(?P<major>3)\.(?P<minor>[0-9]+)")
# The version, the implementation, and the interpreter's own path: a pyenv shim or a wrapper
# found on PATH is resolved to the executable it runs, so compiling does not depend on how the
# environment selects it.
_VERSION_PROBE: Final = (
    "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name); "
    "print(sys.executable)"
)
# The interpreter's own configuration must not leak in from the build's (a virtualenv's
# PYTHONPATH, a startup file); the hash seed is fixed so set constants keep one order.
_DROPPED: Final = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE")


class BytecodeError(Exception):
    """The runtime's Python could not compile the package: the message is one line naming the
    module and the error."""


def _environment() -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    return {**kept, "PYTHONHASHSEED": "0"}


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
    running it, as the path of its executable (`sys.executable`, past any shim); None when
    there is none."""
    version = runtime_version(runtime)
    if version is None:
        return None
    for candidate in _candidates(version):
        try:
            answer = subprocess.run(  # noqa: S603 - an interpreter found on PATH or in pyenv
                [str(candidate), "-s", "-c", _VERSION_PROBE],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
                env=_environment(),
            ).stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(answer) == 2 and answer[0].split() == [f"{version[0]}.{version[1]}", "cpython"]:
            executable = Path(answer[1].strip())
            if executable.is_file():
                return executable
    return None


def compile_package(package: Path, interpreter: Path, task_root: str) -> None:
    """`_compile` once per content: the bytecode depends only on the sources, the interpreter
    and `task_root` (that is what makes it reproducible), so a second build of the same package
    in this process (a synth of several stages, the tests) copies the files it made."""
    sources = sorted(package.rglob("*.py"))
    key = hashlib.sha256(f"{interpreter}\0{task_root}\0{package.name}".encode())
    for source in sources:
        key.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    made = _COMPILED.get(key.hexdigest())
    if made is None:
        _compile(package, interpreter, task_root)
        made = {
            str(path.relative_to(package)): path.read_bytes()
            for path in sorted(package.rglob("*.pyc"))
        }
        _COMPILED[key.hexdigest()] = made
        return
    for relative, data in made.items():
        target = package / relative
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)


# Bytecode made in this process: content key -> {path in the package: bytes}.
_COMPILED: dict[str, dict[str, bytes]] = {}


def _compile(package: Path, interpreter: Path, task_root: str) -> None:
    """Write `__pycache__/<module>.<tag>.pyc` beside every module under `package`, compiled by
    `interpreter` as checked-hash bytecode (PEP 552: used only while it matches its source, so a
    source edited after the build is compiled again, never ignored), naming
    `task_root`/<package>/... in tracebacks. Raises BytecodeError when a module does not
    compile or the interpreter fails."""
    try:
        done = subprocess.run(  # noqa: S603 - the interpreter find_interpreter checked
            [
                str(interpreter),
                "-s",
                "-m",
                "compileall",
                "-q",
                "--invalidation-mode",
                "checked-hash",
                "-d",
                f"{task_root}/{package.name}",
                str(package),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=_environment(),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BytecodeError(f"{interpreter} could not compile {package.name}: {exc}") from exc
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        detail = " ".join(line.strip() for line in said[-3:]) or f"exit {done.returncode}"
        raise BytecodeError(f"{interpreter} could not compile {package.name}: {detail}")
