"""Strict JSON for the bodies and files the functions read: no duplicate keys, no NaN or
Infinity. Pure and free of pydantic, so a function that only reads events imports no models."""

from __future__ import annotations

import json
from typing import Any


class InvalidRequest(ValueError):
    """The request can never succeed as written: it goes to the DLQ with this message."""


class DuplicateKey(InvalidRequest):
    """A JSON object gives one key twice."""


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for `json.loads`: the object, or DuplicateKey when a key is given
    twice. `{"dryRun": true, "dryRun": false}` is ambiguous: JSON parsers disagree on which wins
    (Python's and pydantic's take the last)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(f"key {key!r} is given twice")
        seen[key] = value
    return seen


def load_json(body: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN or Infinity. Raises InvalidRequest (DuplicateKey
    for a key given twice) with one line that says what is wrong and where."""

    def no_constants(name: str) -> Any:
        raise InvalidRequest(f"{name} is not JSON")

    try:
        return json.loads(body, object_pairs_hook=no_duplicate_keys, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise InvalidRequest("body is nested too deeply to be a request") from exc
