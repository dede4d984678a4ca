"""Context parsing: cdk.json's values are the defaults; `-c` strings are parsed and checked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_logs as logs

from infra.application import build_app
from infra.constructs.lambda_package import RETENTION_BY_DAYS, powertools_layer_name
from infra.paths import PROJECT_ROOT
from infra.settings import (
    CONTEXT_KEYS,
    LOG_RETENTION_CHOICES,
    SettingsError,
    StackSettings,
    TagCondition,
)


def settings_from(context: dict[str, Any]) -> StackSettings:
    return StackSettings.from_context(App(context=context).node)


def cdk_json_context() -> dict[str, Any]:
    config = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))
    return dict(config["context"])


def test_cdk_json_holds_only_known_keys() -> None:
    assert set(cdk_json_context()) <= set(CONTEXT_KEYS)
    assert set(CONTEXT_KEYS) - set(cdk_json_context()) == {
        "alarmTopicArn",
        "brakeTopicArn",
        "terminateOnlyTagged",
        "centralBusArn",
        "fleetFile",
    }


def test_cdk_json_values_are_the_code_defaults() -> None:
    # app.py run without the CLI gets no cdk.json context: the defaults must be the same.
    assert settings_from(cdk_json_context()) == StackSettings()
    assert settings_from({}) == StackSettings()


def test_defaults() -> None:
    settings = StackSettings()
    assert settings.powertools_layer_version == 27
    assert settings.python_runtime == "python3.13"
    assert settings.architecture == "arm64"
    assert settings.alarm_topic_arn is None
    assert settings.brake_topic_arn is None
    assert settings.request_visibility_timeout_seconds == 6 * settings.terminator_timeout_seconds


def test_strings_from_the_command_line_are_parsed() -> None:
    settings = settings_from(
        {
            "powertoolsLayerVersion": "30",
            "terminatorReservedConcurrency": " 8 ",
            "terminatorBatchSize": "10",
            "terminatorBatchingWindowSeconds": "0",
            "logRetentionDays": "365",
            "alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
            "brakeTopicArn": "arn:aws:sns:us-east-1:123456789012:spend-alerts",
        }
    )
    assert settings.powertools_layer_version == 30
    assert settings.terminator_reserved_concurrency == 8
    assert settings.terminator_batch_size == 10
    assert settings.terminator_batching_window_seconds == 0
    assert settings.log_retention_days == 365
    assert settings.alarm_topic_arn == "arn:aws:sns:us-east-1:123456789012:alarms"
    assert settings.brake_topic_arn == "arn:aws:sns:us-east-1:123456789012:spend-alerts"


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, True), (True, True), (False, False), ("false", False), (" TRUE ", True)],
)
def test_publish_decisions(given: Any, expected: bool) -> None:
    context = {} if given is None else {"publishDecisions": given}
    assert settings_from(context).publish_decisions is expected


def test_central_bus_arn() -> None:
    arn = "arn:aws:events:us-east-1:111111111111:event-bus/batch-terminator-fleet"
    assert settings_from({"centralBusArn": arn}).central_bus_arn == arn
    assert settings_from({"centralBusArn": ""}).central_bus_arn is None


def test_empty_topics_mean_none() -> None:
    settings = settings_from({"alarmTopicArn": "", "brakeTopicArn": " "})
    assert settings.alarm_topic_arn is None
    assert settings.brake_topic_arn is None


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"terminatorBatchSize": "ten"}, "terminatorBatchSize: expected a whole number"),
        ({"terminatorBatchSize": True}, "terminatorBatchSize: expected a whole number"),
        ({"terminatorBatchSize": "0"}, "terminatorBatchSize: 0 is outside 1..10000"),
        ({"terminatorReservedConcurrency": "1"}, "terminatorReservedConcurrency: 1 is outside"),
        ({"terminatorTimeoutSeconds": "901"}, "terminatorTimeoutSeconds: 901 is outside"),
        ({"logRetentionDays": "42"}, "logRetentionDays: 42 is not one of"),
        ({"architecture": "arm"}, "architecture: 'arm' is not one of arm64, x86_64"),
        ({"pythonRuntime": "python2"}, "pythonRuntime: 'python2' does not match"),
        ({"stackName": "1-bad"}, "stackName: '1-bad' does not match"),
        ({"alarmTopicArn": "my-topic"}, "alarmTopicArn: 'my-topic' is not an SNS topic ARN"),
        (
            {"brakeTopicArn": "arn:aws:sqs:us-east-1:123456789012:spend"},
            "brakeTopicArn: 'arn:aws:sqs:us-east-1:123456789012:spend' is not an SNS topic ARN",
        ),
        ({"brakeTopicArn": 42}, "brakeTopicArn: expected a non-empty string"),
        ({"publishDecisions": "no"}, "publishDecisions: expected true or false, got 'no'"),
        ({"publishDecisions": 1}, "publishDecisions: expected true or false, got 1"),
        (
            {"centralBusArn": "arn:aws:sqs:us-east-1:111111111111:bus"},
            "centralBusArn: 'arn:aws:sqs:us-east-1:111111111111:bus' is not an EventBridge "
            "event bus ARN",
        ),
        ({"policiesFile": " "}, "policiesFile: expected a non-empty string"),
        (
            {"terminatorBatchSize": "11", "terminatorBatchingWindowSeconds": "0"},
            "terminatorBatchingWindowSeconds: must be at least 1",
        ),
    ],
)
def test_bad_values_name_their_key(context: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + re.escape(message)):
        settings_from(context)


def test_unknown_python_runtime_is_refused_when_the_stack_is_built(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=re.escape("pythonRuntime: 'python3.99'")):
        build_app(App(context={"pythonRuntime": "python3.99"}), asset_dir=tmp_path / "asset")


def test_retention_choices_are_those_cloudwatch_accepts() -> None:
    assert tuple(RETENTION_BY_DAYS) == LOG_RETENTION_CHOICES
    assert set(RETENTION_BY_DAYS.values()) == set(logs.RetentionDays) - {
        logs.RetentionDays.INFINITE
    }


@pytest.mark.parametrize(
    ("runtime", "architecture", "name"),
    [
        ("python3.13", "arm64", "AWSLambdaPowertoolsPythonV3-python313-arm64"),
        ("python3.12", "x86_64", "AWSLambdaPowertoolsPythonV3-python312-x86_64"),
    ],
)
def test_powertools_layer_name(runtime: str, architecture: str, name: str) -> None:
    assert powertools_layer_name(runtime, architecture) == name


def test_tracing_and_tag_condition_from_the_command_line() -> None:
    settings = settings_from({"tracing": "off", "terminateOnlyTagged": " team = ml-platform "})
    assert settings.tracing == "off"
    assert not settings.tracing_active
    assert settings.terminate_only_tagged == TagCondition("team", "ml-platform")


def test_no_tag_condition_by_default_or_when_empty() -> None:
    assert StackSettings().terminate_only_tagged is None
    assert settings_from({"terminateOnlyTagged": ""}).terminate_only_tagged is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("team=ml", TagCondition("team", "ml")),
        ("batch-terminator:allowed=true", TagCondition("batch-terminator:allowed", "true")),
        # The value may hold '=' (only the first one separates) and may be empty.
        ("owner=a=b", TagCondition("owner", "a=b")),
        ("scratch=", TagCondition("scratch", "")),
    ],
)
def test_tag_condition_shapes(text: str, expected: TagCondition) -> None:
    assert TagCondition.parse(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("team", "terminateOnlyTagged: expected key=value"),
        ("=ml", "terminateOnlyTagged: expected key=value"),
        ("te*am=ml", "terminateOnlyTagged: expected key=value"),
        ("k" * 129 + "=v", "terminateOnlyTagged: expected key=value"),
        ("aws:cloudformation:stack-name=x", "terminateOnlyTagged: tag keys starting with 'aws:'"),
        ({"key": "team"}, "terminateOnlyTagged: expected a non-empty string"),
    ],
)
def test_bad_tag_conditions_name_the_key(value: object, message: str) -> None:
    with pytest.raises(SettingsError, match="^" + re.escape(message)):
        settings_from({"terminateOnlyTagged": value})
