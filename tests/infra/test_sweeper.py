"""Policies construct: the sweeper function, its schedule, its failure queue, its IAM."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from aws_cdk.assertions import Template

from batch_terminator_cli.policies_file import load_policies
from infra.constructs.policies import rate_expression, sweep_minutes
from infra.paths import PROJECT_ROOT
from tests.infra.support import DEFAULT_BUS_ARN, Synthesized, logical_id, only_resource

HANDLER = "batch_terminator.handlers.sweeper.handler"


def sweeper(template: Template) -> Mapping[str, Any]:
    return only_resource(template, "AWS::Lambda::Function", "PoliciesFunction")


def arn_of(resource_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource_id, "Arn"]}


def test_function_limits_tracing_and_layer(template: Template) -> None:
    properties = sweeper(template)["Properties"]
    assert properties["Handler"] == HANDLER
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Timeout"] == 300
    assert properties["MemorySize"] == 512
    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert (
        properties["Layers"]
        == only_resource(template, "AWS::Lambda::Function", "TerminatorFunction")["Properties"][
            "Layers"
        ]
    )
    # Same asset as the terminator.
    assert (
        properties["Code"]
        == only_resource(template, "AWS::Lambda::Function", "TerminatorFunction")["Properties"][
            "Code"
        ]
    )


def test_environment_adds_the_request_queue_url(template: Template) -> None:
    queue_id = logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue")
    assert sweeper(template)["Properties"]["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "batch-terminator",
        "POWERTOOLS_METRICS_NAMESPACE": "BatchTerminator",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_DATA_PATH": "/var/task/botocore_data",
        "AWS_RETRY_MODE": "standard",
        "PUBLISH_DECISIONS": "true",
        # Each decision names its account (a capped run's decision events).
        "ACCOUNT_ID": {"Ref": "AWS::AccountId"},
        "REQUEST_QUEUE_URL": {"Ref": queue_id},
        # The pause switch lives in the ledger table.
        "LEDGER_TABLE": {"Ref": logical_id(template, "AWS::DynamoDB::Table", "LedgerTable")},
    }


def test_own_log_group(template: Template) -> None:
    group_id = logical_id(template, "AWS::Logs::LogGroup", "PoliciesLogGroup")
    assert sweeper(template)["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group_id}}


def test_schedule_rate_follows_the_project_sweep_interval(template: Template) -> None:
    interval = load_policies(PROJECT_ROOT / "policies.yaml").settings.sweep_interval
    schedule = only_resource(template, "AWS::Events::Rule", "PoliciesSchedule")
    assert schedule["Properties"]["ScheduleExpression"] == rate_expression(sweep_minutes(interval))


def test_schedule_rate_follows_another_policies_file(overridden: Synthesized) -> None:
    schedule = only_resource(overridden.template, "AWS::Events::Rule", "PoliciesSchedule")
    assert schedule["Properties"]["ScheduleExpression"] == "rate(120 minutes)"


@pytest.mark.parametrize(
    ("interval", "minutes"),
    [
        (timedelta(minutes=1), 1),
        (timedelta(seconds=90), 1),
        (timedelta(minutes=15), 15),
        (timedelta(hours=1, minutes=30), 90),
        (timedelta(days=1), 1440),
    ],
)
def test_sweep_interval_becomes_whole_minutes(interval: timedelta, minutes: int) -> None:
    assert sweep_minutes(interval) == minutes


def test_rate_expression_is_in_minutes() -> None:
    assert rate_expression(1) == "rate(1 minute)"
    assert rate_expression(120) == "rate(120 minutes)"


def test_failed_sweeps_land_in_an_encrypted_queue(template: Template) -> None:
    failure_id = logical_id(template, "AWS::SQS::Queue", "SweepFailureQueue")
    function_id = logical_id(template, "AWS::Lambda::Function", "PoliciesFunction")
    failure_queue = template.to_json()["Resources"][failure_id]["Properties"]
    assert failure_queue["SqsManagedSseEnabled"] is True
    assert failure_queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    # Asynchronous invocations that fail after Lambda's retries...
    assert sweeper(template)["Properties"]["DeadLetterConfig"] == {"TargetArn": arn_of(failure_id)}
    # ...and schedule events EventBridge cannot deliver.
    schedule = only_resource(template, "AWS::Events::Rule", "PoliciesSchedule")
    [target] = schedule["Properties"]["Targets"]
    assert target["Arn"] == arn_of(function_id)
    assert target["DeadLetterConfig"] == {"Arn": arn_of(failure_id)}
    tls_only = [
        s
        for policy in template.find_resources("AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": failure_id}]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
    ]
    assert tls_only == [
        {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": arn_of(failure_id),
        }
    ]


def test_role_has_exactly_the_hand_written_statements(template: Template) -> None:
    role = only_resource(template, "AWS::IAM::Role", "PoliciesRole")
    queue = str(arn_of(logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue")))
    failures = str(arn_of(logical_id(template, "AWS::SQS::Queue", "SweepFailureQueue")))
    group = str(arn_of(logical_id(template, "AWS::Logs::LogGroup", "PoliciesLogGroup")))
    ledger = str(arn_of(logical_id(template, "AWS::DynamoDB::Table", "LedgerTable")))
    granted = sorted(
        (action, str(statement["Resource"]))
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    )
    assert granted == sorted(
        [
            ("batch:DescribeJobs", "*"),
            ("batch:ListJobs", "*"),
            ("batch:DescribeJobQueues", "*"),
            ("sqs:SendMessage", queue),
            ("sqs:SendMessage", failures),
            # The pause switch, read by key: nothing else of the ledger.
            ("dynamodb:GetItem", ledger),
            ("xray:PutTraceSegments", "*"),
            ("xray:PutTelemetryRecords", "*"),
            ("events:PutEvents", str(DEFAULT_BUS_ARN)),
            ("logs:CreateLogStream", group),
            ("logs:PutLogEvents", group),
        ]
    )
