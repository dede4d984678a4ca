"""Brake: the function that runs alarm-triggered policies, and the three ways an alarm reaches it.

(a) an EventBridge rule on `CloudWatch Alarm State Change` into ALARM for the alarms that
policies name; (b) CloudWatch Lambda alarm actions of those alarms, admitted by one resource
policy statement per alarm name; (c) an optional existing SNS topic (`brakeTopicArn`) carrying
alarm notifications and AWS Budgets alerts. The function lists each policy's jobs and sends
them to the request queue; the same alarm transition delivered twice, by one path or several,
brakes once (a conditional put in the ledger table).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import (
    ALARM_STATE_CHANGE,
    BRAKE_HANDLER,
    LEDGER_TABLE_ENV,
    REQUEST_QUEUE_URL_ENV,
)
from batch_terminator.logic.event_patterns import alarm_names, alarm_state_change_pattern
from batch_terminator.models.policies import PoliciesFile
from infra.constructs.intake import (
    DLQ_HAS_NO_REDRIVE,
    DLQ_RETENTION,
    encrypted_queue,
    event_pattern,
)
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
from infra.settings import StackSettings

ALARM_ACTION_PRINCIPAL: Final = "lambda.alarms.cloudwatch.amazonaws.com"
TIMEOUT: Final = Duration.minutes(5)
MEMORY_MB: Final = 512
# One brake at a time: two brakes of one transition would list and request the same jobs
# (duplicates are also claimed away in the ledger, across cold starts).
RESERVED_CONCURRENCY: Final = 1
ASYNC_RETRY_ATTEMPTS: Final = 2
RULE_RETRY_ATTEMPTS: Final = 2
# An alarm event still undelivered after this long is stale for an emergency brake.
RULE_MAX_EVENT_AGE: Final = Duration.hours(1)


def alarm_arn(scope: Construct, name: str) -> str:
    """`arn:…:cloudwatch:REGION:ACCOUNT:alarm:NAME`; a `*` in the name stays a wildcard, which
    the permission's ArnLike condition on the source ARN accepts."""
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:{name}"


class Brake(Construct):
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

        # Every invocation is asynchronous: a brake that fails after Lambda's retries, or that
        # EventBridge or SNS cannot deliver, lands here instead of vanishing.
        self.failure_queue = encrypted_queue(self, "FailureQueue", retention_period=DLQ_RETENTION)
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
                    sid="RecordFailedBrakes",
                    actions=["sqs:SendMessage"],
                    resources=[self.failure_queue.queue_arn],
                ),
                # Each alarm transition is claimed with a conditional put; a brake that fails
                # before it has requested anything releases its claim. GetItem also reads the
                # pause switch: a paused system does not brake.
                iam.PolicyStatement(
                    sid="ClaimAlarmTransitions",
                    actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
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
            handler=BRAKE_HANDLER,
            memory_size=MEMORY_MB,
            timeout=TIMEOUT,
            reserved_concurrency=RESERVED_CONCURRENCY,
            log_group=self.log_group,
            role=self.role,
            dead_letter_queue=self.failure_queue,
            # Policies come with the asset (policies.json), as the sweeper's do.
            environment={
                REQUEST_QUEUE_URL_ENV: request_queue.queue_url,
                LEDGER_TABLE_ENV: ledger.table.table_name,
            },
        )
        self.function.configure_async_invoke(retry_attempts=ASYNC_RETRY_ATTEMPTS)
        invoke_config = self.function.node.find_child("EventInvokeConfig")
        acknowledge(
            invoke_config,
            "Serverless-LambdaAsyncFailureDestination",
            "A failed asynchronous invocation already goes to the brake's failure queue through "
            "the function's dead-letter queue (DeadLetterConfig), as the sweeper's do: one record "
            "per failed brake, in one alarmed queue; an on-failure destination to it as well "
            "would only duplicate that record.",
        )

        self.alarm_rule = self._alarm_rule(policies)
        self.alarm_permissions = self._alarm_action_permissions(policies)
        self.subscription = self._topic_subscription(settings.brake_topic_arn)

    def _alarm_rule(self, policies: PoliciesFile) -> events.Rule | None:
        pattern = alarm_state_change_pattern(policies)
        if pattern is None:
            return None
        return events.Rule(
            self,
            "AlarmRule",
            description=f"{ALARM_STATE_CHANGE} into ALARM of the brake policies' alarms",
            event_pattern=event_pattern(pattern),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.failure_queue,
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    max_event_age=RULE_MAX_EVENT_AGE,
                )
            ],
        )

    def _alarm_action_permissions(self, policies: PoliciesFile) -> list[lambda_.CfnPermission]:
        """CloudWatch may invoke the function as an alarm action of the named alarms only."""
        stack = Stack.of(self)
        permissions = []
        for index, name in enumerate(alarm_names(policies)):
            permission = lambda_.CfnPermission(
                self,
                f"AlarmActionPermission{index}",
                action="lambda:InvokeFunction",
                function_name=self.function.function_arn,
                principal=ALARM_ACTION_PRINCIPAL,
                source_account=stack.account,
                source_arn=alarm_arn(self, name),
            )
            permissions.append(permission)
        return permissions

    def _topic_subscription(self, topic_arn: str | None) -> sns.Subscription | None:
        if topic_arn is None:
            return None
        topic = sns.Topic.from_topic_arn(self, "BrakeTopic", topic_arn)
        # Adds the function's permission for sns.amazonaws.com from this topic, and lets the
        # topic send what it cannot deliver to the failure queue.
        subscription = subscriptions.LambdaSubscription(
            self.function, dead_letter_queue=self.failure_queue
        )
        return topic.add_subscription(subscription)
