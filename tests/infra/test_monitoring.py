"""Monitoring: alarms and the saved Logs Insights queries over the audit lines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.support import OVERRIDE_CONTEXT, Synthesized, logical_id

TOPIC_ARN = OVERRIDE_CONTEXT["alarmTopicArn"]


def alarms(template: Template) -> Mapping[str, Mapping[str, Any]]:
    return template.find_resources("AWS::CloudWatch::Alarm")


def queries(template: Template) -> dict[str, dict[str, Any]]:
    found = template.find_resources("AWS::Logs::QueryDefinition")
    return {q["Properties"]["Name"]: q["Properties"] for q in found.values()}


def test_alarm_on_dead_letter_queue_depth(template: Template) -> None:
    dlq_id = logical_id(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue")
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
        },
    )


@pytest.mark.parametrize("metric_name", ["PolicyCapReached", "TerminationsFailed"])
def test_alarm_on_service_metric(template: Template, metric_name: str) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "BatchTerminator",
            "MetricName": metric_name,
            "Dimensions": [{"Name": "service", "Value": "batch-terminator"}],
            "Statistic": "Sum",
            "Period": 300,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching",
        },
    )


def test_alarms_notify_nobody_without_a_topic(template: Template) -> None:
    assert alarms(template)
    for alarm in alarms(template).values():
        assert "AlarmActions" not in alarm["Properties"]


def test_alarms_notify_the_given_topic(overridden: Synthesized) -> None:
    found = alarms(overridden.template)
    assert len(found) == 7
    for alarm in found.values():
        assert alarm["Properties"]["AlarmActions"] == [TOPIC_ARN]


def test_queries_cover_every_function_log_group_in_one_folder(template: Template) -> None:
    groups = [
        {"Ref": logical_id(template, "AWS::Logs::LogGroup", "TerminatorLogGroup")},
        {"Ref": logical_id(template, "AWS::Logs::LogGroup", "PoliciesLogGroup")},
        {"Ref": logical_id(template, "AWS::Logs::LogGroup", "DeadlinesLogGroup")},
        {"Ref": logical_id(template, "AWS::Logs::LogGroup", "BrakeLogGroup")},
    ]
    assert len(template.find_resources("AWS::Logs::LogGroup")) == len(groups)
    found = queries(template)
    assert set(found) == {
        "batch-terminator/terminations-by-outcome",
        "batch-terminator/terminated-jobs",
        "batch-terminator/skipped-jobs",
        "batch-terminator/rejected-and-failed",
        "batch-terminator/terminations-by-policy",
    }
    for query in found.values():
        assert query["LogGroupNames"] == groups
        assert 'filter message = "termination"' in query["QueryString"]


def test_terminations_by_outcome(template: Template) -> None:
    query = queries(template)["batch-terminator/terminations-by-outcome"]["QueryString"]
    assert "stats count(*) as jobs by outcome" in query


def test_terminated_jobs_show_the_audit_fields(template: Template) -> None:
    query = queries(template)["batch-terminator/terminated-jobs"]["QueryString"]
    for field in [
        "job_id",
        "job_name",
        "job_queue",
        "status_before",
        "status_reason_before",
        "reason",
        "policy",
        "age_seconds",
        "source",
        "requested_by",
        "sender",
    ]:
        assert field in query.splitlines()[0]
    assert 'outcome = "terminated"' in query
    assert "sort @timestamp desc" in query


def test_skipped_jobs_show_why(template: Template) -> None:
    query = queries(template)["batch-terminator/skipped-jobs"]["QueryString"]
    assert "skip_reason" in query.splitlines()[0]
    assert 'outcome = "skipped"' in query


def test_rejected_and_failed_show_the_error(template: Template) -> None:
    query = queries(template)["batch-terminator/rejected-and-failed"]["QueryString"]
    assert "error" in query.splitlines()[0]
    assert 'outcome in ["rejected", "failed"]' in query


def test_per_policy_counts(template: Template) -> None:
    query = queries(template)["batch-terminator/terminations-by-policy"]["QueryString"]
    assert "stats count(*) as jobs by policy, outcome" in query


@pytest.mark.parametrize(
    "queue",
    [
        "SweepFailureQueue",
        "DeadlinesEventsDeadLetterQueue",
        "DeadlinesScheduleDeadLetterQueue",
        "BrakeFailureQueue",
    ],
)
def test_failure_queues_are_alarmed_too(template: Template, queue: str) -> None:
    failures_id = logical_id(template, "AWS::SQS::Queue", queue)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [
                {"Name": "QueueName", "Value": {"Fn::GetAtt": [failures_id, "QueueName"]}}
            ],
            "Threshold": 1,
            "TreatMissingData": Match.any_value(),
        },
    )


def test_every_queried_field_is_an_audit_key(template: Template) -> None:
    """A saved query must never ask for a key the terminator does not write."""
    from dataclasses import fields

    from batch_terminator.models.audit import AuditRecord

    keys = {f.name for f in fields(AuditRecord)} | {"@timestamp"}
    for name, query in queries(template).items():
        first = query["QueryString"].splitlines()[0]
        if first.startswith("fields "):
            asked = {f.strip() for f in first.removeprefix("fields ").split(",")}
            assert asked <= keys, (name, asked - keys)
