"""Monitoring: alarms and the saved Logs Insights queries over the audit lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.constructs.monitoring import JOB_ID_PLACEHOLDER, audit_queries
from tests.infra.support import OVERRIDE_CONTEXT, Synthesized, logical_id, only_resource

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
    # 5 queues, 2 service metrics, errors and throttles of 4 functions, dropped schedules.
    assert len(found) == 5 + 2 + 4 * 2 + 1
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
        f"batch-terminator/{name}"
        for name in [
            "terminations-by-outcome",
            "terminated-jobs",
            "skipped-jobs",
            "rejected-and-failed",
            "terminations-by-policy",
            "terminations-by-source",
            "dry-run-decisions",
            "requests-by-sender",
            "job-history",
            "policy-runs",
            "caps-reached",
            "pauses",
            "brakes",
            "deadline-events",
            "deadline-schedules",
            "termination-latency",
        ]
    }
    for name, query in found.items():
        assert query["LogGroupNames"] == groups
        if name.removeprefix("batch-terminator/") in audit_queries():
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
    """A saved audit query must never ask for a key the terminator does not write."""
    from dataclasses import fields

    from batch_terminator.models.audit import AuditRecord

    keys = {f.name for f in fields(AuditRecord)} | {"@timestamp"}
    audit = {f"batch-terminator/{name}" for name in audit_queries()}
    for name, query in queries(template).items():
        if name not in audit:
            continue
        first = query["QueryString"].splitlines()[0]
        if first.startswith("fields "):
            asked = {f.strip() for f in first.removeprefix("fields ").split(",")}
            assert asked <= keys, (name, asked - keys)


FUNCTIONS = {
    "Terminator": "TerminatorFunction",
    "Sweeper": "PoliciesFunction",
    "Deadline": "DeadlinesFunction",
    "Brake": "BrakeFunction",
}


@pytest.mark.parametrize("function_part", sorted(FUNCTIONS.values()))
def test_every_function_has_an_errors_and_a_throttles_alarm(
    template: Template, function_part: str
) -> None:
    function_id = logical_id(template, "AWS::Lambda::Function", function_part)
    dimensions = [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    found = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in alarms(template).values()
        if a["Properties"].get("Namespace") == "AWS/Lambda"
        and a["Properties"]["Dimensions"] == dimensions
    }
    assert set(found) == {"Errors", "Throttles"}
    assert found["Errors"]["Threshold"] == 1
    assert found["Errors"]["EvaluationPeriods"] == 1
    # Throttled work is retried by Lambda: a lasting throttle is what is worth waking for.
    assert found["Throttles"]["EvaluationPeriods"] == 3
    for alarm in found.values():
        assert alarm["Statistic"] == "Sum"
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def schedule_group_name(template: Template) -> str:
    """The group's Name, as the template sets it (the Scheduler metrics' dimension)."""
    group = only_resource(template, "AWS::Scheduler::ScheduleGroup", "DeadlinesScheduleGroup")
    name: str = group["Properties"]["Name"]
    return name


def test_dropped_deadline_schedules_are_alarmed(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/Scheduler",
            "MetricName": "InvocationDroppedCount",
            "Dimensions": [{"Name": "ScheduleGroup", "Value": schedule_group_name(template)}],
            "Statistic": "Sum",
            "Threshold": 1,
        },
    )


def test_job_history_is_a_template_over_every_function(template: Template) -> None:
    query = queries(template)["batch-terminator/job-history"]
    assert f'filter job_id = "{JOB_ID_PLACEHOLDER}"' in query["QueryString"]
    assert "sort @timestamp asc" in query["QueryString"]


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("pauses", 'skip_reason = "paused"'),
        ("brakes", "filter message like /^brake /"),
        ("caps-reached", 'filter message = "policy cap reached"'),
        ("deadline-events", 'filter message = "deadline event"'),
        ("termination-latency", "pct(seconds_to_stop, 99)"),
        ("dry-run-decisions", "skip_reason like /dry run/"),
    ],
)
def test_operations_queries_read_the_lines_the_functions_write(
    template: Template, name: str, needle: str
) -> None:
    assert needle in queries(template)[f"batch-terminator/{name}"]["QueryString"]


def test_the_lines_the_queries_read_are_written_by_the_functions() -> None:
    """The messages the operations queries filter on are the ones the handlers log."""
    from infra.paths import LAMBDA_PACKAGE_DIR

    sources = "\n".join(
        path.read_text(encoding="utf-8") for path in LAMBDA_PACKAGE_DIR.rglob("*.py")
    )
    for message in [
        "policy run",
        "policy cap reached",
        "deadline event",
        "deadline batch",
        "termination confirmed",
        "brake applied",
        "brake already applied",
        "brake event ignored",
    ]:
        assert f'"{message}"' in sources, message
    for key in ["seconds_to_stop", "schedules_created", "schedules_deleted", "max_per_run"]:
        assert f'"{key}"' in sources, key


# --- dashboard ---------------------------------------------------------------------------------


def dashboard_body(template: Template) -> dict[str, Any]:
    """The dashboard's JSON with every CloudFormation reference replaced by its logical id."""
    [dashboard] = template.find_resources("AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(
        part if isinstance(part, str) else part.get("Ref", str(part)).replace("::", "-")
        for part in parts
    )
    body: dict[str, Any] = json.loads(text)
    return body


def metric_widgets(template: Template) -> list[dict[str, Any]]:
    return [w["properties"] for w in dashboard_body(template)["widgets"] if w["type"] == "metric"]


def plotted(template: Template) -> list[list[Any]]:
    """Every metric line of every graph: [namespace, name, dim, value, ..., {options}]."""
    return [line for widget in metric_widgets(template) for line in widget["metrics"]]


def expressions(template: Template) -> list[str]:
    return [
        line[-1]["expression"]
        for line in plotted(template)
        if isinstance(line[-1], dict) and "expression" in line[-1]
    ]


def test_one_dashboard_named_by_cloudformation(template: Template) -> None:
    [dashboard] = template.find_resources("AWS::CloudWatch::Dashboard").values()
    assert "DashboardName" not in dashboard["Properties"]


def test_dashboard_shows_every_outcome_total(template: Template) -> None:
    from batch_terminator.reporting import METRIC_BY_OUTCOME

    lines = plotted(template)
    for metric_name in METRIC_BY_OUTCOME.values():
        assert ["BatchTerminator", metric_name, "service", "batch-terminator", {"stat": "Sum"}] in (
            lines
        ), metric_name


@pytest.mark.parametrize(
    "metric_name", ["JobsTerminated", "JobsSkipped", "TerminationsFailed", "PolicyCapReached"]
)
def test_dashboard_searches_every_policys_series(template: Template, metric_name: str) -> None:
    assert (
        "SEARCH('{BatchTerminator,policy,service} "
        f'MetricName="{metric_name}" service="batch-terminator"\', \'Sum\', 300)'
    ) in expressions(template)


def test_dashboard_shows_request_to_stop_latency_percentiles(template: Template) -> None:
    stats = {
        line[-1]["stat"]
        for line in plotted(template)
        if line[:2] == ["BatchTerminator", "TerminationLatency"]
    }
    assert stats == {"p50", "p99"}


def test_dashboard_shows_the_sweep_duration(template: Template) -> None:
    sweeper = logical_id(template, "AWS::Lambda::Function", "PoliciesFunction")
    stats = {
        # Average is a graph's default statistic: the dashboard JSON leaves it out.
        line[-1].get("stat", "Average")
        for line in plotted(template)
        if line[:4] == ["AWS/Lambda", "Duration", "FunctionName", sweeper]
    }
    assert stats == {"Average", "Maximum"}


def test_dashboard_shows_every_alarmed_queue_depth(template: Template) -> None:
    depths = {
        line[3]
        for line in plotted(template)
        if line[:3] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"]
    }
    # Fn::GetAtt QueueName renders as its own object: one per queue the alarms watch.
    assert len(depths) == 5


def test_dashboard_shows_errors_and_throttles_of_every_function(template: Template) -> None:
    for function_part in FUNCTIONS.values():
        function_id = logical_id(template, "AWS::Lambda::Function", function_part)
        shown = {
            line[1]
            for line in plotted(template)
            if line[0] == "AWS/Lambda" and line[2:4] == ["FunctionName", function_id]
        }
        assert {"Errors", "Throttles"} <= shown, function_part


def test_dashboard_shows_schedules_created_against_fired(template: Template) -> None:
    group_id = schedule_group_name(template)
    names = {line[1] for line in plotted(template) if len(line) > 1}
    assert "SchedulesCreated" in names
    scheduler = {
        line[1]
        for line in plotted(template)
        if line[0] == "AWS/Scheduler" and line[2:4] == ["ScheduleGroup", group_id]
    }
    assert scheduler == {
        "InvocationAttemptCount",
        "InvocationsSentToDeadLetterCount",
        "InvocationDroppedCount",
    }


def test_dashboard_log_widgets_read_the_audit_and_deadline_lines(template: Template) -> None:
    audit = logical_id(template, "AWS::Logs::LogGroup", "TerminatorLogGroup")
    deadlines = logical_id(template, "AWS::Logs::LogGroup", "DeadlinesLogGroup")
    logs_widgets = [
        w["properties"]["query"] for w in dashboard_body(template)["widgets"] if w["type"] == "log"
    ]
    assert len(logs_widgets) == 3
    assert (
        sum(f"SOURCE '{audit}'" in q and 'message = "termination"' in q for q in logs_widgets) == 2
    )
    assert any(f"SOURCE '{deadlines}'" in q and '"deadline batch"' in q for q in logs_widgets)
