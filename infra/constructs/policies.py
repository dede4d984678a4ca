"""Policies: the sweeper that evaluates scheduled policies and sends requests to the queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import LEDGER_TABLE_ENV, REQUEST_QUEUE_URL_ENV
from batch_terminator.models.policies import PoliciesFile
from infra.constructs.intake import DLQ_HAS_NO_REDRIVE, DLQ_RETENTION, encrypted_queue
from infra.constructs.lambda_package import (
    LambdaPackage,
    acknowledge_role_wildcards,
    batch_queue_discovery_statement,
    batch_read_statement,
    function_role,
    log_group_statement,
)
from infra.constructs.ledger import Ledger
from infra.nag import acknowledge

HANDLER: Final = "batch_terminator.handlers.sweeper.handler"
TIMEOUT: Final = Duration.minutes(5)
MEMORY_MB: Final = 512
# One sweep at a time: two overlapping sweeps would request the same jobs twice.
RESERVED_CONCURRENCY: Final = 1
SCHEDULE_RETRY_ATTEMPTS: Final = 2


def sweep_minutes(interval: timedelta) -> int:
    """The schedule's rate in whole minutes, never later than asked and at least one."""
    return max(1, int(interval.total_seconds() // 60))


def rate_expression(minutes: int) -> str:
    # Always in minutes, as configured (CDK's Schedule.rate would turn 120 into "2 hours").
    return f"rate({minutes} minute{'' if minutes == 1 else 's'})"


class Policies(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: LambdaPackage,
        policies: PoliciesFile,
        request_queue: sqs.IQueue,
        ledger: Ledger,
    ) -> None:
        super().__init__(scope, construct_id)

        # Scheduled invocations are asynchronous: a sweep that fails after Lambda's own retries,
        # or that EventBridge cannot deliver, lands here instead of vanishing.
        self.failure_queue = encrypted_queue(
            self, "SweepFailureQueue", retention_period=DLQ_RETENTION
        )
        acknowledge(self.failure_queue, "Serverless-SQSRedrivePolicy", DLQ_HAS_NO_REDRIVE)

        self.log_group = logs.LogGroup(self, "LogGroup", retention=package.log_retention)
        self.role = function_role(
            self,
            "Role",
            [
                batch_read_statement(),
                batch_queue_discovery_statement(),
                iam.PolicyStatement(
                    sid="SendRequests",
                    actions=["sqs:SendMessage"],
                    resources=[request_queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="RecordFailedSweeps",
                    actions=["sqs:SendMessage"],
                    resources=[self.failure_queue.queue_arn],
                ),
                # The pause switch (one item, read by key): a paused system does not sweep.
                iam.PolicyStatement(
                    sid="ReadPauseSwitch",
                    actions=["dynamodb:GetItem"],
                    resources=[ledger.table.table_arn],
                ),
                *package.tracing_statements(),
                *package.decision_statements(self),
                log_group_statement(self.log_group),
            ],
        )
        acknowledge_role_wildcards(self.role)

        self.function = package.function(
            self,
            handler=HANDLER,
            memory_size=MEMORY_MB,
            timeout=TIMEOUT,
            reserved_concurrency=RESERVED_CONCURRENCY,
            log_group=self.log_group,
            role=self.role,
            dead_letter_queue=self.failure_queue,
            environment={
                REQUEST_QUEUE_URL_ENV: request_queue.queue_url,
                LEDGER_TABLE_ENV: ledger.table.table_name,
            },
        )

        minutes = sweep_minutes(policies.settings.sweep_interval)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Run the policy sweeper every {minutes} minute(s)",
            schedule=events.Schedule.expression(rate_expression(minutes)),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.failure_queue,
                    retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                    # A sweep older than the interval is superseded by the next one.
                    max_event_age=Duration.minutes(minutes),
                )
            ],
        )
