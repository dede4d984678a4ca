"""Monitoring: alarms on what must never pass unnoticed, the saved Logs Insights queries that
answer the README's audit questions, and the dashboard (infra/constructs/dashboard.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import METRICS_NAMESPACE, SERVICE_NAME

QUERY_FOLDER: Final = "batch-terminator"
METRIC_PERIOD: Final = Duration.minutes(5)
# Lambda retries throttled work (SQS redelivers, asynchronous invocations are retried for up to
# 6 hours): a throttle is worth an alarm when it lasts, not when three alarm paths of one
# transition reach the brake (reserved concurrency 1) in the same second.
THROTTLE_PERIODS: Final = 3
# Audit lines are Powertools JSON with "message": "termination" (see the design's audit record).
AUDIT_FILTER: Final = 'message = "termination"'
# The placeholder a reader replaces in the job-history query.
JOB_ID_PLACEHOLDER: Final = "REPLACE-WITH-JOB-ID"
_LATEST: Final = 100


def service_metric(metric_name: str, statistic: str = cloudwatch.Stats.SUM) -> cloudwatch.Metric:
    """A run total: the series that carries only the `service` dimension (Powertools default)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=METRIC_PERIOD,
    )


def _job_fields(why: str) -> list[str]:
    """The columns of a per-job listing; `why` is the reason or the skip reason."""
    return [
        "@timestamp",
        "job_id",
        "job_name",
        "job_queue",
        "status_before",
        "status_reason_before",
        why,
        "policy",
        "age_seconds",
        "source",
        "requested_by",
        "sender",
    ]


def audit_queries() -> dict[str, logs.QueryString]:
    """Saved query name (below the folder) -> query over the terminator's audit lines."""
    return {
        "terminations-by-outcome": logs.QueryString(
            filter_statements=[AUDIT_FILTER],
            stats_statements=["count(*) as jobs by outcome"],
        ),
        "terminated-jobs": logs.QueryString(
            fields=_job_fields("reason"),
            filter_statements=[AUDIT_FILTER, 'outcome = "terminated"'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "skipped-jobs": logs.QueryString(
            fields=_job_fields("skip_reason"),
            filter_statements=[AUDIT_FILTER, 'outcome = "skipped"'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "rejected-and-failed": logs.QueryString(
            fields=[
                "@timestamp",
                "outcome",
                "job_id",
                "job_name",
                "error",
                "reason",
                "policy",
                "source",
                "requested_by",
                "sender",
                "request_id",
                "message_id",
            ],
            filter_statements=[AUDIT_FILTER, 'outcome in ["rejected", "failed"]'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "terminations-by-policy": logs.QueryString(
            filter_statements=[AUDIT_FILTER, "ispresent(policy)"],
            stats_statements=["count(*) as jobs by policy, outcome"],
            sort="jobs desc",
        ),
        "terminations-by-source": logs.QueryString(
            filter_statements=[AUDIT_FILTER],
            stats_statements=["count(*) as jobs by source, outcome"],
            sort="jobs desc",
        ),
        # Rolling out safely: what the dry-run policies would have terminated, per policy.
        "dry-run-decisions": logs.QueryString(
            fields=_job_fields("skip_reason"),
            filter_statements=[AUDIT_FILTER, "skip_reason like /dry run/"],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        # Who asked for terminations by hand, and who really sent them (SQS SenderId).
        "requests-by-sender": logs.QueryString(
            filter_statements=[AUDIT_FILTER, 'source = "request"'],
            stats_statements=["count(*) as jobs by requested_by, sender, outcome"],
            sort="jobs desc",
        ),
    }


def operations_queries() -> dict[str, logs.QueryString]:
    """Saved query name -> query over the other lines: runs, caps, pauses, brakes, deadlines."""
    return {
        # A template: replace the placeholder with a job id; every function's lines about it.
        "job-history": logs.QueryString(
            fields=[
                "@timestamp",
                "@log",
                "message",
                "outcome",
                "policy",
                "source",
                "reason",
                "skip_reason",
                "error",
                "why",
                "request_id",
            ],
            filter_statements=[f'job_id = "{JOB_ID_PLACEHOLDER}"'],
            sort="@timestamp asc",
        ),
        "policy-runs": logs.QueryString(
            fields=["@timestamp", "source", "run_id", "enqueued", "messages", "batch_calls"],
            filter_statements=['message = "policy run"'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "caps-reached": logs.QueryString(
            fields=["@timestamp", "policy", "capped", "max_per_run", "run_id"],
            filter_statements=['message = "policy cap reached"'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        # Pause and resume: the sweeper's and brake's `paused` lines (who paused, since when,
        # why), and the requests of policy paths the terminator skipped because of it.
        "pauses": logs.QueryString(
            fields=[
                "@timestamp",
                "@log",
                "message",
                "path",
                "paused_by",
                "paused_at",
                "reason",
                "source",
                "policy",
                "job_id",
                "skip_reason",
            ],
            filter_statements=['message = "paused" or skip_reason = "paused"'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "brakes": logs.QueryString(
            fields=[
                "@timestamp",
                "message",
                "kind",
                "trigger",
                "path",
                "key",
                "enqueued",
                "resumed",
                "why",
                "error",
            ],
            filter_statements=["message like /^brake /"],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "deadline-events": logs.QueryString(
            fields=["@timestamp", "job_id", "outcome", "why", "error", "message_id"],
            filter_statements=['message = "deadline event"'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "deadline-schedules": logs.QueryString(
            filter_statements=['message = "deadline batch"'],
            stats_statements=[
                "sum(schedules_created) as created, sum(schedules_updated) as updated, "
                "sum(schedules_deleted) as deleted, sum(enqueued) as due_now by bin(1h)"
            ],
        ),
        # Request to stop: from TerminateJobs accepting a job to its FAILED event.
        "termination-latency": logs.QueryString(
            filter_statements=['message = "termination confirmed"'],
            stats_statements=[
                "count(*) as confirmed, pct(seconds_to_stop, 50) as p50, "
                "pct(seconds_to_stop, 99) as p99, max(seconds_to_stop) as slowest "
                "by policy, source"
            ],
        ),
    }


def queue_not_empty_alarm(
    scope: Construct, construct_id: str, queue: sqs.IQueue, description: str
) -> cloudwatch.Alarm:
    """The alarm every dead-letter and failure queue gets: a message visible for one minute."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(
            statistic=cloudwatch.Stats.MAXIMUM, period=Duration.minutes(1)
        ),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )


@dataclass(frozen=True)
class Watched:
    """What the stack gives monitoring to watch."""

    # Queue name as the alarm calls it -> (queue, what a message there means).
    failure_queues: Mapping[str, tuple[sqs.IQueue, str]]
    # Function name as the dashboard calls it (Terminator, Sweeper, Deadline, Brake) -> function.
    functions: Mapping[str, lambda_.IFunction]
    sweeper: lambda_.IFunction
    schedule_group: scheduler.IScheduleGroup
    audit_log_group: logs.ILogGroup
    deadline_log_group: logs.ILogGroup
    log_groups: Sequence[logs.ILogGroup]


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        watched: Watched,
        alarm_topic_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)

        self.queue_alarms = {
            name: self._queue_not_empty(name, queue, description)
            for name, (queue, description) in watched.failure_queues.items()
        }
        self.policy_cap_alarm = self._count_alarm(
            "PolicyCapReached",
            "A policy hit its maxPerRun blast-radius cap: more jobs matched than it may terminate "
            "in one run. See the caps-reached saved query.",
        )
        self.terminations_failed_alarm = self._count_alarm(
            "TerminationsFailed",
            "Batch refused or failed terminations; the requests are retried, then dead-lettered. "
            "See the rejected-and-failed saved query.",
        )
        self.function_alarms = self._function_alarms(watched.functions)
        self.schedules_dropped_alarm = cloudwatch.Alarm(
            self,
            "DeadlineSchedulesDropped",
            alarm_description=(
                "EventBridge Scheduler dropped a deadline schedule's invocation: the request was "
                "neither delivered to the request queue nor sent to the schedules' dead-letter "
                "queue. That deadline was missed; the sweeper remains the net."
            ),
            metric=watched.schedule_group.metric_dropped(
                statistic=cloudwatch.Stats.SUM, period=METRIC_PERIOD
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms: list[cloudwatch.Alarm] = [
            *self.queue_alarms.values(),
            self.policy_cap_alarm,
            self.terminations_failed_alarm,
            *self.function_alarms,
            self.schedules_dropped_alarm,
        ]

        if alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
            for alarm in self.alarms:
                alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))

        self.queries = [
            logs.QueryDefinition(
                self,
                f"Query-{name}",
                query_definition_name=f"{QUERY_FOLDER}/{name}",
                query_string=query,
                log_groups=list(watched.log_groups),
            )
            for name, query in {**audit_queries(), **operations_queries()}.items()
        ]

    def _queue_not_empty(
        self, construct_id: str, queue: sqs.IQueue, description: str
    ) -> cloudwatch.Alarm:
        return queue_not_empty_alarm(self, construct_id, queue, description)

    def _count_alarm(self, metric_name: str, description: str) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            metric_name,
            alarm_description=description,
            metric=service_metric(metric_name),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # No data means nothing happened: the metrics are only written when it does.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _function_alarms(
        self, functions: Mapping[str, lambda_.IFunction]
    ) -> list[cloudwatch.Alarm]:
        """Errors: any in 5 minutes. Throttles: some in each of 3 consecutive 5-minute periods."""
        alarms = []
        for name, function in functions.items():
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{name}Errors",
                    alarm_description=(
                        f"The {name.lower()} function failed an invocation (an exception or a "
                        "timeout). Its work is retried; see its log group for the error."
                    ),
                    metric=function.metric_errors(
                        statistic=cloudwatch.Stats.SUM, period=METRIC_PERIOD
                    ),
                    threshold=1,
                    comparison_operator=(
                        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                    ),
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{name}Throttles",
                    alarm_description=(
                        f"The {name.lower()} function has been throttled for "
                        f"{THROTTLE_PERIODS * 5} minutes: its reserved concurrency is taken. "
                        "Lambda retries throttled work, so a backlog is building."
                    ),
                    metric=function.metric_throttles(
                        statistic=cloudwatch.Stats.SUM, period=METRIC_PERIOD
                    ),
                    threshold=1,
                    comparison_operator=(
                        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                    ),
                    evaluation_periods=THROTTLE_PERIODS,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        return alarms
