"""The stack's runtime resources, created on the emulator as the CDK stack creates them in AWS.

moto's CloudFormation cannot deploy the CDK template, so the same resources are made by API:
the request queue with its DLQ and redrive policy, the EventBridge rule with the stack's
pattern targeting the queue, the terminator's log group and its request ledger table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    DLQ_URL_ENV,
    LEDGER_TABLE_ENV,
    MAX_RECEIVE_COUNT_ENV,
    REGION_ENV,
    request_event_pattern,
)

REQUEST_RULE_NAME = "batch-terminator-requests"
TERMINATOR_LOG_GROUP = "/aws/lambda/batch-terminator-terminator"
LOG_STREAM = "emulated"
# As infra/constructs/intake.py and infra/constructs/ledger.py define them; infra needs the CDK,
# which the CLI does not install, so the values are repeated here (tests/infra compares them).
REQUEST_RETENTION_SECONDS = 4 * 24 * 3600
LEDGER_PARTITION_KEY = "pk"
LEDGER_TTL_ATTRIBUTE = "expiresAt"


@dataclass(frozen=True)
class EmulatedDeployment:
    request_queue_url: str
    request_queue_arn: str
    dlq_url: str
    rule_name: str
    terminator_log_group: str
    ledger_table: str
    max_receive_count: int = 3
    account_id: str = "123456789012"
    region: str = "us-east-1"

    def function_environment(self) -> dict[str, str]:
        """The environment the stack gives the functions (infra/constructs/terminator.py)."""
        return {
            DLQ_URL_ENV: self.dlq_url,
            "REQUEST_QUEUE_URL": self.request_queue_url,
            LEDGER_TABLE_ENV: self.ledger_table,
            MAX_RECEIVE_COUNT_ENV: str(self.max_receive_count),
            ACCOUNT_ID_ENV: self.account_id,
            REGION_ENV: self.region,
        }

    def outputs(self) -> dict[str, str]:
        """The stack outputs the CLI reads, as DescribeStacks would return them."""
        return {
            "RequestQueueUrl": self.request_queue_url,
            "RequestQueueArn": self.request_queue_arn,
            "DeadLetterQueueUrl": self.dlq_url,
            "TerminatorLogGroupName": self.terminator_log_group,
            "LedgerTableName": self.ledger_table,
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
            "MessageRetentionPeriod": str(REQUEST_RETENTION_SECONDS),
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
    ledger_table = _create_ledger(session, f"{prefix}-ledger")
    return EmulatedDeployment(
        request_queue_url=queue_url,
        request_queue_arn=queue_arn,
        dlq_url=dlq_url,
        rule_name=REQUEST_RULE_NAME,
        terminator_log_group=TERMINATOR_LOG_GROUP,
        ledger_table=ledger_table,
        max_receive_count=max_receive_count,
        account_id=str(session.client("sts").get_caller_identity()["Account"]),
        region=str(session.region_name),
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


def _create_ledger(session: Any, table_name: str) -> str:
    """The request ledger: on demand, string key `pk`, items expiring at `expiresAt`."""
    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": LEDGER_PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    dynamodb.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": LEDGER_TTL_ATTRIBUTE},
    )
    return table_name


def _arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )
