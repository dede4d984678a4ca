"""Base model: camelCase keys on the wire, unknown keys rejected with the allowed ones named."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

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
from batch_terminator.logic.policy_rules import check_active
from batch_terminator.logic.texts import (
    POLICY_NAME_PATTERN,
    no_control_characters,
    unknown_keys_message,
    visible,
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
                raise ValueError(unknown_keys_message(unknown, allowed))
            # An explicit null is not "the default": `"dryRun": null` must not read as false.
            nulls = [key for key, value in data.items() if value is None]
            if nulls:
                raise ValueError(
                    "; ".join(
                        f"{key!r} is null: give a value or leave the key out" for key in nulls
                    )
                )
        return data


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


__all__ = ["POLICY_NAME_PATTERN", "no_control_characters", "visible"]

# A policy's name: shared by the policies file and a policy run's requests.
PolicyName = Annotated[str, StringConstraints(strict=True, pattern=POLICY_NAME_PATTERN)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _only_active(statuses: list[JobStatus]) -> list[JobStatus]:
    check_active(statuses)
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
