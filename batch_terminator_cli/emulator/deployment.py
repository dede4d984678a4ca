"""The stack's runtime resources, created on the emulator as the CDK stack creates them in AWS.

moto's CloudFormation cannot deploy the CDK template, so the same resources are made by API:
the request queue with its DLQ and redrive policy, and the EventBridge rule with the stack's
pattern targeting the queue.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from batch_terminator.contract import request_event_pattern

REQUEST_RULE_NAME = "batch-terminator-requests"
TERMINATOR_LOG_GROUP = "/aws/lambda/batch-terminator-terminator"
LOG_STREAM = "emulated"


@dataclass(frozen=True)
class EmulatedDeployment:
    request_queue_url: str
    request_queue_arn: str
    dlq_url: str
    rule_name: str
    terminator_log_group: str

    def outputs(self) -> dict[str, str]:
        """The stack outputs the CLI reads, as DescribeStacks would return them."""
        return {
            "RequestQueueUrl": self.request_queue_url,
            "RequestQueueArn": self.request_queue_arn,
            "DeadLetterQueueUrl": self.dlq_url,
            "TerminatorLogGroupName": self.terminator_log_group,
        }


def deploy(
    session: Any, *, max_receive_count: int = 3, prefix: str = "batch-terminator"
) -> EmulatedDeployment:
    sqs = session.client("sqs")
    events = session.client("events")
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq")["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-requests",
        Attributes={
            "VisibilityTimeout": "720",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = _arn(sqs, queue_url)
    events.put_rule(
        Name=REQUEST_RULE_NAME, EventPattern=json.dumps(request_event_pattern()), State="ENABLED"
    )
    events.put_targets(Rule=REQUEST_RULE_NAME, Targets=[{"Id": "request-queue", "Arn": queue_arn}])
    logs = session.client("logs")
    logs.create_log_group(logGroupName=TERMINATOR_LOG_GROUP)
    logs.create_log_stream(logGroupName=TERMINATOR_LOG_GROUP, logStreamName=LOG_STREAM)
    return EmulatedDeployment(
        queue_url, queue_arn, dlq_url, REQUEST_RULE_NAME, TERMINATOR_LOG_GROUP
    )


def ship_logs(session: Any, log_group: str, lines: list[dict[str, Any]]) -> None:
    """Put a function's JSON log lines into its log group, as Lambda does with what it prints."""
    if not lines:
        return
    now = int(time.time() * 1000)
    session.client("logs").put_log_events(
        logGroupName=log_group,
        logStreamName=LOG_STREAM,
        logEvents=[{"timestamp": now, "message": json.dumps(line)} for line in lines],
    )


def _arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )
