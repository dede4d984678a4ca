"""Ledger: the terminator's request ledger, what it has done for each request message so far.

One item per request, key `message#<messageId>` (a request redriven from the DLQ carries its
key in the message attribute `ledgerKey`). For a selector request it holds the jobs the selector
expanded to, so a redelivered or redriven selector is never expanded again and its limit holds;
for every request it holds the jobs already settled, so a redelivery acts only on what is still
open. Items expire by TTL once no delivery or redrive of their request can arrive any more: the
ledger is transient delivery state, and the audit trail is the log group.

The same table keeps two more kinds of short-lived item, each written by one function: the
terminator's record of each termination it made (`termination#<jobId>`), which the deadline
function marks confirmed when the job's FAILED event arrives, and the brake's claim of each
alarm transition (a conditional put), so the same transition brakes once.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.constructs.intake import DLQ_RETENTION, REQUEST_RETENTION
from infra.nag import acknowledge

PARTITION_KEY: Final = "pk"
TTL_ATTRIBUTE: Final = "expiresAt"  # epoch seconds, as DynamoDB TTL reads it
# A message can be delivered until the request queue's retention runs out, then kept in the DLQ
# for its retention and redriven: an item lives through both, and one more day.
LEDGER_TTL: Final = REQUEST_RETENTION.plus(DLQ_RETENTION).plus(Duration.days(1))

NO_POINT_IN_TIME_RECOVERY: Final = (
    "The ledger holds only transient delivery state of request messages (jobs a selector "
    "expanded to, jobs already settled), termination records awaiting confirmation and alarm "
    "claims, and each item expires by TTL once its request can no longer be delivered or "
    "redriven. A point-in-time restore creates a new table the function does "
    "not read, holding state of deliveries that have moved on, so it has no use; what was "
    "terminated, and why, is recorded in the terminator's audit log group."
)


def ledger_ttl_seconds() -> int:
    return int(LEDGER_TTL.to_seconds())


class Ledger(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            # An AWS-owned key: nothing to grant, no KMS calls on the function's path.
            encryption=dynamodb.TableEncryption.DEFAULT,
            # Nothing in it outlives its messages; deleting the stack deletes it.
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(self.table, "AwsSolutions-DDB3", NO_POINT_IN_TIME_RECOVERY)
