"""Brake construct: the function, its failure queue, and the three ways an alarm reaches it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from batch_terminator.contract import BRAKE_HANDLER
from batch_terminator.logic.event_patterns import (
    alarm_names,
    alarm_state_change_pattern,
    budget_names,
)
from tests.infra.support import (
    DEFAULT_BUS_ARN,
    OVERRIDE_CONTEXT,
    Synthesized,
    granted,
    logical_id,
    only_resource,
    policies_of,
    queue_policy_statements,
)
from tests.infra.test_app_entrypoint import run_app

ALARM_PRINCIPAL = "lambda.alarms.cloudwatch.amazonaws.com"
TOPIC_ARN = OVERRIDE_CONTEXT["brakeTopicArn"]


def arn_of(resource_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource_id, "Arn"]}


def brake(template: Template) -> Mapping[str, Any]:
    return only_resource(template, "AWS::Lambda::Function", "BrakeFunction")


def brake_arn(template: Template) -> dict[str, Any]:
    return arn_of(logical_id(template, "AWS::Lambda::Function", "BrakeFunction"))


def failure_queue(template: Template) -> str:
    return logical_id(template, "AWS::SQS::Queue", "BrakeFailureQueue")


def permissions_for(template: Template, principal: str) -> list[Mapping[str, Any]]:
    """The brake's resource policy statements for this principal."""
    return [
        p["Properties"]
        for p in template.find_resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == principal
        and p["Properties"]["FunctionName"] == brake_arn(template)
    ]


def alarm_arn(name: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":cloudwatch:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":alarm:{name}",
            ],
        ]
    }


def alarm_rules(template: Template) -> Mapping[str, Mapping[str, Any]]:
    return {
        rule_id: rule
        for rule_id, rule in template.find_resources("AWS::Events::Rule").items()
        if "BrakeAlarmRule" in rule_id
    }


# --- function ----------------------------------------------------------------------------------


def test_function_limits_and_asynchronous_failures(template: Template) -> None:
    properties = brake(template)["Properties"]
    assert properties["Handler"] == BRAKE_HANDLER
    assert properties["Timeout"] == 300
    assert properties["MemorySize"] == 512
    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["DeadLetterConfig"] == {"TargetArn": arn_of(failure_queue(template))}
    assert properties["LoggingConfig"] == {
        "LogGroup": {"Ref": logical_id(template, "AWS::Logs::LogGroup", "BrakeLogGroup")}
    }
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": logical_id(template, "AWS::Lambda::Function", "BrakeFunction")},
            "MaximumRetryAttempts": 2,
        },
    )


def test_failure_queue_is_encrypted_kept_and_tls_only(template: Template) -> None:
    queue_id = failure_queue(template)
    properties = template.to_json()["Resources"][queue_id]["Properties"]
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": arn_of(queue_id),
    } in queue_policy_statements(template, queue_id)


def test_environment(template: Template) -> None:
    assert brake(template)["Properties"]["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "batch-terminator",
        "POWERTOOLS_METRICS_NAMESPACE": "BatchTerminator",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_DATA_PATH": "/var/task/botocore_data",
        "AWS_RETRY_MODE": "standard",
        "PUBLISH_DECISIONS": "true",
        "REQUEST_QUEUE_URL": {"Ref": logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue")},
        "LEDGER_TABLE": {"Ref": logical_id(template, "AWS::DynamoDB::Table", "LedgerTable")},
        "ACCOUNT_ID": {"Ref": "AWS::AccountId"},
    }


def test_role_has_exactly_the_hand_written_statements(template: Template) -> None:
    role = only_resource(template, "AWS::IAM::Role", "BrakeRole")
    assert brake(template)["Properties"]["Role"] == arn_of(
        logical_id(template, "AWS::IAM::Role", "BrakeRole")
    )
    request = str(arn_of(logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue")))
    failures = str(arn_of(failure_queue(template)))
    ledger = str(arn_of(logical_id(template, "AWS::DynamoDB::Table", "LedgerTable")))
    logs = str(arn_of(logical_id(template, "AWS::Logs::LogGroup", "BrakeLogGroup")))
    assert granted(role) == sorted(
        [
            ("batch:DescribeJobs", "*"),
            ("batch:ListJobs", "*"),
            ("batch:DescribeJobQueues", "*"),
            ("sqs:SendMessage", request),
            ("sqs:SendMessage", failures),
            ("dynamodb:PutItem", ledger),
            ("dynamodb:GetItem", ledger),
            ("dynamodb:UpdateItem", ledger),
            ("xray:PutTraceSegments", "*"),
            ("xray:PutTelemetryRecords", "*"),
            ("events:PutEvents", str(DEFAULT_BUS_ARN)),
            ("logs:CreateLogStream", logs),
            ("logs:PutLogEvents", logs),
        ]
    )


# --- (a) the EventBridge alarm rule ------------------------------------------------------------


@pytest.mark.parametrize("configuration", ["synth", "braking"])
def test_alarm_rule_pattern_is_that_of_the_policies(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(configuration)
    pattern = alarm_state_change_pattern(policies_of(synthesized))
    assert pattern is not None
    [rule] = alarm_rules(synthesized.template).values()
    assert rule["Properties"]["EventPattern"] == pattern


def test_alarm_rule_names_every_alarm(braking: Synthesized) -> None:
    [rule] = alarm_rules(braking.template).values()
    assert rule["Properties"]["EventPattern"]["detail"] == {
        "alarmName": ["batch-spend-critical", {"wildcard": "team-*-cost"}, "gpu-spend"],
        "state": {"value": ["ALARM"]},
    }


def test_alarm_rule_invokes_the_brake_with_retries_and_the_failure_queue(
    template: Template,
) -> None:
    [(rule_id, rule)] = alarm_rules(template).items()
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == brake_arn(template)
    assert target["DeadLetterConfig"] == {"Arn": arn_of(failure_queue(template))}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    [permission] = permissions_for(template, "events.amazonaws.com")
    assert permission["FunctionName"] == brake_arn(template)
    assert permission["SourceArn"] == arn_of(rule_id)
    events_statements = [
        (s["Action"], s["Condition"], s["Resource"])
        for s in queue_policy_statements(template, failure_queue(template))
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    assert events_statements == [
        (
            "sqs:SendMessage",
            {"ArnEquals": {"aws:SourceArn": arn_of(rule_id)}},
            arn_of(failure_queue(template)),
        )
    ]


def test_no_alarm_rule_and_no_alarm_permission_without_alarm_names(
    overridden: Synthesized,
) -> None:
    policies = policies_of(overridden)
    # A brake policy exists, on a budget only: no alarm is named.
    assert budget_names(policies) == ["batch-monthly"]
    assert alarm_names(policies) == []
    assert alarm_rules(overridden.template) == {}
    assert permissions_for(overridden.template, ALARM_PRINCIPAL) == []
    assert permissions_for(overridden.template, "events.amazonaws.com") == []


# --- (b) CloudWatch alarm actions --------------------------------------------------------------


@pytest.mark.parametrize("configuration", ["synth", "braking"])
def test_one_alarm_action_permission_per_alarm_name(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(configuration)
    template = synthesized.template
    names = alarm_names(policies_of(synthesized))
    assert names
    permissions = permissions_for(template, ALARM_PRINCIPAL)
    assert sorted(map(str, (p["SourceArn"] for p in permissions))) == sorted(
        str(alarm_arn(name)) for name in names
    )
    for permission in permissions:
        assert permission == {
            "Action": "lambda:InvokeFunction",
            "FunctionName": brake_arn(template),
            "Principal": ALARM_PRINCIPAL,
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": permission["SourceArn"],
        }


def test_alarm_names_of_the_braking_file(braking: Synthesized) -> None:
    # Three distinct names (one named by two policies), one of them a glob kept as written.
    sources = sorted(
        p["SourceArn"]["Fn::Join"][1][-1]
        for p in permissions_for(braking.template, ALARM_PRINCIPAL)
    )
    assert sources == [
        ":alarm:batch-spend-critical",
        ":alarm:gpu-spend",
        ":alarm:team-*-cost",
    ]


# --- (c) the SNS topic -------------------------------------------------------------------------


@pytest.mark.parametrize("configuration", ["synth", "braking"])
def test_no_subscription_without_a_brake_topic(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    template: Template = request.getfixturevalue(configuration).template
    template.resource_count_is("AWS::SNS::Subscription", 0)
    assert permissions_for(template, "sns.amazonaws.com") == []


def test_brake_topic_is_subscribed_with_a_dead_letter_queue(overridden: Synthesized) -> None:
    template = overridden.template
    failures = failure_queue(template)
    [subscription] = template.find_resources("AWS::SNS::Subscription").values()
    properties = subscription["Properties"]
    assert properties["TopicArn"] == TOPIC_ARN
    assert properties["Protocol"] == "lambda"
    assert properties["Endpoint"] == brake_arn(template)
    assert properties["RedrivePolicy"] == {"deadLetterTargetArn": arn_of(failures)}
    [permission] = permissions_for(template, "sns.amazonaws.com")
    assert permission["FunctionName"] == brake_arn(template)
    assert permission["SourceArn"] == TOPIC_ARN
    # The topic may put what it cannot deliver in the failure queue, and only that topic.
    sns_statements = [
        s
        for s in queue_policy_statements(template, failures)
        if s.get("Principal") == {"Service": "sns.amazonaws.com"}
    ]
    assert [(s["Action"], s["Condition"]) for s in sns_statements] == [
        ("sqs:SendMessage", {"ArnEquals": {"aws:SourceArn": TOPIC_ARN}})
    ]


def test_a_bad_brake_topic_is_a_clear_settings_error(tmp_path: Path) -> None:
    result = run_app(tmp_path / "out", {"brakeTopicArn": "batch-spend-alerts"})
    assert result.returncode == 1
    assert "brakeTopicArn: 'batch-spend-alerts' is not an SNS topic ARN" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
