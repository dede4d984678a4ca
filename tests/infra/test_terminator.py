"""Terminator function: runtime, layer, limits, logging, event source, IAM, environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Template

from batch_terminator.contract import TERMINATE_ONLY_TAGGED_ENV
from infra.settings import StackSettings
from tests.infra.support import (
    DEFAULT_BUS_ARN,
    OVERRIDE_CONTEXT,
    Synthesized,
    logical_id,
    only_resource,
)

DEFAULTS = StackSettings()
DAY = 24 * 3600
HANDLER = "batch_terminator.handlers.terminator.handler"
JOB_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":batch:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":job/*",
        ],
    ]
}


def terminator(template: Template) -> Mapping[str, Any]:
    return only_resource(template, "AWS::Lambda::Function", "TerminatorFunction")


def role_statements(template: Template, path_part: str) -> list[dict[str, Any]]:
    role = only_resource(template, "AWS::IAM::Role", path_part)
    return [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in actions(s)]


def test_function_runtime_architecture_handler_and_limits(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": HANDLER,
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "MemorySize": DEFAULTS.terminator_memory_mb,
            "Timeout": DEFAULTS.terminator_timeout_seconds,
            "ReservedConcurrentExecutions": DEFAULTS.terminator_reserved_concurrency,
            "TracingConfig": {"Mode": "Active"},
        },
    )
    # Named by CloudFormation, not by us: two stacks in one account never collide.
    assert "FunctionName" not in terminator(template)["Properties"]


def test_layer_is_the_pinned_powertools_build(template: Template) -> None:
    layers = terminator(template)["Properties"]["Layers"]
    assert layers == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":lambda:",
                    {"Ref": "AWS::Region"},
                    ":017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27",
                ],
            ]
        }
    ]


def test_runtime_architecture_layer_and_limits_follow_context(overridden: Synthesized) -> None:
    properties = terminator(overridden.template)["Properties"]
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["x86_64"]
    assert properties["Layers"][0]["Fn::Join"][1][-1].endswith(
        ":layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:31"
    )
    assert properties["MemorySize"] == int(OVERRIDE_CONTEXT["terminatorMemoryMB"])
    assert properties["Timeout"] == int(OVERRIDE_CONTEXT["terminatorTimeoutSeconds"])
    assert properties["ReservedConcurrentExecutions"] == int(
        OVERRIDE_CONTEXT["terminatorReservedConcurrency"]
    )


def test_function_logs_to_its_own_group_with_retention(template: Template) -> None:
    group_id = logical_id(template, "AWS::Logs::LogGroup", "TerminatorLogGroup")
    group = template.to_json()["Resources"][group_id]
    assert group["Properties"]["RetentionInDays"] == DEFAULTS.log_retention_days
    assert terminator(template)["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group_id}}


def test_log_retention_follows_context(overridden: Synthesized) -> None:
    for group in overridden.template.find_resources("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == int(OVERRIDE_CONTEXT["logRetentionDays"])


def test_environment(template: Template) -> None:
    dlq_id = logical_id(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue")
    table_id = logical_id(template, "AWS::DynamoDB::Table", "LedgerTable")
    assert terminator(template)["Properties"]["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "batch-terminator",
        "POWERTOOLS_METRICS_NAMESPACE": "BatchTerminator",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "DLQ_URL": {"Ref": dlq_id},
        "AWS_DATA_PATH": "/var/task/botocore_data",
        "AWS_RETRY_MODE": "standard",
        "PUBLISH_DECISIONS": "true",
        "LEDGER_TABLE": {"Ref": table_id},
        "LEDGER_TTL_SECONDS": str(19 * DAY),
        "MAX_RECEIVE_COUNT": str(DEFAULTS.max_receive_count),
        "ACCOUNT_ID": {"Ref": "AWS::AccountId"},
    }


@pytest.mark.parametrize("configuration", ["synth", "overridden"])
def test_ledger_items_outlive_every_delivery_and_redrive_of_their_request(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(configuration).template
    queue = only_resource(template, "AWS::SQS::Queue", "IntakeRequestQueue")["Properties"]
    dlq = only_resource(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue")["Properties"]
    variables = terminator(template)["Properties"]["Environment"]["Variables"]
    # Delivered until the queue's retention runs out, kept in the DLQ and redriven: a day more.
    assert int(variables["LEDGER_TTL_SECONDS"]) == (
        queue["MessageRetentionPeriod"] + dlq["MessageRetentionPeriod"] + DAY
    )


@pytest.mark.parametrize("configuration", ["synth", "overridden"])
def test_max_receive_count_is_the_request_queues(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(configuration).template
    queue = only_resource(template, "AWS::SQS::Queue", "IntakeRequestQueue")["Properties"]
    variables = terminator(template)["Properties"]["Environment"]["Variables"]
    assert variables["MAX_RECEIVE_COUNT"] == str(queue["RedrivePolicy"]["maxReceiveCount"])


def test_max_receive_count_follows_context(overridden: Synthesized) -> None:
    variables = terminator(overridden.template)["Properties"]["Environment"]["Variables"]
    assert variables["MAX_RECEIVE_COUNT"] == OVERRIDE_CONTEXT["maxReceiveCount"]


def test_event_source_batches_and_reports_item_failures(template: Template) -> None:
    queue_id = logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue")
    function_id = logical_id(template, "AWS::Lambda::Function", "TerminatorFunction")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": function_id},
            "BatchSize": DEFAULTS.terminator_batch_size,
            "MaximumBatchingWindowInSeconds": DEFAULTS.terminator_batching_window_seconds,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": DEFAULTS.terminator_reserved_concurrency},
        },
    )


def test_event_source_follows_context(overridden: Synthesized) -> None:
    mapping = only_resource(overridden.template, "AWS::Lambda::EventSourceMapping", "Terminator")
    properties = mapping["Properties"]
    assert properties["BatchSize"] == int(OVERRIDE_CONTEXT["terminatorBatchSize"])
    assert properties["MaximumBatchingWindowInSeconds"] == 0
    assert properties["ScalingConfig"] == {
        "MaximumConcurrency": int(OVERRIDE_CONTEXT["terminatorReservedConcurrency"])
    }


def test_terminate_job_is_allowed_on_job_arns_only(template: Template) -> None:
    statements = statements_with(role_statements(template, "TerminatorRole"), "batch:TerminateJob")
    assert len(statements) == 1
    assert actions(statements[0]) == ["batch:TerminateJob"]
    assert statements[0]["Resource"] == JOB_ARN
    # No terminateOnlyTagged: no tag condition.
    assert "Condition" not in statements[0]


def test_no_tag_rule_in_the_environment_by_default(template: Template) -> None:
    assert (
        "TERMINATE_ONLY_TAGGED"
        not in terminator(template)["Properties"]["Environment"]["Variables"]
    )


def test_the_tag_rule_reaches_the_function_as_well_as_iam(overridden: Synthesized) -> None:
    """terminateOnlyTagged: the function skips untagged jobs itself; IAM is the backstop."""
    key, value = (part.strip() for part in OVERRIDE_CONTEXT["terminateOnlyTagged"].split("=", 1))
    variables = terminator(overridden.template)["Properties"]["Environment"]["Variables"]
    assert variables[TERMINATE_ONLY_TAGGED_ENV] == f"{key}={value}"


def test_terminate_job_can_require_a_tag_on_the_job(overridden: Synthesized) -> None:
    key, value = OVERRIDE_CONTEXT["terminateOnlyTagged"].split("=", 1)
    statements = statements_with(
        role_statements(overridden.template, "TerminatorRole"), "batch:TerminateJob"
    )
    assert statements == [
        {
            "Sid": "TerminateJobs",
            "Effect": "Allow",
            "Action": "batch:TerminateJob",
            "Resource": JOB_ARN,
            "Condition": {"StringEquals": {f"aws:ResourceTag/{key}": value}},
        }
    ]


@pytest.mark.parametrize("action", ["batch:DescribeJobs", "batch:ListJobs"])
def test_batch_reads_are_on_star_because_they_have_no_resource_types(
    template: Template, action: str
) -> None:
    statements = statements_with(role_statements(template, "TerminatorRole"), action)
    assert [s["Resource"] for s in statements] == ["*"]


def test_ledger_is_read_and_written_by_key_on_its_table_only(template: Template) -> None:
    table_arn = {"Fn::GetAtt": [logical_id(template, "AWS::DynamoDB::Table", "LedgerTable"), "Arn"]}
    statements = [
        s
        for s in role_statements(template, "TerminatorRole")
        if any(action.startswith("dynamodb:") for action in actions(s))
    ]
    # One statement, six item actions, the table's ARN: no index ARNs, no table/*, no '*'.
    assert statements == [
        {
            "Sid": "KeepRequestLedger",
            "Effect": "Allow",
            "Action": [
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:PutItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": table_arn,
        }
    ]


def test_job_queues_can_be_resolved(template: Template) -> None:
    # DescribeJobQueues has no resource-level permissions: '*' is the only resource it takes.
    assert statements_with(
        role_statements(template, "TerminatorRole"), "batch:DescribeJobQueues"
    ) == [
        {
            "Sid": "FindJobQueues",
            "Effect": "Allow",
            "Action": "batch:DescribeJobQueues",
            "Resource": "*",
        }
    ]


def test_request_queue_consumption_and_dlq_send(template: Template) -> None:
    queue_arn = {
        "Fn::GetAtt": [logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue"), "Arn"]
    }
    dlq_arn = {
        "Fn::GetAtt": [logical_id(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue"), "Arn"]
    }
    statements = role_statements(template, "TerminatorRole")
    consume = [s for s in statements if s["Resource"] == queue_arn]
    assert len(consume) == 1
    assert sorted(actions(consume[0])) == [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    # The function parks rejected requests in the DLQ itself.
    assert [actions(s) for s in statements if s["Resource"] == dlq_arn] == [["sqs:SendMessage"]]


def test_role_has_exactly_the_hand_written_statements(template: Template) -> None:
    role = only_resource(template, "AWS::IAM::Role", "TerminatorRole")
    assert "ManagedPolicyArns" not in role["Properties"]
    group_arn = {
        "Fn::GetAtt": [logical_id(template, "AWS::Logs::LogGroup", "TerminatorLogGroup"), "Arn"]
    }
    granted = sorted(
        (action, str(statement["Resource"]))
        for statement in role_statements(template, "TerminatorRole")
        for action in actions(statement)
    )
    queue = str(
        {"Fn::GetAtt": [logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue"), "Arn"]}
    )
    dlq = str(
        {"Fn::GetAtt": [logical_id(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue"), "Arn"]}
    )
    table = str(
        {"Fn::GetAtt": [logical_id(template, "AWS::DynamoDB::Table", "LedgerTable"), "Arn"]}
    )
    assert granted == sorted(
        [
            ("batch:TerminateJob", str(JOB_ARN)),
            ("batch:DescribeJobs", "*"),
            ("batch:ListJobs", "*"),
            ("batch:DescribeJobQueues", "*"),
            ("dynamodb:GetItem", table),
            ("dynamodb:BatchGetItem", table),
            ("dynamodb:PutItem", table),
            ("dynamodb:BatchWriteItem", table),
            ("dynamodb:UpdateItem", table),
            ("dynamodb:DeleteItem", table),
            ("sqs:ReceiveMessage", queue),
            ("sqs:DeleteMessage", queue),
            ("sqs:ChangeMessageVisibility", queue),
            ("sqs:GetQueueAttributes", queue),
            ("sqs:SendMessage", dlq),
            ("xray:PutTraceSegments", "*"),
            ("xray:PutTelemetryRecords", "*"),
            ("events:PutEvents", str(DEFAULT_BUS_ARN)),
            ("logs:CreateLogStream", str(group_arn)),
            ("logs:PutLogEvents", str(group_arn)),
        ]
    )


def test_no_statement_anywhere_allows_every_action(template: Template) -> None:
    documents = [
        policy["PolicyDocument"]
        for role in template.find_resources("AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
    ] + [
        resource["Properties"]["PolicyDocument"]
        for resource_type in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::SQS::QueuePolicy",
        )
        for resource in template.find_resources(resource_type).values()
    ]
    statements = [statement for document in documents for statement in document["Statement"]]
    assert statements
    for statement in statements:
        assert "*" not in actions(statement), statement
        if statement["Effect"] == "Allow":
            # Service-wide wildcards (sqs:*) appear only in the TLS-only Deny statements.
            assert not any(action.endswith(":*") for action in actions(statement)), statement


def test_no_grant_added_policies_beside_the_roles(template: Template) -> None:
    # Every permission is in the roles' inline documents; CDK's automatic grants are inert.
    template.resource_count_is("AWS::IAM::Policy", 0)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 0)
    roles = template.find_resources("AWS::IAM::Role")
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"]
    # Every role is a function's, but the one EventBridge Scheduler assumes (test_deadlines).
    function_roles = [r for i, r in roles.items() if "SchedulerRole" not in i]
    assert len(function_roles) == len(roles) - 1 == 4
    for role in function_roles:
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]


def test_function_uses_its_role(template: Template) -> None:
    role = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": HANDLER, "Role": {"Fn::GetAtt": [role, "Arn"]}}
    )
    assert role.as_string() == logical_id(template, "AWS::IAM::Role", "TerminatorRole")
