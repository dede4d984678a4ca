"""The fleet log: every decision event on the fleet bus, stored in one log group."""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from batch_terminator.contract import (
    DECISION_DETAIL_TYPE,
    EVENT_SOURCE,
    FLEET_LOG_GROUP,
    decision_event_pattern,
)
from infra.constructs.forwarding import EVENTS_SERVICE
from infra.constructs.intake import rule_dead_letter_queue
from infra.constructs.lambda_package import RETENTION_BY_DAYS
from infra.constructs.monitoring import queue_not_empty_alarm

# The principals the EventBridge user guide names for a CloudWatch Logs target's resource
# policy ("Using resource-based policies for Amazon EventBridge", CloudWatch Logs permissions):
# EventBridge creates the log stream and puts the events; no role is given to such a target.
LOG_WRITERS: Final = (EVENTS_SERVICE, "delivery.logs.amazonaws.com")
TARGET_RETRY_ATTEMPTS: Final = 24
TARGET_MAX_EVENT_AGE_SECONDS: Final = 24 * 3600


class FleetLog(Construct):
    """The log group FLEET_LOG_GROUP (retention from the fleet file), its resource policy written
    out (CreateLogStream and PutLogEvents on this group only, for EventBridge), and a rule on the
    fleet bus sending decision events there. EventBridge stores each whole event as the message,
    so Logs Insights sees `account`, `region` and `detail.*`. Undeliverable events go to an
    encrypted, alarmed dead-letter queue."""

    def __init__(
        self, scope: Construct, construct_id: str, *, bus: events.IEventBus, retention_days: int
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=FLEET_LOG_GROUP,
            retention=RETENTION_BY_DAYS[retention_days],
        )
        # Written by hand rather than by events_targets.CloudWatchLogGroup, which puts the
        # policy with a custom resource (a Lambda function and its role in this stack).
        self.resource_policy = logs.ResourcePolicy(
            self,
            "ResourcePolicy",
            resource_policy_name="batch-terminator-fleet-decisions",
            policy_statements=[
                iam.PolicyStatement(
                    sid="EventBridgeWritesDecisions",
                    principals=[iam.ServicePrincipal(service) for service in LOG_WRITERS],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                )
            ],
        )

        self.dead_letter_queue = rule_dead_letter_queue(self, "DeadLetterQueue")

        # The target's ARN is the group's without the `:*` stream suffix, as CDK's own
        # CloudWatchLogGroup target writes it.
        group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.log_group.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        pattern = decision_event_pattern()
        self.rule = events.CfnRule(
            self,
            "Rule",
            description=f"{EVENT_SOURCE} / {DECISION_DETAIL_TYPE} events to {FLEET_LOG_GROUP}",
            event_bus_name=bus.event_bus_name,
            event_pattern=pattern,
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="FleetLogGroup",
                    arn=group_arn,
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                        arn=self.dead_letter_queue.queue_arn
                    ),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=TARGET_RETRY_ATTEMPTS,
                        maximum_event_age_in_seconds=TARGET_MAX_EVENT_AGE_SECONDS,
                    ),
                )
            ],
        )
        self.rule.node.add_dependency(self.resource_policy)
        # EventBridge sends what it could not deliver, as this rule only.
        self.dead_letter_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RuleDeadLetters",
                principals=[iam.ServicePrincipal(EVENTS_SERVICE)],
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.rule.attr_arn}},
            )
        )
        self.dead_letter_alarm = queue_not_empty_alarm(
            self,
            "DecisionsNotStored",
            self.dead_letter_queue,
            "Decision events the fleet bus could not store in the fleet log group after 24 "
            "hours of retries: they are missing from the central audit. See the queue's messages "
            "and the log group's resource policy.",
        )
