"""Checks on the text people write (reasons, names, keys), pure and free of pydantic: the schema
models and the functions' own request validator share them."""

from __future__ import annotations

import difflib
import unicodedata
from typing import Any, Final

# An error names at most this many unknown keys, each cut to this many characters: the error goes
# into a DLQ attribute and an audit line, and a hostile body may carry thousands of huge keys.
_NAMED_KEYS = 5
_KEY_CHARACTERS = 80


def unknown_keys_message(unknown: list[Any], allowed: list[str]) -> str:
    """`unknown key 'dryrun' (did you mean 'dryRun'?); allowed keys: ...`, naming at most
    five keys of at most 80 characters each."""
    parts = []
    for key in unknown[:_NAMED_KEYS]:
        name = str(key)
        shown = repr(key) if len(name) <= _KEY_CHARACTERS else repr(name[:_KEY_CHARACTERS] + "…")
        text = f"unknown key {shown}"
        close = (
            difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            if len(name) <= _KEY_CHARACTERS
            else []
        ) or [a for a in allowed if a.lower() == name.lower()]
        if close:
            text += f" (did you mean {close[0]!r}?)"
        parts.append(text)
    if len(unknown) > _NAMED_KEYS:
        parts.append(f"and {len(unknown) - _NAMED_KEYS} more unknown keys")
    return f"{'; '.join(parts)}; allowed keys: {', '.join(allowed)}"


# Unicode categories that show nothing: separators, control and format characters (such as the
# zero-width space), unassigned and private-use code points.
_INVISIBLE_CATEGORIES: Final = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cn", "Co", "Cs"})


# Bidirectional overrides and isolates reorder what a terminal or console shows ("Trojan Source",
# CVE-2021-42574): a reason must read as it is stored.
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Control characters (Cc: newlines, escapes, NUL, NEL) and the line and paragraph separators
# (Zl U+2028, Zp U+2029), which end a line wherever Unicode line boundaries count (Python's
# str.splitlines, editors, log viewers).
_LINE_BREAKING_CATEGORIES: Final = frozenset({"Cc", "Zl", "Zp"})


def no_control_characters(value: str) -> str:
    """Control characters (newlines, escapes, NUL), line and paragraph separators and
    bidirectional overrides have no place in a name, pattern or reason: they forge log lines and
    terminal output. Returns `value`; raises ValueError naming each such character (U+XXXX)."""
    bad = sorted(
        {
            f"U+{ord(c):04X}"
            for c in value
            if unicodedata.category(c) in _LINE_BREAKING_CATEGORIES or c in _BIDI_CONTROLS
        }
    )
    if bad:
        raise ValueError(f"must not contain control characters ({', '.join(bad)})")
    return value


def visible(value: str) -> str:
    """At least one character that shows: a reason of blanks or zero-width spaces says nothing."""
    if not any(unicodedata.category(c) not in _INVISIBLE_CATEGORIES for c in value):
        raise ValueError("must contain at least one visible character")
    return value


POLICY_NAME_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
