"""The policies as the functions use them: plain frozen dataclasses, read without pydantic.

The policies file is validated once, where people write it (the CLI's `validate` and `plan`, and
the synth, with `models.policies_schema`, which names every error), and shipped in the asset as its
normalized document: camelCase keys, defaults filled in, durations as text (`12h`), nulls left
out. A function reads that document with `PoliciesFile.from_document`, which checks its shape
and types strictly and fails closed (ValueError) on anything else, but does not judge it again:
importing pydantic and building its models is a third of a cold start, and the first invocation
would pay it anyway. tests/unit/test_policies_runtime.py checks that every valid file reads the
same both ways.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal, cast

from batch_terminator.contract import DEFAULT_PROTECT_TAG, MAX_RUNTIME_TAG, JobStatus
from batch_terminator.logic.durations import format_limit, parse_duration
from batch_terminator.logic.policy_rules import (
    TAG_LIMIT_POLICY,
    check_active,
    check_names,
    check_policy,
    check_protect_tag,
    check_sweep_interval,
    check_trigger,
    check_when,
)
from batch_terminator.logic.texts import POLICY_NAME_PATTERN, no_control_characters

__all__ = ["TAG_LIMIT_POLICY", "Match", "PoliciesFile", "Policy", "Settings", "Trigger", "When"]

DEFAULT_MAX_PER_RUN: Final = 100
MAX_TEXT_LENGTH: Final = 1024
_POLICY_NAME: Final = re.compile(POLICY_NAME_PATTERN)
ORDERS: Final = ("oldest-first", "newest-first")

TAG_LIMIT_KEY = MAX_RUNTIME_TAG
# A job's own limit is its owner's request, but a mass mis-tag must not empty a fleet either:
# at most this many jobs per run are terminated by their tags (jobs, per sweep or deadline window).
TAG_LIMIT_CAP: Final = 500


@dataclass(frozen=True)
class Settings:
    """Global switches that every path obeys (see the schema's descriptions)."""

    dry_run: bool = False
    protect_tag: str = DEFAULT_PROTECT_TAG
    job_queues: list[str] = field(default_factory=lambda: ["*"])
    sweep_interval: timedelta = timedelta(minutes=15)
    max_runtime_tag: bool = True


@dataclass(frozen=True)
class Match:
    """Which jobs a policy applies to; every key given must match."""

    job_queues: list[str] | None = None
    job_definitions: list[str] | None = None
    job_names: list[str] | None = None
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class When:
    """The state and age at which a matching job is terminated."""

    status: list[JobStatus]
    older_than: timedelta | None = None
    status_reasons: list[str] | None = None


@dataclass(frozen=True)
class Trigger:
    """Run the policy when one of these alarms enters ALARM or a Budgets alert names a budget."""

    alarms: list[str] | None = None
    budgets: list[str] | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    when: When
    description: str | None = None
    trigger: Trigger | None = None
    match: Match = field(default_factory=Match)
    order: Literal["oldest-first", "newest-first"] = "oldest-first"
    # Blast-radius cap per run, in jobs (an array counts as its unfinished children).
    max_per_run: int = DEFAULT_MAX_PER_RUN
    dry_run: bool = False

    @property
    def is_scheduled(self) -> bool:
        return self.trigger is None


@dataclass(frozen=True)
class PoliciesFile:
    """Root of the policies file. Read a normalized document with `from_document`; validate
    what a person wrote with `model_validate` (the CLI, the tests: it imports pydantic)."""

    version: Literal[1] = 1
    settings: Settings = field(default_factory=Settings)
    policies: list[Policy] = field(default_factory=list)

    def policy(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

    @classmethod
    def from_document(cls, document: Any) -> PoliciesFile:
        """The policies of a normalized document (`to_document`'s shape). Raises ValueError
        naming the first key whose shape or type is not the document's."""
        return _read_file(document)

    @classmethod
    def model_validate(cls, data: Any) -> PoliciesFile:
        """Validate a policies file as written (a dict of its YAML or JSON) with every rule of
        `models.policies_schema`. Raises pydantic's ValidationError."""
        from batch_terminator.models import policies_schema

        model = policies_schema.PoliciesFile.model_validate(data)
        return cls.from_document(model.model_dump(mode="json", by_alias=True, exclude_none=True))

    def to_document(self) -> dict[str, Any]:
        """The normalized document: camelCase keys, durations as text, None values left out."""
        return cast("dict[str, Any]", _write(self))

    def to_json(self) -> str:
        """`to_document` as compact JSON, the policies.json shipped in the asset."""
        return json.dumps(self.to_document(), separators=(",", ":"), ensure_ascii=False)

    def model_dump_json(self, **_pydantic_options: Any) -> str:
        """`to_json`, under the name callers of the former pydantic model use (the emulator's
        sandbox): the document is always by alias and without nulls, whatever is asked."""
        return self.to_json()


# --- reading the normalized document ------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _write(value: Any) -> Any:
    if isinstance(value, timedelta):
        return format_limit(value)
    if isinstance(value, JobStatus):
        return value.value
    if isinstance(value, list):
        return [_write(item) for item in value]
    if isinstance(value, dict):
        return {key: _write(item) for key, item in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {
            _camel(name): _write(getattr(value, name))
            for name in value.__dataclass_fields__
            if getattr(value, name) is not None
        }
    return value


class _Reader:
    """One object of the document: typed getters that raise ValueError with the key's path."""

    def __init__(self, data: Any, where: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{where or 'document'}: expected an object")
        unknown = sorted(str(key) for key in set(data) - set(allowed))
        if unknown:
            names = ", ".join(repr(key[:80]) for key in unknown[:5])
            raise ValueError(f"{where or 'document'}: unknown key {names}")
        self.data, self.where = data, where

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def value(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        if key not in self.data:
            return default
        value = self.data[key]
        # bool is an int in Python: a count must never be read from true.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            expected = "/".join(k.__name__ for k in _kinds(kind))
            raise ValueError(f"{self._path(key)}: expected {expected}, got {type(value).__name__}")
        return value

    def required(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.data:
            raise ValueError(f"{self._path(key)}: missing")
        return self.value(key, kind)

    def text(self, key: str, default: str | None = None) -> Any:
        """A string as the schema's NonEmptyStr takes it: 1 to 1024 characters of Unicode,
        no control characters; `default` when the key is absent."""
        value = self.value(key, str)
        if value is None:
            return default
        _check_text(value, self._path(key))
        return value

    def texts(self, key: str, *, required: bool = False) -> list[str] | None:
        items = self.required(key, list) if required else self.value(key, list)
        if items is None:
            return None
        if not items or not all(isinstance(item, str) for item in items):
            raise ValueError(f"{self._path(key)}: expected a list of non-empty strings")
        for index, item in enumerate(items):
            _check_text(item, f"{self._path(key)}.{index}")
        return list(items)

    def tags(self, key: str) -> dict[str, str] | None:
        items = self.value(key, dict)
        if items is None:
            return None
        for name, value in items.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ValueError(f"{self._path(key)}: expected non-empty strings")
            _check_text(name, f"{self._path(key)}.{name}")
            _check_text(value, f"{self._path(key)}.{name}")
        return dict(items)

    def duration(self, key: str, default: timedelta | None = None) -> timedelta | None:
        text = self.value(key, str)
        if text is None:
            return default
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ValueError(f"{self._path(key)}: {exc}") from exc

    def statuses(self, key: str) -> list[JobStatus]:
        names = self.texts(key, required=True) or []
        try:
            return [JobStatus(name) for name in names]
        except ValueError as exc:
            raise ValueError(f"{self._path(key)}: {exc}") from exc


def _check_text(value: str, where: str) -> None:
    if not value or len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"{where}: expected 1 to {MAX_TEXT_LENGTH} characters")
    try:
        value.encode("utf-8")
        no_control_characters(value)
    except (UnicodeEncodeError, ValueError) as exc:
        reason = "not valid Unicode" if isinstance(exc, UnicodeEncodeError) else str(exc)
        raise ValueError(f"{where}: {reason}") from exc


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _read_file(document: Any) -> PoliciesFile:
    root = _Reader(document, "", ("version", "settings", "policies"))
    if root.required("version", int) != 1:
        raise ValueError("version: expected 1")
    policies = root.value("policies", list, [])
    read = PoliciesFile(
        version=1,
        settings=_read_settings(root.value("settings", dict, {})),
        policies=[_read_policy(item, f"policies.{i}") for i, item in enumerate(policies)],
    )
    _rule("policies", check_names, (p.name for p in read.policies))
    return read


def _rule(where: str, check: Any, *args: Any) -> None:
    """Apply one of `logic.policy_rules`, its error prefixed with where it applies."""
    try:
        check(*args)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _read_settings(data: Any) -> Settings:
    keys = ("dryRun", "protectTag", "jobQueues", "sweepInterval", "maxRuntimeTag")
    read = _Reader(data, "settings", keys)
    defaults = Settings()
    protect_tag = read.text("protectTag", defaults.protect_tag)
    _rule("settings", check_protect_tag, protect_tag)
    settings = Settings(
        dry_run=read.value("dryRun", bool, False),
        protect_tag=protect_tag,
        job_queues=read.texts("jobQueues") or list(defaults.job_queues),
        sweep_interval=read.duration("sweepInterval", defaults.sweep_interval)
        or defaults.sweep_interval,
        max_runtime_tag=read.value("maxRuntimeTag", bool, True),
    )
    _rule("settings", check_sweep_interval, settings.sweep_interval)
    return settings


def _read_policy(data: Any, where: str) -> Policy:
    keys = ("name", "description", "trigger", "match", "when", "order", "maxPerRun", "dryRun")
    read = _Reader(data, where, keys)
    order = read.value("order", str, "oldest-first")
    if order not in ORDERS:
        raise ValueError(f"{where}.order: expected one of {', '.join(ORDERS)}")
    max_per_run = read.value("maxPerRun", int, DEFAULT_MAX_PER_RUN)
    name = read.required("name", str)
    if not _POLICY_NAME.fullmatch(name):
        raise ValueError(
            f"{where}.name: {name[:80]!r} is not a policy name ({POLICY_NAME_PATTERN})"
        )
    trigger = read.value("trigger", dict)
    policy = Policy(
        name=name,
        description=read.text("description"),
        trigger=None if trigger is None else _read_trigger(trigger, f"{where}.trigger"),
        match=_read_match(read.value("match", dict, {}), f"{where}.match"),
        when=_read_when(read.required("when", dict), f"{where}.when"),
        order=order,
        max_per_run=max_per_run,
        dry_run=read.value("dryRun", bool, False),
    )
    _rule(where, check_policy, policy.is_scheduled, policy.when.older_than, policy.max_per_run)
    return policy


def _read_match(data: Any, where: str) -> Match:
    read = _Reader(data, where, ("jobQueues", "jobDefinitions", "jobNames", "tags"))
    return Match(
        job_queues=read.texts("jobQueues"),
        job_definitions=read.texts("jobDefinitions"),
        job_names=read.texts("jobNames"),
        tags=read.tags("tags"),
    )


def _read_when(data: Any, where: str) -> When:
    read = _Reader(data, where, ("status", "olderThan", "statusReasons"))
    when = When(
        status=read.statuses("status"),
        older_than=read.duration("olderThan"),
        status_reasons=read.texts("statusReasons"),
    )
    _rule(f"{where}.status", check_active, when.status)
    _rule(where, check_when, when.status, when.older_than)
    return when


def _read_trigger(data: Any, where: str) -> Trigger:
    read = _Reader(data, where, ("alarms", "budgets"))
    trigger = Trigger(alarms=read.texts("alarms"), budgets=read.texts("budgets"))
    _rule(where, check_trigger, trigger.alarms, trigger.budgets)
    return trigger
