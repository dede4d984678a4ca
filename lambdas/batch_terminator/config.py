"""The policies the functions obey: policies.json, validated at synth time and shipped in the asset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from batch_terminator.logic.bodies import DuplicateKey, InvalidRequest, load_json
from batch_terminator.models.policies import PoliciesFile

PACKAGED_POLICIES: Final = Path(__file__).with_name("policies.json")
POLICIES_FILE_ENV: Final = "POLICIES_FILE"


def load_config(path: str | Path | None = None) -> PoliciesFile:
    """Fail closed: without its policies (protect tag, allowed queues) no function may act.

    Raises ValidationError when the file is not valid JSON, gives a key twice (JSON parsers
    disagree on which of the two wins, so neither is taken), or is not a valid policies file;
    OSError when it cannot be read."""
    location = Path(path or os.environ.get(POLICIES_FILE_ENV) or PACKAGED_POLICIES)
    text = location.read_text(encoding="utf-8")
    try:
        load_json(text)
    except DuplicateKey as exc:
        raise ValidationError.from_exception_data(
            PoliciesFile.__name__,
            [
                {
                    "type": PydanticCustomError(
                        "duplicate_key", "{message}", {"message": str(exc)}
                    ),
                    "loc": (),
                    "input": location.name,
                }
            ],
        ) from exc
    except InvalidRequest:  # not JSON: pydantic's error below says where
        pass
    return PoliciesFile.model_validate_json(text)
