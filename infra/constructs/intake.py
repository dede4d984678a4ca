"""Intake: the request queue every path ends in, its dead-letter queue, and the EventBridge rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import (
    DLQ_MAX_MESSAGE_BYTES,
    EVENT_SOURCE,
    REQUEST_DETAIL_TYPE,
    REQUEST_MAX_MESSAGE_BYTES,
    request_event_pattern,
)
from infra.nag import acknowledge
from infra.settings import StackSettings

DLQ_RETENTION: Final = Duration.days(14)  # the SQS maximum: time to inspect and redrive
# The SQS default, written out: the request ledger's items must outlive every delivery.
REQUEST_RETENTION: Final = Duration.days(4)
# EventBridge backs off between attempts; a request it still cannot deliver goes to the DLQ.
RULE_RETRY_ATTEMPTS: Final = 24
RULE_MAX_EVENT_AGE: Final = Duration.hours(24)

DLQ_HAS_NO_REDRIVE: Final = (
    "This queue is itself a dead-letter queue: it keeps what failed for 14 days, for "
    "inspection and redrive; a redrive policy on it would only move those messages again."
)


def encrypted_queue(
    scope: Construct,
    construct_id: str,
    *,
    retention_period: Duration | None = None,
    visibility_timeout: Duration | None = None,
    dead_letter_queue: sqs.DeadLetterQueue | None = None,
    max_message_size_bytes: int | None = None,
) -> sqs.Queue:
    """SSE-SQS (EventBridge and Lambda deliver to it without KMS grants) and TLS only."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention_period,
        visibility_timeout=visibility_timeout,
        dead_letter_queue=dead_letter_queue,
        max_message_size_bytes=max_message_size_bytes,
    )


def rule_dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """The encrypted dead-letter queue of an EventBridge rule's target (its DeadLetterConfig),
    with the acknowledgements such a queue needs: cdk-nag recognises only queues named in a
    redrive policy or a function's DLQ."""
    queue = encrypted_queue(scope, construct_id, retention_period=DLQ_RETENTION)
    acknowledge(queue, "Serverless-SQSRedrivePolicy", DLQ_HAS_NO_REDRIVE)
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is a dead-letter queue: that of the EventBridge rule's target "
        "(DeadLetterConfig), where events go that could not be delivered after the retries. "
        "cdk-nag recognises only queues named in a redrive policy or a function's DLQ.",
    )
    return queue


def event_pattern(pattern: Mapping[str, Any]) -> events.EventPattern:
    """A pattern as the contract writes it (`source`, `detail-type`, `detail`), for a CDK rule."""
    unknown = set(pattern) - {"source", "detail-type", "detail"}
    if unknown:
        raise ValueError(f"event pattern keys this stack does not pass on: {sorted(unknown)}")
    return events.EventPattern(
        source=pattern.get("source"),
        detail_type=pattern.get("detail-type"),
        detail=pattern.get("detail"),
    )


class Intake(Construct):
    """Requests arrive from EventBridge (CLI, apps) or straight from SQS senders in the account."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)

        self.dead_letter_queue = encrypted_queue(
            self,
            "DeadLetterQueue",
            retention_period=DLQ_RETENTION,
            # The same as the request queue's (1 MiB): whatever is parked here fits back (redrive).
            max_message_size_bytes=DLQ_MAX_MESSAGE_BYTES,
        )
        acknowledge(self.dead_letter_queue, "Serverless-SQSRedrivePolicy", DLQ_HAS_NO_REDRIVE)

        self.queue = encrypted_queue(
            self,
            "RequestQueue",
            retention_period=REQUEST_RETENTION,
            visibility_timeout=Duration.seconds(settings.request_visibility_timeout_seconds),
            max_message_size_bytes=REQUEST_MAX_MESSAGE_BYTES,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.max_receive_count, queue=self.dead_letter_queue
            ),
        )
        # Senders in this account, by their own IAM policies; nobody outside it.
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AccountSenders",
                principals=[iam.AccountRootPrincipal()],
                actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                resources=[self.queue.queue_arn],
            )
        )

        self.rule = events.Rule(
            self,
            "RequestRule",
            description=f"{EVENT_SOURCE} / {REQUEST_DETAIL_TYPE} events to the request queue",
            event_pattern=event_pattern(request_event_pattern()),
            # The target grants events.amazonaws.com SendMessage on both queues, conditioned on
            # aws:SourceArn = this rule (SSE-SQS keeps that condition possible; KMS would not).
            targets=[
                targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    max_event_age=RULE_MAX_EVENT_AGE,
                )
            ],
        )
