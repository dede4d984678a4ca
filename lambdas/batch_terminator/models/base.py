"""Base model: camelCase keys on the wire, unknown keys rejected with the allowed ones named."""

from __future__ import annotations

import difflib
import unicodedata
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from batch_terminator.contract import JobStatus
from batch_terminator.logic.durations import (
    DURATION_PATTERN,
    MAX_DURATION_TEXT,
    format_limit,
    parse_duration,
)


class ContractModel(BaseModel):
    """Every key a user writes must be known: a misspelt `dryrun` must never be ignored."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = sorted(field.alias or name for name, field in cls.model_fields.items())
            unknown = [key for key in data if key not in allowed]
            if unknown:
                raise ValueError(_unknown_keys_message(unknown, allowed))
            # An explicit null is not "the default": `"dryRun": null` must not read as false.
            nulls = [key for key, value in data.items() if value is None]
            if nulls:
                raise ValueError(
                    "; ".join(
                        f"{key!r} is null: give a value or leave the key out" for key in nulls
                    )
                )
        return data


# An error names at most this many unknown keys, each cut to this many characters: the error goes
# into a DLQ attribute and an audit line, and a hostile body may carry thousands of huge keys.
_NAMED_KEYS = 5
_KEY_CHARACTERS = 80


def _unknown_keys_message(unknown: list[Any], allowed: list[str]) -> str:
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


def _to_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("a duration must be a string such as 90m, 6h or 2d")
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    PlainSerializer(format_limit, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": (
                "A duration: 90s, 15m, 6h, 2d or a combination such as 1h30m; "
                f"at most {MAX_DURATION_TEXT}."
            ),
            "examples": ["90m", "6h", "2d"],
        }
    ),
]

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


NonEmptyStr = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=1024),
    AfterValidator(no_control_characters),
]
# Free text a person reads (reasons, who asked): no control characters, something visible.
VisibleText = Annotated[
    str,
    StringConstraints(strict=True),
    AfterValidator(no_control_characters),
    AfterValidator(visible),
]


POLICY_NAME_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
# A policy's name: shared by the policies file and a policy run's requests.
PolicyName = Annotated[str, StringConstraints(strict=True, pattern=POLICY_NAME_PATTERN)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _only_active(statuses: list[JobStatus]) -> list[JobStatus]:
    finished = [s.value for s in statuses if s.is_final]
    if finished:
        raise ValueError(f"finished jobs cannot be terminated: remove {', '.join(finished)}")
    return statuses


# One status or a list of them; the active ones only where a job is to be terminated.
StatusList = Annotated[list[JobStatus], BeforeValidator(_one_or_many), Field(min_length=1)]
ActiveStatusList = Annotated[StatusList, AfterValidator(_only_active)]


def describe_validation_error(error: ValidationError) -> list[str]:
    """One readable line per problem: `selector.jobQueues: field required`."""
    lines = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location else message)
    return lines
