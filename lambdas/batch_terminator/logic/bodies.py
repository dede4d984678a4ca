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
    """Strict JSON: no duplicate keys, no NaN or Infinity, no text that is not Unicode (a lone
    surrogate, escaped or not). Raises InvalidRequest (DuplicateKey for a key given twice) with
    one line that says what is wrong and where."""

    def no_constants(name: str) -> Any:
        raise InvalidRequest(f"{name} is not JSON")

    try:
        loaded = json.loads(body, object_pairs_hook=no_duplicate_keys, parse_constant=no_constants)
        where = None if _is_unicode(body, loaded) else _first_non_unicode(loaded)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise InvalidRequest("body is nested too deeply to be a request") from exc
    if where is not None:
        raise InvalidRequest(
            f"{where or 'body'}: not valid Unicode: an unpaired surrogate (U+D800 to U+DFFF)"
        )
    return loaded


def _first_non_unicode(document: Any) -> str:
    """The key path (`selector.jobNamePrefix`, `jobIds.2`) of the first text in `document`
    that is not Unicode, as a key or a value; "" when it is the document itself (or the raw
    body). Iterative: a document json.loads read may be nested deeper than Python recurses."""
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str) and not _encodes(value):
            return path
        items: list[tuple[Any, Any]] = []
        if isinstance(value, dict):
            for key, item in value.items():
                if not _encodes(key):
                    return f"{path}.{key!a}" if path else f"{key!a}"
                items.append((key, item))
        elif isinstance(value, list):
            items = list(enumerate(value))
        pending.extend(
            (f"{path}.{key}" if path else str(key), item) for key, item in reversed(items)
        )
    return ""


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_unicode(body: str, loaded: Any) -> bool:
    """Whether the decoded document holds only Unicode text. JSON's grammar lets a `\\uD800`
    escape through alone, but it decodes to no character (RFC 8259, section 8.2), cannot be
    written as UTF-8 (a log line, a hash, a Batch call) and would fail whatever handles it.
    Pairs of escapes (`\\ud83d\\ude00`) are one character and fine; one half alone, or a raw
    surrogate in the text, is not."""
    if not _encodes(body):
        return False
    if "\\u" not in body:
        return True
    return _encodes(json.dumps(loaded, ensure_ascii=False))
