"""The policies the functions obey: policies.json, validated at synth time and shipped in the asset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from batch_terminator.models.policies import PoliciesFile

PACKAGED_POLICIES: Final = Path(__file__).with_name("policies.json")
POLICIES_FILE_ENV: Final = "POLICIES_FILE"


def load_config(path: str | Path | None = None) -> PoliciesFile:
    """Fail closed: without its policies (protect tag, allowed queues) no function may act."""
    location = Path(path or os.environ.get(POLICIES_FILE_ENV) or PACKAGED_POLICIES)
    return PoliciesFile.model_validate_json(location.read_text(encoding="utf-8"))
