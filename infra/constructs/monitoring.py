"""Monitoring: alarms on what must never pass unnoticed, and saved Logs Insights audit queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import METRICS_NAMESPACE, SERVICE_NAME

QUERY_FOLDER: Final = "batch-terminator"
METRIC_PERIOD: Final = Duration.minutes(5)
# Audit lines are Powertools JSON with "message": "termination" (see the design's audit record).
_AUDIT_FILTER: Final = 'message = "termination"'
_LATEST: Final = 100


def service_metric(metric_name: str) -> cloudwatch.Metric:
    """A run total: the series that carries only the `service` dimension (Powertools default)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=cloudwatch.Stats.SUM,
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
    """Saved query name (below the folder) -> query over the audit lines."""
    return {
        "terminations-by-outcome": logs.QueryString(
            filter_statements=[_AUDIT_FILTER],
            stats_statements=["count(*) as jobs by outcome"],
        ),
        "terminated-jobs": logs.QueryString(
            fields=_job_fields("reason"),
            filter_statements=[_AUDIT_FILTER, 'outcome = "terminated"'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "skipped-jobs": logs.QueryString(
            fields=_job_fields("skip_reason"),
            filter_statements=[_AUDIT_FILTER, 'outcome = "skipped"'],
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
            filter_statements=[_AUDIT_FILTER, 'outcome in ["rejected", "failed"]'],
            sort="@timestamp desc",
            limit=_LATEST,
        ),
        "terminations-by-policy": logs.QueryString(
            filter_statements=[_AUDIT_FILTER, "ispresent(policy)"],
            stats_statements=["count(*) as jobs by policy, outcome"],
            sort="jobs desc",
        ),
    }


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dead_letter_queue: sqs.IQueue,
        sweep_failure_queue: sqs.IQueue,
        events_dead_letter_queue: sqs.IQueue,
        schedule_dead_letter_queue: sqs.IQueue,
        brake_failure_queue: sqs.IQueue,
        audit_log_groups: Sequence[logs.ILogGroup],
        alarm_topic_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)

        self.dead_letter_alarm = self._queue_not_empty(
            "DeadLetterQueueNotEmpty",
            dead_letter_queue,
            "Termination requests are in the dead-letter queue: rejected (invalid) or failed "
            "after retries. See the queue's messages and the rejected-and-failed saved query.",
        )
        self.sweep_failure_alarm = self._queue_not_empty(
            "SweepFailuresQueued",
            sweep_failure_queue,
            "A scheduled policy sweep failed after retries: scheduled policies did not run.",
        )
        self.events_dead_letter_alarm = self._queue_not_empty(
            "EventsDeadLetterQueueNotEmpty",
            events_dead_letter_queue,
            "Batch job events the deadline function could not process after retries (or that "
            "EventBridge could not deliver): their deadlines may not be scheduled. The sweeper "
            "still catches those jobs; see the queue's messages and the deadline log group.",
        )
        self.schedule_dead_letter_alarm = self._queue_not_empty(
            "ScheduleDeadLettersQueued",
            schedule_dead_letter_queue,
            "A deadline schedule could not send its termination request to the request queue "
            "after retries: that deadline was missed (the sweeper remains the net).",
        )
        self.brake_failure_alarm = self._queue_not_empty(
            "BrakeFailuresQueued",
            brake_failure_queue,
            "An alarm brake failed after retries, or its alarm could not be delivered: the "
            "alarm-triggered policies may not have run.",
        )
        self.policy_cap_alarm = self._count_alarm(
            "PolicyCapReached",
            "A policy hit its maxPerRun blast-radius cap: more jobs matched than it may terminate "
            "in one run.",
        )
        self.terminations_failed_alarm = self._count_alarm(
            "TerminationsFailed",
            "Batch refused or failed terminations; the requests are retried, then dead-lettered.",
        )
        self.alarms = [
            self.dead_letter_alarm,
            self.sweep_failure_alarm,
            self.events_dead_letter_alarm,
            self.schedule_dead_letter_alarm,
            self.brake_failure_alarm,
            self.policy_cap_alarm,
            self.terminations_failed_alarm,
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
                log_groups=list(audit_log_groups),
            )
            for name, query in audit_queries().items()
        ]

    def _queue_not_empty(
        self, construct_id: str, queue: sqs.IQueue, description: str
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
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
