"""The stack's runtime resources, created on the emulator as the CDK stack creates them in AWS.

moto's CloudFormation cannot deploy the CDK template, so the same resources are made by API:
the request queue with its DLQ and redrive policy, the EventBridge rule with the stack's
pattern targeting the queue, the terminator's log group and its request ledger table; and for
the event triggers (infra/constructs/deadlines.py): the events queue with its DLQ, fed by the
Batch Job State Change and Batch Job Queue Blocked rules with the policies' patterns; the
schedule group, the schedules' DLQ and the role schedules run as. The stack's alarm rule targets
the brake function; here it targets an "alarm inbox" queue, which the sandbox pumps into the
brake handler.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    DLQ_MAX_MESSAGE_BYTES,
    DLQ_URL_ENV,
    LEDGER_TABLE_ENV,
    MAX_RECEIVE_COUNT_ENV,
    REGION_ENV,
    REQUEST_MAX_MESSAGE_BYTES,
    REQUEST_QUEUE_ARN_ENV,
    REQUEST_QUEUE_URL_ENV,
    SCHEDULE_DLQ_ARN_ENV,
    SCHEDULE_GROUP_ENV,
    SCHEDULER_ROLE_ARN_ENV,
    request_event_pattern,
)
from batch_terminator.logic.event_patterns import (
    alarm_state_change_pattern,
    job_queue_blocked_pattern,
    job_state_change_pattern,
)
from batch_terminator.models.policies import PoliciesFile

REQUEST_RULE_NAME = "batch-terminator-requests"
JOB_STATE_CHANGE_RULE_NAME = "batch-terminator-job-state-change"
JOB_QUEUE_BLOCKED_RULE_NAME = "batch-terminator-job-queue-blocked"
ALARM_RULE_NAME = "batch-terminator-alarm-state-change"
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
TERMINATOR_LOG_GROUP = "/aws/lambda/batch-terminator-terminator"
LOG_STREAM = "emulated"
# As infra/constructs/intake.py and infra/constructs/ledger.py define them; infra needs the CDK,
# which the CLI does not install, so the values are repeated here (tests/infra compares them).
REQUEST_RETENTION_SECONDS = 4 * 24 * 3600
LEDGER_PARTITION_KEY = "pk"
LEDGER_TTL_ATTRIBUTE = "expiresAt"
# infra/constructs/deadlines.py: six times the deadline function's 60 s timeout.
EVENTS_VISIBILITY_TIMEOUT_SECONDS = 6 * 60
# infra/constructs/intake.py: what a rule's target retries before its DLQ.
RULE_RETRY_ATTEMPTS = 24
RULE_MAX_EVENT_AGE_SECONDS = 24 * 3600


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
    # The event triggers (infra/constructs/deadlines.py).
    events_queue_url: str = ""
    events_queue_arn: str = ""
    events_dlq_url: str = ""
    job_state_change_rule: str = JOB_STATE_CHANGE_RULE_NAME
    job_queue_blocked_rule: str = JOB_QUEUE_BLOCKED_RULE_NAME
    # None when no policy names an alarm: the stack then has no alarm rule either.
    alarm_rule: str | None = None
    alarm_inbox_url: str | None = None
    schedule_group: str = ""
    schedule_dlq_url: str = ""
    schedule_dlq_arn: str = ""
    scheduler_role_arn: str = ""

    def function_environment(self) -> dict[str, str]:
        """The environment the stack gives the functions (infra/constructs/terminator.py,
        deadlines.py)."""
        return {
            DLQ_URL_ENV: self.dlq_url,
            REQUEST_QUEUE_URL_ENV: self.request_queue_url,
            REQUEST_QUEUE_ARN_ENV: self.request_queue_arn,
            LEDGER_TABLE_ENV: self.ledger_table,
            MAX_RECEIVE_COUNT_ENV: str(self.max_receive_count),
            ACCOUNT_ID_ENV: self.account_id,
            REGION_ENV: self.region,
            SCHEDULE_GROUP_ENV: self.schedule_group,
            SCHEDULER_ROLE_ARN_ENV: self.scheduler_role_arn,
            SCHEDULE_DLQ_ARN_ENV: self.schedule_dlq_arn,
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
    session: Any,
    policies: PoliciesFile | None = None,
    *,
    max_receive_count: int = 3,
    prefix: str = "batch-terminator",
) -> EmulatedDeployment:
    """Create the stack's runtime resources; the event rules' patterns come from `policies`
    (a file with no policies when not given)."""
    policies = policies or PoliciesFile.model_validate({"version": 1, "policies": []})
    sqs = session.client("sqs")
    events = session.client("events")
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-dlq",
        Attributes={"MaximumMessageSize": str(DLQ_MAX_MESSAGE_BYTES)},
    )["QueueUrl"]
    dlq_arn = _arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-requests",
        Attributes={
            "VisibilityTimeout": "720",
            "MessageRetentionPeriod": str(REQUEST_RETENTION_SECONDS),
            "MaximumMessageSize": str(REQUEST_MAX_MESSAGE_BYTES),
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
    triggers = _deploy_triggers(session, policies, prefix, max_receive_count, queue_arn)
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
        **triggers,
    )


def _deploy_triggers(
    session: Any, policies: PoliciesFile, prefix: str, max_receive_count: int, request_arn: str
) -> dict[str, Any]:
    """The events queue and its rules, the alarm inbox and its rule, the Scheduler pieces."""
    sqs = session.client("sqs")
    events_dlq_url = sqs.create_queue(QueueName=f"{prefix}-events-dlq")["QueueUrl"]
    events_dlq_arn = _arn(sqs, events_dlq_url)
    events_url = sqs.create_queue(
        QueueName=f"{prefix}-events",
        Attributes={
            "VisibilityTimeout": str(EVENTS_VISIBILITY_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": events_dlq_arn, "maxReceiveCount": max_receive_count}
            ),
        },
    )["QueueUrl"]
    events_arn = _arn(sqs, events_url)
    target = {
        "Id": "events-queue",
        "Arn": events_arn,
        "DeadLetterConfig": {"Arn": events_dlq_arn},
        "RetryPolicy": {
            "MaximumRetryAttempts": RULE_RETRY_ATTEMPTS,
            "MaximumEventAgeInSeconds": RULE_MAX_EVENT_AGE_SECONDS,
        },
    }
    _rule(session, JOB_STATE_CHANGE_RULE_NAME, job_state_change_pattern(policies), target)
    _rule(session, JOB_QUEUE_BLOCKED_RULE_NAME, job_queue_blocked_pattern(policies), target)

    alarm_rule: str | None = None
    alarm_inbox_url: str | None = None
    alarm_pattern = alarm_state_change_pattern(policies)
    if alarm_pattern is not None:
        alarm_inbox_url = sqs.create_queue(QueueName=f"{prefix}-alarm-inbox")["QueueUrl"]
        alarm_rule = ALARM_RULE_NAME
        inbox = {"Id": "brake", "Arn": _arn(sqs, alarm_inbox_url)}
        _rule(session, alarm_rule, alarm_pattern, inbox)

    group = session.client("scheduler").create_schedule_group(Name=f"{prefix}-deadlines")
    schedule_dlq_url = sqs.create_queue(QueueName=f"{prefix}-schedules-dlq")["QueueUrl"]
    schedule_dlq_arn = _arn(sqs, schedule_dlq_url)
    role = session.client("iam").create_role(
        # IAM is global: one role per region's deployment (the CDK names each stack's its own).
        RoleName=f"{prefix}-scheduler-{session.region_name}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": SCHEDULER_SERVICE},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]
    session.client("iam").put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="Permissions",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sqs:SendMessage",
                        "Resource": [request_arn, schedule_dlq_arn],
                    }
                ],
            }
        ),
    )
    return {
        "events_queue_url": events_url,
        "events_queue_arn": events_arn,
        "events_dlq_url": events_dlq_url,
        "alarm_rule": alarm_rule,
        "alarm_inbox_url": alarm_inbox_url,
        "schedule_group": str(group["ScheduleGroupArn"]).rsplit("/", 1)[-1],
        "schedule_dlq_url": schedule_dlq_url,
        "schedule_dlq_arn": schedule_dlq_arn,
        "scheduler_role_arn": str(role["Arn"]),
    }


def _rule(session: Any, name: str, pattern: dict[str, Any], target: dict[str, Any]) -> None:
    events = session.client("events")
    events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=name, Targets=[target])


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
