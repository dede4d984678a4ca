"""Deployment settings: the CDK context keys (cdk.json, `-c key=value`), parsed and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from constructs import Node

from batch_terminator_cli.fleet_file import LOG_RETENTION_CHOICES

# Context given with `-c key=value` arrives as a string, cdk.json values keep their JSON type.
STACK_NAME: Final = "stackName"
POLICIES_FILE: Final = "policiesFile"
POWERTOOLS_LAYER_VERSION: Final = "powertoolsLayerVersion"
PYTHON_RUNTIME: Final = "pythonRuntime"
ARCHITECTURE: Final = "architecture"
TERMINATOR_RESERVED_CONCURRENCY: Final = "terminatorReservedConcurrency"
TERMINATOR_BATCH_SIZE: Final = "terminatorBatchSize"
TERMINATOR_BATCHING_WINDOW_SECONDS: Final = "terminatorBatchingWindowSeconds"
TERMINATOR_TIMEOUT_SECONDS: Final = "terminatorTimeoutSeconds"
TERMINATOR_MEMORY_MB: Final = "terminatorMemoryMB"
MAX_RECEIVE_COUNT: Final = "maxReceiveCount"
LOG_RETENTION_DAYS: Final = "logRetentionDays"
ALARM_TOPIC_ARN: Final = "alarmTopicArn"
# An existing SNS topic the brake subscribes to (alarm notifications, AWS Budgets alerts).
BRAKE_TOPIC_ARN: Final = "brakeTopicArn"
# Lambda's own X-Ray tracing of each invocation: `active` or `off`.
TRACING: Final = "tracing"
# `key=value`: batch:TerminateJob only on jobs carrying this tag (aws:ResourceTag condition).
TERMINATE_ONLY_TAGGED: Final = "terminateOnlyTagged"
# Publish every decision on the account's default bus (`true`, the default) or not (`false`).
PUBLISH_DECISIONS: Final = "publishDecisions"
# A central bus (the fleet's audit account) that decisions are forwarded to; in a fleet, derived
# from the fleet file's `central`.
CENTRAL_BUS_ARN: Final = "centralBusArn"
# A fleet file (fleet.example.yaml): one stage per member account and region, and a central one.
FLEET_FILE: Final = "fleetFile"

CONTEXT_KEYS: Final = (
    STACK_NAME,
    POLICIES_FILE,
    POWERTOOLS_LAYER_VERSION,
    PYTHON_RUNTIME,
    ARCHITECTURE,
    TERMINATOR_RESERVED_CONCURRENCY,
    TERMINATOR_BATCH_SIZE,
    TERMINATOR_BATCHING_WINDOW_SECONDS,
    TERMINATOR_TIMEOUT_SECONDS,
    TERMINATOR_MEMORY_MB,
    MAX_RECEIVE_COUNT,
    LOG_RETENTION_DAYS,
    ALARM_TOPIC_ARN,
    BRAKE_TOPIC_ARN,
    TRACING,
    TERMINATE_ONLY_TAGGED,
    PUBLISH_DECISIONS,
    CENTRAL_BUS_ARN,
    FLEET_FILE,
)

ARCHITECTURES: Final = ("arm64", "x86_64")
TRACING_ACTIVE: Final = "active"
TRACING_OFF: Final = "off"
TRACING_MODES: Final = (TRACING_ACTIVE, TRACING_OFF)
# SQS event sources: more than 10 messages a batch needs a batching window of at least 1 s.
SQS_BATCH_SIZE_WITHOUT_WINDOW: Final = 10

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
_PYTHON_RUNTIME = re.compile(r"^python3\.\d{1,2}$")
_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
# EventBridge bus names: 1 to 256 of `/ . - _` letters and digits (CreateEventBus, Name).
_EVENT_BUS_ARN = re.compile(
    r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9/._-]{1,256}$"
)
# Batch tags (TagResource): keys of 1 to 128 and values of up to 256 letters, digits, spaces and
# `_ . : / = + - @`; a key cannot hold `=` here (it separates key from value), nor start with
# `aws:` (reserved for AWS's own tags).
_TAG_KEY = re.compile(r"^[\w.:/+\-@ ]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w.:/=+\-@ ]{0,256}$")


class SettingsError(ValueError):
    """A context value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class TagCondition:
    """A tag a job must carry for the terminator to be allowed to terminate it (IAM)."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> TagCondition:
        """`team=ml` -> TagCondition("team", "ml"). Raises SettingsError naming the key."""
        key, separator, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not separator or not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            raise SettingsError(
                f"{TERMINATE_ONLY_TAGGED}: expected key=value (a Batch tag), got {text!r}"
            )
        if key.lower().startswith("aws:"):
            raise SettingsError(
                f"{TERMINATE_ONLY_TAGGED}: tag keys starting with 'aws:' are reserved by AWS"
            )
        return cls(key=key, value=value)


@dataclass(frozen=True)
class StackSettings:
    """Every knob of the stack; the defaults are the values cdk.json ships with."""

    stack_name: str = "BatchTerminator"
    policies_file: str = "policies.yaml"
    powertools_layer_version: int = 27
    python_runtime: str = "python3.13"
    architecture: str = "arm64"
    terminator_reserved_concurrency: int = 5
    terminator_batch_size: int = 100
    terminator_batching_window_seconds: int = 5
    terminator_timeout_seconds: int = 120
    terminator_memory_mb: int = 256
    max_receive_count: int = 3
    log_retention_days: int = 90
    alarm_topic_arn: str | None = None
    brake_topic_arn: str | None = None
    tracing: str = TRACING_ACTIVE
    terminate_only_tagged: TagCondition | None = None
    publish_decisions: bool = True
    central_bus_arn: str | None = None

    @property
    def tracing_active(self) -> bool:
        return self.tracing == TRACING_ACTIVE

    def __post_init__(self) -> None:
        if (
            self.terminator_batch_size > SQS_BATCH_SIZE_WITHOUT_WINDOW
            and self.terminator_batching_window_seconds < 1
        ):
            raise SettingsError(
                f"{TERMINATOR_BATCHING_WINDOW_SECONDS}: must be at least 1 when "
                f"{TERMINATOR_BATCH_SIZE} is above {SQS_BATCH_SIZE_WITHOUT_WINDOW} "
                "(an SQS event source rule)"
            )

    @property
    def request_visibility_timeout_seconds(self) -> int:
        # AWS guidance for SQS event sources: six times the function timeout, so that a message
        # is not redelivered while a throttled or retried invocation may still be processing it.
        return 6 * self.terminator_timeout_seconds

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        defaults = cls()
        read = _ContextReader(node)
        return cls(
            stack_name=read.matching(STACK_NAME, defaults.stack_name, _STACK_NAME),
            policies_file=read.text(POLICIES_FILE, defaults.policies_file),
            powertools_layer_version=read.integer(
                POWERTOOLS_LAYER_VERSION, defaults.powertools_layer_version, 1, 10_000
            ),
            python_runtime=read.matching(PYTHON_RUNTIME, defaults.python_runtime, _PYTHON_RUNTIME),
            architecture=read.choice(ARCHITECTURE, defaults.architecture, ARCHITECTURES),
            # At least 2: the SQS event source's maximum concurrency cannot be lower, and a
            # poller allowed more invocations than the function may run would be throttled.
            terminator_reserved_concurrency=read.integer(
                TERMINATOR_RESERVED_CONCURRENCY, defaults.terminator_reserved_concurrency, 2, 1000
            ),
            terminator_batch_size=read.integer(
                TERMINATOR_BATCH_SIZE, defaults.terminator_batch_size, 1, 10_000
            ),
            terminator_batching_window_seconds=read.integer(
                TERMINATOR_BATCHING_WINDOW_SECONDS,
                defaults.terminator_batching_window_seconds,
                0,
                300,
            ),
            terminator_timeout_seconds=read.integer(
                TERMINATOR_TIMEOUT_SECONDS, defaults.terminator_timeout_seconds, 1, 900
            ),
            terminator_memory_mb=read.integer(
                TERMINATOR_MEMORY_MB, defaults.terminator_memory_mb, 128, 10_240
            ),
            max_receive_count=read.integer(MAX_RECEIVE_COUNT, defaults.max_receive_count, 1, 1000),
            log_retention_days=read.choice(
                LOG_RETENTION_DAYS, defaults.log_retention_days, LOG_RETENTION_CHOICES
            ),
            alarm_topic_arn=read.optional_matching(ALARM_TOPIC_ARN, _SNS_TOPIC_ARN),
            brake_topic_arn=read.optional_matching(BRAKE_TOPIC_ARN, _SNS_TOPIC_ARN),
            tracing=read.choice(TRACING, defaults.tracing, TRACING_MODES),
            terminate_only_tagged=read.optional_tag(TERMINATE_ONLY_TAGGED),
            publish_decisions=read.boolean(PUBLISH_DECISIONS, defaults.publish_decisions),
            central_bus_arn=read.optional_matching(
                CENTRAL_BUS_ARN, _EVENT_BUS_ARN, "an EventBridge event bus ARN"
            ),
        )


class _ContextReader:
    def __init__(self, node: Node) -> None:
        self._node = node

    def _raw(self, key: str) -> Any:
        return self._node.try_get_context(key)

    def text(self, key: str, default: str) -> str:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(f"{key}: expected a non-empty string, got {value!r}")
        return value.strip()

    def matching(self, key: str, default: str, pattern: re.Pattern[str]) -> str:
        value = self.text(key, default)
        if not pattern.match(value):
            raise SettingsError(f"{key}: {value!r} does not match {pattern.pattern}")
        return value

    def optional_matching(
        self, key: str, pattern: re.Pattern[str], what: str = "an SNS topic ARN"
    ) -> str | None:
        value = self._raw(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = self.text(key, "")
        if not pattern.match(text):
            raise SettingsError(f"{key}: {text!r} is not {what}")
        return text

    def boolean(self, key: str, default: bool) -> bool:
        """A JSON boolean (cdk.json) or `true`/`false` (`-c key=false`)."""
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise SettingsError(f"{key}: expected true or false, got {value!r}")

    def optional_tag(self, key: str) -> TagCondition | None:
        value = self._raw(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return TagCondition.parse(self.text(key, ""))

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self._raw(key)
        if value is None:
            return default
        number = _to_int(key, value)
        if not minimum <= number <= maximum:
            raise SettingsError(f"{key}: {number} is outside {minimum}..{maximum}")
        return number

    def choice(self, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(default, int):
            value = _to_int(key, value)
        if value not in choices:
            allowed = ", ".join(str(c) for c in choices)
            raise SettingsError(f"{key}: {value!r} is not one of {allowed}")
        return value


def _to_int(key: str, value: Any) -> int:
    # bool is an int in Python; `true` is never a meaningful count here.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise SettingsError(f"{key}: expected a whole number, got {value!r}")
