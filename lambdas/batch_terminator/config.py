"""The policies the functions obey: policies.json, validated at synth time and shipped in the asset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from batch_terminator.logic.bodies import InvalidRequest, load_json
from batch_terminator.models.policies import PoliciesFile

PACKAGED_POLICIES: Final = Path(__file__).with_name("policies.json")
POLICIES_FILE_ENV: Final = "POLICIES_FILE"


class InvalidPolicies(ValueError):
    """policies.json is not the normalized document of a valid policies file; the message
    names the file and what is wrong with it."""


def load_config(path: str | Path | None = None) -> PoliciesFile:
    """Fail closed: without its policies (protect tag, allowed queues) no function may act.

    Reads the normalized document the synth wrote (`PoliciesFile.to_json`), without pydantic
    (`PoliciesFile.from_document`). Raises InvalidPolicies when the file is not valid JSON,
    gives a key twice (JSON parsers disagree on which of the two wins, so neither is taken), or
    is not that document; OSError when it cannot be read."""
    location = Path(path or os.environ.get(POLICIES_FILE_ENV) or PACKAGED_POLICIES)
    text = location.read_text(encoding="utf-8")
    try:
        document = load_json(text)
    except InvalidRequest as exc:  # its message speaks of a request body
        raise InvalidPolicies(
            f"{location.name}: {str(exc).replace('body is not JSON', 'not JSON', 1)}"
        ) from exc
    try:
        return PoliciesFile.from_document(document)
    except ValueError as exc:
        raise InvalidPolicies(f"{location.name}: {exc}") from exc
