"""Where things live in the repository, independent of the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Final

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
LAMBDA_PACKAGE_DIR: Final = PROJECT_ROOT / "lambdas" / "batch_terminator"
DEFAULT_ASSET_DIR: Final = PROJECT_ROOT / "build" / "lambda-asset"


def project_path(path: str | Path) -> Path:
    """A relative path is taken from the project root (where cdk.json is), not the caller's cwd."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path
