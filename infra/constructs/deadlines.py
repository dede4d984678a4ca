"""Deadlines: Batch job events, the deadline function, and the EventBridge Scheduler pieces.

`Batch Job State Change` and `Batch Job Queue Blocked` events go through an events queue to the
deadline function. For a job that enters a status some policy limits, the function creates a
one-time schedule in this construct's group: at the deadline, EventBridge Scheduler sends the
termination request to the request queue as the scheduler role (the universal target
`aws-sdk:sqs:sendMessage`), and a delivery it cannot make lands in the schedules' DLQ.
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import (
    DEADLINE_HANDLER,
    JOB_QUEUE_BLOCKED,
    JOB_STATE_CHANGE,
    LEDGER_TABLE_ENV,
    REQUEST_QUEUE_ARN_ENV,
    REQUEST_QUEUE_URL_ENV,
    SCHEDULE_DLQ_ARN_ENV,
    SCHEDULE_GROUP_ENV,
    SCHEDULER_ROLE_ARN_ENV,
)
from batch_terminator.logic.event_patterns import (
    job_queue_blocked_pattern,
    job_state_change_pattern,
)
from batch_terminator.models.policies import PoliciesFile
from infra.constructs.intake import (
    DLQ_HAS_NO_REDRIVE,
    DLQ_RETENTION,
    RULE_MAX_EVENT_AGE,
    RULE_RETRY_ATTEMPTS,
    encrypted_queue,
    event_pattern,
)
from infra.constructs.lambda_package import (
    WILDCARD_RESOURCE_REASON,
    LambdaPackage,
    batch_read_statement,
    function_role,
    log_group_statement,
)
from infra.constructs.ledger import Ledger
from infra.nag import acknowledge, region_and_account
from infra.settings import StackSettings

SCHEDULER_SERVICE: Final = "scheduler.amazonaws.com"
TIMEOUT: Final = Duration.seconds(60)
MEMORY_MB: Final = 256
# Events are light work (a schedule created or deleted each); a few concurrent batches keep up
# with bursts of state changes while leaving Batch's unpublished API rates to the terminator.
RESERVED_CONCURRENCY: Final = 5
BATCH_SIZE: Final = 100
BATCHING_WINDOW: Final = Duration.seconds(5)
# AWS guidance for SQS event sources: six times the function timeout.
EVENTS_VISIBILITY_TIMEOUT: Final = Duration.seconds(6 * int(TIMEOUT.to_seconds()))

SCHEDULE_ACTIONS: Final = (
    "scheduler:CreateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
    # Two rules on one status: the earlier deadline replaces the later one's schedule.
    "scheduler:UpdateSchedule",
)


def schedules_arn(scope: Construct, group_name: str) -> str:
    """Every schedule of the group: `arn:…:scheduler:REGION:ACCOUNT:schedule/GROUP/*`."""
    return Stack.of(scope).format_arn(
        service="scheduler",
        resource="schedule",
        resource_name=f"{group_name}/*",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


class Deadlines(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: LambdaPackage,
        settings: StackSettings,
        policies: PoliciesFile,
        request_queue: sqs.IQueue,
        ledger: Ledger,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self._events(settings, policies)

        # Deleting the group deletes its schedules: they target this stack's request queue.
        self.schedule_group = scheduler.ScheduleGroup(
            self, "ScheduleGroup", removal_policy=RemovalPolicy.DESTROY
        )
        cfn_group = self.schedule_group.node.default_child
        assert isinstance(cfn_group, scheduler.CfnScheduleGroup)
        # Its Ref (the name CDK gave it), not the plain string: whatever names the group
        # depends on it, so the function is created after it and deleted before it.
        self.schedule_group_name = group_name = cfn_group.ref
        group_schedules = schedules_arn(self, group_name)

        # What a schedule could not deliver after its retries; Scheduler sends it there as the
        # schedule's execution role (EventBridge Scheduler user guide, "Configuring a
        # schedule's dead-letter queue": the role needs sqs:SendMessage on the queue).
        self.schedule_dead_letter_queue = encrypted_queue(
            self, "ScheduleDeadLetterQueue", retention_period=DLQ_RETENTION
        )
        acknowledge(
            self.schedule_dead_letter_queue, "Serverless-SQSRedrivePolicy", DLQ_HAS_NO_REDRIVE
        )
        acknowledge(
            self.schedule_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is a dead-letter queue: that of the one-time schedules the deadline "
            "function creates at run time (their DeadLetterConfig names it), so no resource of "
            "the template refers to it as one.",
        )

        # The role schedules run as: send to the request queue and the schedules' DLQ, nothing
        # else; assumable by EventBridge Scheduler for this group's schedules only.
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            description="EventBridge Scheduler: deadline schedules send termination requests",
            assumed_by=iam.ServicePrincipal(
                SCHEDULER_SERVICE,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": group_schedules},
                },
            ),
            inline_policies={
                "Permissions": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="SendDeadlineRequests",
                            actions=["sqs:SendMessage"],
                            resources=[request_queue.queue_arn],
                        ),
                        iam.PolicyStatement(
                            sid="SendDeadLetters",
                            actions=["sqs:SendMessage"],
                            resources=[self.schedule_dead_letter_queue.queue_arn],
                        ),
                    ]
                )
            },
        )

        self.log_group = logs.LogGroup(self, "LogGroup", retention=package.log_retention)
        self.role = function_role(
            self,
            "Role",
            [
                batch_read_statement(),
                iam.PolicyStatement(
                    sid="ConsumeEvents",
                    actions=[
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    resources=[self.events_queue.queue_arn],
                ),
                iam.PolicyStatement(
                    sid="ManageDeadlineSchedules",
                    actions=list(SCHEDULE_ACTIONS),
                    resources=[group_schedules],
                ),
                iam.PolicyStatement(
                    sid="PassSchedulerRole",
                    actions=["iam:PassRole"],
                    resources=[self.scheduler_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": SCHEDULER_SERVICE}},
                ),
                # A deadline already past when its event arrives is enqueued at once.
                iam.PolicyStatement(
                    sid="SendPastDueRequests",
                    actions=["sqs:SendMessage"],
                    resources=[request_queue.queue_arn],
                ),
                # Confirmation: the terminator's record of a termination, read and marked.
                iam.PolicyStatement(
                    sid="ConfirmTerminations",
                    actions=["dynamodb:UpdateItem"],
                    resources=[ledger.table.table_arn],
                ),
                # The pause switch (one item, read by key; pausing.py says what a pause
                # changes on the deadline path).
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
        schedules_reason = (
            "Schedule ARNs end in their names, which the deadline function derives per job, "
            "status and attempt at run time: the resource is every schedule of this stack's own "
            "schedule group (schedule/GROUP/*), and nothing outside it."
        )
        acknowledge(self.role, "AwsSolutions-IAM5[Resource::*]", WILDCARD_RESOURCE_REASON)
        region, account = region_and_account(self)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:{region}:"
            f"{account}:schedule/<{stack.get_logical_id(cfn_group)}>/*]",
            schedules_reason,
        )
        acknowledge(
            self.role,
            "Serverless-LambdaStarPermissions",
            f"{WILDCARD_RESOURCE_REASON} {schedules_reason}",
        )

        self.function = package.function(
            self,
            handler=DEADLINE_HANDLER,
            memory_size=MEMORY_MB,
            timeout=TIMEOUT,
            reserved_concurrency=RESERVED_CONCURRENCY,
            log_group=self.log_group,
            role=self.role,
            environment={
                REQUEST_QUEUE_URL_ENV: request_queue.queue_url,
                REQUEST_QUEUE_ARN_ENV: request_queue.queue_arn,
                SCHEDULE_GROUP_ENV: group_name,
                SCHEDULER_ROLE_ARN_ENV: self.scheduler_role.role_arn,
                SCHEDULE_DLQ_ARN_ENV: self.schedule_dead_letter_queue.queue_arn,
                LEDGER_TABLE_ENV: ledger.table.table_name,
            },
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "The deadline function is only invoked synchronously, by its SQS event source; a "
            "function DLQ applies to asynchronous invocations. Events that keep failing move to "
            "the events dead-letter queue through the events queue's redrive policy.",
        )

        self.event_source = self.function.add_event_source_mapping(
            "EventsQueueSource",
            event_source_arn=self.events_queue.queue_arn,
            batch_size=BATCH_SIZE,
            max_batching_window=BATCHING_WINDOW,
            # Partial batch responses: one bad event never makes SQS redeliver the whole batch.
            report_batch_item_failures=True,
            max_concurrency=RESERVED_CONCURRENCY,
        )
        acknowledge(
            self.event_source,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event source mappings take no on-failure destination (Lambda supports one for "
            "stream and Kafka sources only); an event that keeps failing moves to the events "
            "dead-letter queue through the events queue's redrive policy (maxReceiveCount).",
        )

    def _events(self, settings: StackSettings, policies: PoliciesFile) -> None:
        """The events queue, its DLQ, and the two rules that fill it."""
        self.events_dead_letter_queue = encrypted_queue(
            self, "EventsDeadLetterQueue", retention_period=DLQ_RETENTION
        )
        acknowledge(
            self.events_dead_letter_queue, "Serverless-SQSRedrivePolicy", DLQ_HAS_NO_REDRIVE
        )
        self.events_queue = encrypted_queue(
            self,
            "EventsQueue",
            visibility_timeout=EVENTS_VISIBILITY_TIMEOUT,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.max_receive_count, queue=self.events_dead_letter_queue
            ),
        )

        def rule(construct_id: str, description: str, pattern: dict[str, Any]) -> events.Rule:
            return events.Rule(
                self,
                construct_id,
                description=description,
                event_pattern=event_pattern(pattern),
                # The target grants events.amazonaws.com SendMessage on both queues, conditioned
                # on aws:SourceArn = this rule.
                targets=[
                    targets.SqsQueue(
                        self.events_queue,
                        dead_letter_queue=self.events_dead_letter_queue,
                        retry_attempts=RULE_RETRY_ATTEMPTS,
                        max_event_age=RULE_MAX_EVENT_AGE,
                    )
                ],
            )

        self.job_state_change_rule = rule(
            "JobStateChangeRule",
            f"{JOB_STATE_CHANGE} events of limited and final statuses to the deadline function",
            job_state_change_pattern(policies),
        )
        self.job_queue_blocked_rule = rule(
            "JobQueueBlockedRule",
            f"{JOB_QUEUE_BLOCKED} events of the allowed queues to the deadline function",
            job_queue_blocked_pattern(policies),
        )
