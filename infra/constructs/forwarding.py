"""Forwarding: the member's decision events, from its default bus to the fleet's central bus."""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from batch_terminator.contract import DECISION_DETAIL_TYPE, EVENT_SOURCE, decision_event_pattern
from infra.constructs.intake import event_pattern, rule_dead_letter_queue
from infra.constructs.lambda_package import fixed

EVENTS_SERVICE: Final = "events.amazonaws.com"


class DecisionForwarding(Construct):
    """A rule on the default bus (decision events only) whose target is the central bus.

    EventBridge needs a role to put events on a bus in another account ("Sending and receiving
    events between AWS accounts in Amazon EventBridge": a rule whose target is another account's
    bus must specify an execution role). The role may only PutEvents on that one bus; the
    central bus's resource policy admits this account. What cannot be delivered after the
    retries lands in an encrypted dead-letter queue (alarmed by the stack's monitoring).
    """

    def __init__(self, scope: Construct, construct_id: str, *, central_bus_arn: str) -> None:
        super().__init__(scope, construct_id)
        self.central_bus_arn = central_bus_arn
        self.dead_letter_queue = rule_dead_letter_queue(self, "DeadLetterQueue")

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(EVENTS_SERVICE),
            description="Forwards batch-terminator decision events to the fleet's central bus",
            inline_policies={
                "Permissions": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ForwardDecisions",
                            actions=["events:PutEvents"],
                            resources=[central_bus_arn],
                        )
                    ]
                )
            },
        )
        central_bus = events.EventBus.from_event_bus_arn(self, "CentralBus", central_bus_arn)
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"{EVENT_SOURCE} / {DECISION_DETAIL_TYPE} events to the fleet's bus",
            event_pattern=event_pattern(decision_event_pattern()),
            # EventBridge retries with backoff for up to 24 hours (its default retry policy),
            # then the dead-letter queue. The target grants events.amazonaws.com SendMessage on
            # that queue, conditioned on aws:SourceArn = this rule. The role is fixed: the
            # target's own grant (PutEvents on the bus) is already its one statement.
            targets=[
                targets.EventBus(
                    central_bus, dead_letter_queue=self.dead_letter_queue, role=fixed(self.role)
                )
            ],
        )
