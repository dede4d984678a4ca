"""Base model: camelCase keys on the wire, unknown keys rejected with the allowed ones named."""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from batch_terminator.logic.durations import DURATION_PATTERN, format_limit, parse_duration


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
        return data


def _unknown_keys_message(unknown: list[Any], allowed: list[str]) -> str:
    parts = []
    for key in unknown:
        text = f"unknown key {key!r}"
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6) or [
            a for a in allowed if a.lower() == str(key).lower()
        ]
        if close:
            text += f" (did you mean {close[0]!r}?)"
        parts.append(text)
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
            "description": "A duration: 90s, 15m, 6h, 2d or a combination such as 1h30m.",
            "examples": ["90m", "6h", "2d"],
        }
    ),
]

NonEmptyStr = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024)]


def describe_validation_error(error: ValidationError) -> list[str]:
    """One readable line per problem: `selector.jobQueues: field required`."""
    lines = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location else message)
    return lines
