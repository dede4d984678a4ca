"""The CloudWatch dashboard: what was terminated, by which policy and path, what failed, what
waits in the dead-letter queues, and how fast a request stops a job.

Metrics are the functions' EMF series (namespace BatchTerminator): run totals carry the `service`
dimension only, and a second series per policy adds `policy`; the per-policy graphs find those
series with SEARCH, so a new policy appears without a deploy. Deadline schedules have no
"pending" metric: EventBridge Scheduler publishes, per schedule group, invocation attempts,
target errors and throttles, dead-lettered and dropped invocations (namespace AWS/Scheduler;
"Monitoring Amazon EventBridge Scheduler with Amazon CloudWatch"), and nothing that counts the
schedules waiting. The dashboard shows what can be counted instead: schedules created (the
deadline function's SchedulesCreated) against schedules fired (InvocationAttemptCount) and
dead-lettered, and the deadline function's own hourly created / updated / deleted totals.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from batch_terminator.contract import METRICS_NAMESPACE, SERVICE_NAME
from infra.constructs.monitoring import AUDIT_FILTER, METRIC_PERIOD, Watched, service_metric

OUTCOME_METRICS: Final = ("JobsTerminated", "JobsSkipped", "TerminationsFailed", "RequestsRejected")
FULL: Final = 24
HALF: Final = 12
THIRD: Final = 8
HEIGHT: Final = 6

_INTRO: Final = f"""\
## batch-terminator
Terminations by outcome and policy (EMF namespace `{METRICS_NAMESPACE}`), failures and the
dead-letter queues, caps reached, sweep duration, deadline schedules and request-to-stop latency.
Every alarm of the stack notifies the `alarmTopicArn` topic when one is set. The audit lines
behind these numbers: CloudWatch Logs Insights → Saved queries → `batch-terminator/`."""


def per_policy(metric_name: str) -> cloudwatch.MathExpression:
    """Every policy's series of a metric (dimensions service and policy), summed per period."""
    search = (
        f'{{{METRICS_NAMESPACE},policy,service}} MetricName="{metric_name}" '
        f'service="{SERVICE_NAME}"'
    )
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{search}', 'Sum', {int(METRIC_PERIOD.to_seconds())})",
        # A dynamic label: one legend entry per policy the search finds.
        label=f"{metric_name} ${{PROP('Dim.policy')}}",
        period=METRIC_PERIOD,
    )


class Dashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, watched: Watched) -> None:
        super().__init__(scope, construct_id)
        audit_groups = [watched.audit_log_group.log_group_name]
        deadline_groups = [watched.deadline_log_group.log_group_name]
        group = watched.schedule_group

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown=_INTRO, width=FULL, height=3))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs by outcome (all paths)",
                left=[service_metric(name) for name in OUTCOME_METRICS],
                width=HALF,
                height=HEIGHT,
            ),
            cloudwatch.LogQueryWidget(
                title="Terminations by policy, path and outcome",
                log_group_names=audit_groups,
                query_lines=[
                    f"filter {AUDIT_FILTER}",
                    "stats count(*) as jobs by policy, source, outcome",
                    "sort jobs desc",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=HALF,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Terminated, per policy",
                left=[per_policy("JobsTerminated")],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Skipped, per policy",
                left=[per_policy("JobsSkipped")],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Failures and cap hits, per policy",
                left=[per_policy("TerminationsFailed"), per_policy("PolicyCapReached")],
                width=THIRD,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter and failure queues (messages waiting)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        label=name, statistic=cloudwatch.Stats.MAXIMUM, period=METRIC_PERIOD
                    )
                    for name, (queue, _) in watched.failure_queues.items()
                ],
                width=HALF,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Function errors (left) and throttles (right)",
                left=[
                    function.metric_errors(label=f"{name} errors", statistic=cloudwatch.Stats.SUM)
                    for name, function in watched.functions.items()
                ],
                right=[
                    function.metric_throttles(
                        label=f"{name} throttles", statistic=cloudwatch.Stats.SUM
                    )
                    for name, function in watched.functions.items()
                ],
                width=HALF,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Sweep duration (ms)",
                left=[
                    watched.sweeper.metric_duration(
                        label=f"sweep {stat}", statistic=stat, period=METRIC_PERIOD
                    )
                    for stat in (cloudwatch.Stats.AVERAGE, cloudwatch.Stats.MAXIMUM)
                ],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Request to stop: TerminationLatency (s)",
                left=[
                    service_metric("TerminationLatency", statistic=stat).with_(label=stat)
                    for stat in (cloudwatch.Stats.p(50), cloudwatch.Stats.p(99))
                ],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Caps reached and brakes applied",
                left=[service_metric("PolicyCapReached"), service_metric("BrakesApplied")],
                width=THIRD,
                height=HEIGHT,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Deadline schedules: created, fired, dead-lettered",
                left=[
                    service_metric("SchedulesCreated").with_(label="created"),
                    group.metric_attempts(
                        label="fired (invocation attempts)",
                        statistic=cloudwatch.Stats.SUM,
                        period=METRIC_PERIOD,
                    ),
                    group.metric_sent_to_dlq(
                        label="dead-lettered", statistic=cloudwatch.Stats.SUM, period=METRIC_PERIOD
                    ),
                    group.metric_dropped(
                        label="dropped", statistic=cloudwatch.Stats.SUM, period=METRIC_PERIOD
                    ),
                ],
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.LogQueryWidget(
                title="Deadline schedules per hour (no metric counts pending schedules)",
                log_group_names=deadline_groups,
                query_lines=[
                    'filter message = "deadline batch"',
                    "stats sum(schedules_created) as created, sum(schedules_updated) as updated, "
                    "sum(schedules_deleted) as deleted, sum(enqueued) as due_now by bin(1h)",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.LogQueryWidget(
                title="Terminations sent by deadlines, per hour",
                log_group_names=audit_groups,
                query_lines=[
                    f"filter {AUDIT_FILTER}",
                    'filter source = "deadline"',
                    "stats count(*) as jobs by outcome, bin(1h)",
                ],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=THIRD,
                height=HEIGHT,
            ),
        )
