"""Durations as people write them in policies, requests and tags: `90s`, `15m`, `6h`, `2d`, `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

# ASCII digits only: Python's `\d` takes any Unicode digit ("\u0663h", ARABIC-INDIC THREE, would
# read as 3h), and the same pattern is the JSON schema's, where `\d` is ASCII.
DURATION_PATTERN: Final = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_SECONDS: Final = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
# The longest duration accepted anywhere (policies, requests, tags): a year and a day. No Batch job
# limit needs more, and every datetime arithmetic on it stays far from overflow.
MAX_DURATION: Final = timedelta(days=366)
MAX_DURATION_TEXT: Final = "366d"
_MAX_DIGITS: Final = 10


def parse_duration(text: str) -> timedelta:
    """Parse `2d`, `6h`, `90m`, `30s` or a descending combination such as `1h30m`.

    Raises ValueError (with the text and the rule) when the text is not a duration, is zero, or
    is longer than MAX_DURATION.
    """
    cleaned = text.strip().lower()
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(
            f"invalid duration {text[:40]!r}: use a number and a unit s, m, h or d, e.g. 90m, 6h, 2d"
        )
    parts = [part for part in match.groups() if part]
    if any(len(part) > _MAX_DIGITS for part in parts):  # never build a huge integer
        raise ValueError(f"invalid duration {text[:40]!r}: at most {MAX_DURATION_TEXT}")
    seconds = sum(int(part[:-1]) * _UNIT_SECONDS[part[-1]] for part in parts)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"invalid duration {text!r}: at most {MAX_DURATION_TEXT}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render an age compactly and without rounding up: 12h07m, 2d03h, 45m, 30s."""
    total = max(int(value.total_seconds()), 0)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{seconds:02d}s" if seconds and minutes < 10 else f"{minutes}m"
    return f"{seconds}s"


def format_limit(value: timedelta) -> str:
    """Render a configured limit exactly, the way it would be written in the policies file."""
    total = int(value.total_seconds())
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
