"""Terminator: the request queue's consumer and the only function allowed to terminate jobs."""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import (
    DLQ_URL_ENV,
    LEDGER_TABLE_ENV,
    LEDGER_TTL_SECONDS_ENV,
    MAX_RECEIVE_COUNT_ENV,
    TERMINATE_ONLY_TAGGED_ENV,
)
from infra.constructs.lambda_package import (
    LambdaPackage,
    acknowledge_role_wildcards,
    batch_queue_discovery_statement,
    batch_read_statement,
    function_role,
    log_group_statement,
)
from infra.constructs.ledger import Ledger, ledger_ttl_seconds
from infra.nag import acknowledge, region_and_account
from infra.settings import StackSettings, TagCondition

HANDLER: Final = "batch_terminator.handlers.terminator.handler"
# The SQS event source's maximum concurrency cannot go below 2.
MIN_EVENT_SOURCE_CONCURRENCY: Final = 2


def job_arn_pattern(scope: Construct) -> str:
    """Every Batch job of this account and region: IAM cannot scope TerminateJob by queue (job
    ARNs carry none), so the allowed-queue check is made in code against DescribeJobs."""
    return Stack.of(scope).format_arn(
        service="batch",
        resource="job",
        resource_name="*",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def terminate_statement(scope: Construct, tagged: TagCondition | None) -> iam.PolicyStatement:
    """batch:TerminateJob on this account's and region's jobs; with `tagged`, only on jobs that
    carry that tag. The Service Authorization Reference lists `aws:ResourceTag/${TagKey}` as a
    condition key of batch:TerminateJob on the `job` resource type (Actions, resources, and
    condition keys for AWS Batch), so IAM itself refuses an untagged job."""
    conditions = (
        {"StringEquals": {f"aws:ResourceTag/{tagged.key}": tagged.value}} if tagged else None
    )
    return iam.PolicyStatement(
        sid="TerminateJobs",
        actions=["batch:TerminateJob"],
        resources=[job_arn_pattern(scope)],
        conditions=conditions,
    )


class Terminator(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: LambdaPackage,
        settings: StackSettings,
        request_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        ledger: Ledger,
    ) -> None:
        super().__init__(scope, construct_id)

        self.log_group = logs.LogGroup(self, "LogGroup", retention=package.log_retention)
        self.role = function_role(
            self,
            "Role",
            [
                # Bulk TerminateJobs has no IAM action of its own: it needs batch:TerminateJob.
                terminate_statement(self, settings.terminate_only_tagged),
                batch_read_statement(),
                # Selector requests name their queues; the function resolves them to ARNs.
                batch_queue_discovery_statement(),
                iam.PolicyStatement(
                    sid="ConsumeRequests",
                    actions=[
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    resources=[request_queue.queue_arn],
                ),
                # Rejected requests are parked in the DLQ by the function, with their error.
                iam.PolicyStatement(
                    sid="ParkRejectedRequests",
                    actions=["sqs:SendMessage"],
                    resources=[dead_letter_queue.queue_arn],
                ),
                # Items by key only: no Query or Scan. BatchWriteItem records the terminations it
                # made (for their confirmation), 25 a call; IAM cannot limit it to puts.
                # DeleteItem gives back a job's termination claim when the call was never made
                # (a conditional delete of its own claim); every other item leaves by TTL.
                iam.PolicyStatement(
                    sid="KeepRequestLedger",
                    actions=[
                        "dynamodb:GetItem",
                        "dynamodb:BatchGetItem",
                        "dynamodb:PutItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                    ],
                    resources=[ledger.table.table_arn],
                ),
                *package.tracing_statements(),
                *package.decision_statements(self),
                log_group_statement(self.log_group),
            ],
        )
        acknowledge_role_wildcards(self.role)
        region, account = region_and_account(self)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:{region}:{account}:job/*]",
            "batch:TerminateJob on job/* of this account and region: job ARNs carry no queue, so "
            "IAM cannot narrow it further; the function checks each job's queue against the "
            "allowed queues (DescribeJobs) before it terminates anything.",
        )

        self.function = package.function(
            self,
            handler=HANDLER,
            memory_size=settings.terminator_memory_mb,
            timeout=Duration.seconds(settings.terminator_timeout_seconds),
            # The one throttle on terminations, whatever path the requests come from.
            reserved_concurrency=settings.terminator_reserved_concurrency,
            log_group=self.log_group,
            role=self.role,
            environment=terminator_environment(
                {
                    DLQ_URL_ENV: dead_letter_queue.queue_url,
                    LEDGER_TABLE_ENV: ledger.table.table_name,
                    LEDGER_TTL_SECONDS_ENV: str(ledger_ttl_seconds()),
                    MAX_RECEIVE_COUNT_ENV: str(settings.max_receive_count),
                },
                settings.terminate_only_tagged,
            ),
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "The terminator is only invoked synchronously, by its SQS event source; a function "
            "DLQ applies to asynchronous invocations. Failed messages reach the dead-letter queue "
            "through the request queue's redrive policy, rejected ones are parked there by the "
            "function itself.",
        )

        self.event_source = self.function.add_event_source_mapping(
            "RequestQueueSource",
            event_source_arn=request_queue.queue_arn,
            batch_size=settings.terminator_batch_size,
            max_batching_window=Duration.seconds(settings.terminator_batching_window_seconds),
            # Partial batch responses: one bad job never makes SQS redeliver the whole batch.
            report_batch_item_failures=True,
            max_concurrency=max(
                MIN_EVENT_SOURCE_CONCURRENCY, settings.terminator_reserved_concurrency
            ),
        )
        acknowledge(
            self.event_source,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event source mappings take no on-failure destination (Lambda supports one for "
            "stream and Kafka sources only); a message that keeps failing moves to the "
            "dead-letter queue through the request queue's redrive policy (maxReceiveCount).",
        )


def terminator_environment(
    base: dict[str, str], terminate_only_tagged: TagCondition | None
) -> dict[str, str]:
    """The terminator's environment: `base`, plus TERMINATE_ONLY_TAGGED (`key=value`) when
    terminateOnlyTagged is set, so that the function skips untagged jobs itself and the IAM
    condition on batch:TerminateJob is only the backstop."""
    if terminate_only_tagged is None:
        return base
    tag = f"{terminate_only_tagged.key}={terminate_only_tagged.value}"
    return {**base, TERMINATE_ONLY_TAGGED_ENV: tag}
