"""Deadlines construct: Batch event rules, events queue, deadline function, EventBridge Scheduler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Template

from batch_terminator.contract import DEADLINE_HANDLER
from batch_terminator.logic.event_patterns import (
    job_queue_blocked_pattern,
    job_state_change_pattern,
)
from infra.settings import StackSettings
from tests.infra.support import (
    DEFAULT_BUS_ARN,
    OVERRIDE_CONTEXT,
    Synthesized,
    actions,
    granted,
    logical_id,
    only_resource,
    policies_of,
    queue_policy_statements,
    statements_of,
)

CONFIGURATIONS = ["synth", "overridden", "braking"]


def arn_of(resource_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource_id, "Arn"]}


def ids(template: Template) -> dict[str, str]:
    return {
        "events": logical_id(template, "AWS::SQS::Queue", "DeadlinesEventsQueue"),
        "events_dlq": logical_id(template, "AWS::SQS::Queue", "DeadlinesEventsDeadLetterQueue"),
        "schedule_dlq": logical_id(template, "AWS::SQS::Queue", "DeadlinesScheduleDeadLetterQueue"),
        "request": logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue"),
        "function": logical_id(template, "AWS::Lambda::Function", "DeadlinesFunction"),
        "group": logical_id(template, "AWS::Scheduler::ScheduleGroup", "DeadlinesScheduleGroup"),
        "scheduler_role": logical_id(template, "AWS::IAM::Role", "DeadlinesSchedulerRole"),
        "logs": logical_id(template, "AWS::Logs::LogGroup", "DeadlinesLogGroup"),
        "ledger": logical_id(template, "AWS::DynamoDB::Table", "LedgerTable"),
    }


def group_schedules(group_id: str) -> dict[str, Any]:
    """`arn:PARTITION:scheduler:REGION:ACCOUNT:schedule/GROUP/*` as the template writes it."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":scheduler:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":schedule/",
                {"Ref": group_id},
                "/*",
            ],
        ]
    }


def deadline(template: Template) -> Mapping[str, Any]:
    return only_resource(template, "AWS::Lambda::Function", "DeadlinesFunction")


# --- rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_rule_patterns_are_those_of_the_policies(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(configuration)
    policies = policies_of(synthesized)
    template = synthesized.template
    state_change = only_resource(template, "AWS::Events::Rule", "DeadlinesJobStateChangeRule")
    blocked = only_resource(template, "AWS::Events::Rule", "DeadlinesJobQueueBlockedRule")
    assert state_change["Properties"]["EventPattern"] == job_state_change_pattern(policies)
    assert blocked["Properties"]["EventPattern"] == job_queue_blocked_pattern(policies)


def test_patterns_differ_with_the_policies(synth: Synthesized, overridden: Synthesized) -> None:
    # The comparison above is not with a constant: the overridden file limits other statuses
    # and filters queues, and its rules say so.
    default = only_resource(synth.template, "AWS::Events::Rule", "DeadlinesJobStateChangeRule")
    other = only_resource(overridden.template, "AWS::Events::Rule", "DeadlinesJobStateChangeRule")
    assert "jobQueue" not in default["Properties"]["EventPattern"]["detail"]
    assert other["Properties"]["EventPattern"]["detail"]["jobQueue"] == [
        {"wildcard": "arn:*:batch:*:*:job-queue/gpu-*"},
        "arn:aws:batch:eu-west-1:123456789012:job-queue/spot-cpu",
    ]
    blocked = only_resource(overridden.template, "AWS::Events::Rule", "JobQueueBlockedRule")
    assert (
        blocked["Properties"]["EventPattern"]["detail"]["jobQueue"]
        == (other["Properties"]["EventPattern"]["detail"]["jobQueue"])
    )


@pytest.mark.parametrize("rule", ["DeadlinesJobStateChangeRule", "DeadlinesJobQueueBlockedRule"])
def test_rules_feed_the_events_queue_with_retries_and_a_dlq(template: Template, rule: str) -> None:
    found = ids(template)
    [target] = only_resource(template, "AWS::Events::Rule", rule)["Properties"]["Targets"]
    assert target["Arn"] == arn_of(found["events"])
    assert target["DeadLetterConfig"] == {"Arn": arn_of(found["events_dlq"])}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 24, "MaximumEventAgeInSeconds": 86400}
    # EventBridge may send to both queues for this rule only.
    rule_id = logical_id(template, "AWS::Events::Rule", rule)
    for queue in ("events", "events_dlq"):
        allowed = [
            s
            for s in queue_policy_statements(template, found[queue])
            if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
        ]
        assert {"ArnEquals": {"aws:SourceArn": arn_of(rule_id)}} in [
            s["Condition"] for s in allowed
        ]
        assert all("sqs:SendMessage" in actions(s) for s in allowed)


# --- queues ------------------------------------------------------------------------------------


def test_events_queue_redrives_to_its_dlq_and_outlasts_the_function(template: Template) -> None:
    found = ids(template)
    queue = only_resource(template, "AWS::SQS::Queue", found["events"])["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": arn_of(found["events_dlq"]),
        "maxReceiveCount": StackSettings().max_receive_count,
    }
    assert queue["VisibilityTimeout"] >= 6 * deadline(template)["Properties"]["Timeout"]


def test_events_queue_max_receive_count_follows_context(overridden: Synthesized) -> None:
    queue = only_resource(overridden.template, "AWS::SQS::Queue", "DeadlinesEventsQueue")
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == int(
        OVERRIDE_CONTEXT["maxReceiveCount"]
    )


@pytest.mark.parametrize("queue", ["events_dlq", "schedule_dlq"])
def test_dead_letter_queues_are_encrypted_kept_and_tls_only(template: Template, queue: str) -> None:
    queue_id = ids(template)[queue]
    properties = template.to_json()["Resources"][queue_id]["Properties"]
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "RedrivePolicy" not in properties
    assert {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": arn_of(queue_id),
    } in queue_policy_statements(template, queue_id)


# --- function ----------------------------------------------------------------------------------


def test_function_handler_limits_and_event_source(template: Template) -> None:
    found = ids(template)
    properties = deadline(template)["Properties"]
    assert properties["Handler"] == DEADLINE_HANDLER
    assert properties["Timeout"] == 60
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["LoggingConfig"] == {"LogGroup": {"Ref": found["logs"]}}
    assert properties["Role"] == arn_of(logical_id(template, "AWS::IAM::Role", "DeadlinesRole"))
    [mapping] = [
        m["Properties"]
        for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": found["function"]}
    ]
    assert mapping["EventSourceArn"] == arn_of(found["events"])
    assert mapping["BatchSize"] == 100
    assert 1 <= mapping["MaximumBatchingWindowInSeconds"] <= 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (
        mapping["ScalingConfig"]["MaximumConcurrency"] <= properties["ReservedConcurrentExecutions"]
    )


def test_environment(template: Template) -> None:
    found = ids(template)
    assert deadline(template)["Properties"]["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "batch-terminator",
        "POWERTOOLS_METRICS_NAMESPACE": "BatchTerminator",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_DATA_PATH": "/var/task/botocore_data",
        "AWS_RETRY_MODE": "standard",
        "PUBLISH_DECISIONS": "true",
        "REQUEST_QUEUE_URL": {"Ref": found["request"]},
        "REQUEST_QUEUE_ARN": arn_of(found["request"]),
        "SCHEDULE_GROUP": {"Ref": found["group"]},
        "SCHEDULER_ROLE_ARN": arn_of(found["scheduler_role"]),
        "SCHEDULE_DLQ_ARN": arn_of(found["schedule_dlq"]),
        "LEDGER_TABLE": {"Ref": found["ledger"]},
        "ACCOUNT_ID": {"Ref": "AWS::AccountId"},
    }


def test_schedule_group_goes_with_the_stack(template: Template) -> None:
    group = template.to_json()["Resources"][ids(template)["group"]]
    # Its schedules target this stack's request queue: they leave with it.
    assert group["DeletionPolicy"] == "Delete"
    assert 1 <= len(group["Properties"]["Name"]) <= 64


# --- IAM ---------------------------------------------------------------------------------------


def test_scheduler_role_is_assumed_by_scheduler_for_the_groups_schedules(
    template: Template,
) -> None:
    found = ids(template)
    role = only_resource(template, "AWS::IAM::Role", found["scheduler_role"])
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {"aws:SourceArn": group_schedules(found["group"])},
            },
        }
    ]


def test_scheduler_role_may_only_send_to_the_request_queue_and_the_schedules_dlq(
    template: Template,
) -> None:
    found = ids(template)
    role = only_resource(template, "AWS::IAM::Role", found["scheduler_role"])
    assert "ManagedPolicyArns" not in role["Properties"]
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements_of(role))
    assert granted(role) == sorted(
        [
            ("sqs:SendMessage", str(arn_of(found["request"]))),
            ("sqs:SendMessage", str(arn_of(found["schedule_dlq"]))),
        ]
    )


def test_deadline_role_has_exactly_the_hand_written_statements(template: Template) -> None:
    found = ids(template)
    role = only_resource(template, "AWS::IAM::Role", "DeadlinesRole")
    schedules = str(group_schedules(found["group"]))
    logs = str(arn_of(found["logs"]))
    assert granted(role) == sorted(
        [
            ("batch:DescribeJobs", "*"),
            ("batch:ListJobs", "*"),
            ("sqs:ReceiveMessage", str(arn_of(found["events"]))),
            ("sqs:DeleteMessage", str(arn_of(found["events"]))),
            ("sqs:ChangeMessageVisibility", str(arn_of(found["events"]))),
            ("sqs:GetQueueAttributes", str(arn_of(found["events"]))),
            ("scheduler:CreateSchedule", schedules),
            ("scheduler:DeleteSchedule", schedules),
            ("scheduler:GetSchedule", schedules),
            ("scheduler:UpdateSchedule", schedules),
            ("iam:PassRole", str(arn_of(found["scheduler_role"]))),
            ("sqs:SendMessage", str(arn_of(found["request"]))),
            ("dynamodb:UpdateItem", str(arn_of(found["ledger"]))),
            # The pause switch, read by key.
            ("dynamodb:GetItem", str(arn_of(found["ledger"]))),
            ("xray:PutTraceSegments", "*"),
            ("xray:PutTelemetryRecords", "*"),
            ("events:PutEvents", str(DEFAULT_BUS_ARN)),
            ("logs:CreateLogStream", logs),
            ("logs:PutLogEvents", logs),
        ]
    )


def test_deadline_passes_the_scheduler_role_to_scheduler_only(template: Template) -> None:
    role = only_resource(template, "AWS::IAM::Role", "DeadlinesRole")
    [pass_role] = [s for s in statements_of(role) if "iam:PassRole" in actions(s)]
    assert pass_role["Resource"] == arn_of(ids(template)["scheduler_role"])
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    # No other statement of the role carries a condition it could lose (publishing decisions
    # is conditioned on their source, events:source).
    assert [s for s in statements_of(role) if "Condition" in s and s is not pass_role] == [
        s for s in statements_of(role) if s.get("Sid") == "PublishDecisions"
    ]


def test_only_the_deadline_role_may_manage_schedules_or_pass_roles(template: Template) -> None:
    deadline_role = logical_id(template, "AWS::IAM::Role", "DeadlinesRole")
    for role_id, role in template.find_resources("AWS::IAM::Role").items():
        if role_id == deadline_role:
            continue
        for statement in statements_of(role):
            assert not [
                a for a in actions(statement) if a.startswith("scheduler:") or a == "iam:PassRole"
            ], (role_id, statement)
