"""Intake: request queue, dead-letter queue, EventBridge rule, queue policies."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from batch_terminator.contract import request_event_pattern
from infra.settings import StackSettings
from tests.infra.support import OVERRIDE_CONTEXT, Synthesized, logical_id, only_resource

DEFAULTS = StackSettings()


def queue_ids(template: Template) -> tuple[str, str]:
    return (
        logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue"),
        logical_id(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue"),
    )


def arn_of(resource_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource_id, "Arn"]}


def policy_statements(template: Template, queue_id: str) -> list[dict[str, Any]]:
    policies = [
        policy
        for policy in template.find_resources("AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    assert len(policies) == 1
    return list(policies[0]["Properties"]["PolicyDocument"]["Statement"])


def test_both_queues_use_sqs_managed_encryption(template: Template) -> None:
    for queue_id in queue_ids(template):
        queue = template.to_json()["Resources"][queue_id]
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert "KmsMasterKeyId" not in queue["Properties"]


def test_both_queues_deny_requests_without_tls(template: Template) -> None:
    for queue_id in queue_ids(template):
        assert {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Resource": arn_of(queue_id),
        } in policy_statements(template, queue_id)


def test_request_queue_redrives_to_the_dlq_after_max_receive_count(template: Template) -> None:
    request_id, dlq_id = queue_ids(template)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {
                "deadLetterTargetArn": arn_of(dlq_id),
                "maxReceiveCount": DEFAULTS.max_receive_count,
            },
            "VisibilityTimeout": 6 * DEFAULTS.terminator_timeout_seconds,
        },
    )
    assert request_id in template.find_resources(
        "AWS::SQS::Queue", {"Properties": {"RedrivePolicy": Match.any_value()}}
    )


def test_max_receive_count_and_visibility_follow_context(overridden: Synthesized) -> None:
    queue = only_resource(overridden.template, "AWS::SQS::Queue", "IntakeRequestQueue")
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == int(
        OVERRIDE_CONTEXT["maxReceiveCount"]
    )
    assert queue["Properties"]["VisibilityTimeout"] == 6 * int(
        OVERRIDE_CONTEXT["terminatorTimeoutSeconds"]
    )


def test_request_queue_retention_is_explicit(template: Template) -> None:
    # The SQS default of four days, written out: the ledger's TTL is derived from it.
    queue = only_resource(template, "AWS::SQS::Queue", "IntakeRequestQueue")
    assert queue["Properties"]["MessageRetentionPeriod"] == 4 * 24 * 3600


def test_dlq_keeps_messages_fourteen_days(template: Template) -> None:
    dlq = only_resource(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue")
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "RedrivePolicy" not in dlq["Properties"]


def test_a_parked_request_always_fits_back_in_the_request_queue(template: Template) -> None:
    # Both keep SQS's maximum, 1 MiB: a redrive can move back whatever was parked in the DLQ.
    queue = only_resource(template, "AWS::SQS::Queue", "IntakeRequestQueue")
    dlq = only_resource(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue")
    assert queue["Properties"]["MaximumMessageSize"] == 1_048_576
    assert dlq["Properties"]["MaximumMessageSize"] == 1_048_576


def test_rule_matches_requests_and_targets_the_queue_with_dlq_and_retries(
    template: Template,
) -> None:
    request_id, dlq_id = queue_ids(template)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": request_event_pattern(),
            "State": "ENABLED",
            "Targets": [
                {
                    "Arn": arn_of(request_id),
                    "Id": Match.any_value(),
                    "DeadLetterConfig": {"Arn": arn_of(dlq_id)},
                    "RetryPolicy": {
                        "MaximumRetryAttempts": Match.any_value(),
                        "MaximumEventAgeInSeconds": Match.any_value(),
                    },
                }
            ],
        },
    )
    rule = only_resource(template, "AWS::Events::Rule", "IntakeRequestRule")
    # The default bus: no EventBusName means the account's default event bus.
    assert "EventBusName" not in rule["Properties"]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["batch-terminator"],
        "detail-type": ["Batch Job Termination Request"],
    }


def test_queue_policies_admit_only_the_account_and_the_rule(template: Template) -> None:
    rule_arn = arn_of(logical_id(template, "AWS::Events::Rule", "IntakeRequestRule"))
    account_root = {
        "AWS": {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
            ]
        }
    }
    for queue_id in queue_ids(template):
        allows = [s for s in policy_statements(template, queue_id) if s["Effect"] == "Allow"]
        assert allows, queue_id
        for statement in allows:
            if statement["Principal"] == {"Service": "events.amazonaws.com"}:
                assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
                assert "sqs:SendMessage" in statement["Action"]
            else:
                assert statement["Principal"] == account_root, statement
            assert statement["Resource"] == arn_of(queue_id)

    request_id, _ = queue_ids(template)
    principals = [
        s["Principal"] for s in policy_statements(template, request_id) if s["Effect"] == "Allow"
    ]
    assert account_root in principals
    assert {"Service": "events.amazonaws.com"} in principals
