"""Names and limits of the public contract, in one place for the runtime, the CLI and the stack."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

EVENT_SOURCE: Final = "batch-terminator"
REQUEST_DETAIL_TYPE: Final = "Batch Job Termination Request"
# A 12-digit AWS account id, and a region name (us-east-1, us-gov-west-1, cn-north-1,
# us-isob-east-1, eusc-de-east-1): ASCII only, matched whole (`re.fullmatch`).
ACCOUNT_ID_PATTERN: Final = r"[0-9]{12}"
REGION_PATTERN: Final = r"[a-z]{2,5}(?:-[a-z]+)+-[0-9]{1,2}"
# Every audit record is also published on the member account's default bus as this event
# (detail: the audit record's keys plus `account` and `region`), for the fleet's central audit.
DECISION_DETAIL_TYPE: Final = "Batch Job Termination Decision"
# The audit account's bus that members forward decisions to, and the log group that stores them.
FLEET_BUS_NAME: Final = "batch-terminator-fleet"
FLEET_LOG_GROUP: Final = "/batch-terminator/fleet/decisions"
# Environment variable: publish decision events (`true`) or not (`false`, the stack's opt-out).
PUBLISH_DECISIONS_ENV: Final = "PUBLISH_DECISIONS"
METRICS_NAMESPACE: Final = "BatchTerminator"
SERVICE_NAME: Final = "batch-terminator"

DEFAULT_PROTECT_TAG: Final = "batch-terminator:protect"
MAX_RUNTIME_TAG: Final = "batch-terminator:max-runtime"

# TerminateJob's own limit on `reason`.
MAX_REASON_LENGTH: Final = 1024
# Batch API batch sizes.
DESCRIBE_JOBS_MAX_IDS: Final = 100
TERMINATE_JOBS_MAX_IDS: Final = 50
LIST_JOBS_MAX_RESULTS: Final = 1000
DESCRIBE_JOB_QUEUES_MAX: Final = 100
# A by-id request names at most this many jobs (one DescribeJobs call); the CLI splits larger sets.
MAX_JOB_IDS_PER_REQUEST: Final = 100

# SQS message attribute that internal senders use to say which path a request came from.
SOURCE_ATTRIBUTE: Final = "source"
# DLQ message attributes written when a request is rejected, or fails on its last delivery.
ERROR_ATTRIBUTE: Final = "error"
# The request ledger's key of a request moved to the DLQ: a redrive resumes from it.
LEDGER_KEY_ATTRIBUTE: Final = "ledgerKey"

# The terminator's environment, set by the stack (infra/constructs/terminator.py).
DLQ_URL_ENV: Final = "DLQ_URL"
LEDGER_TABLE_ENV: Final = "LEDGER_TABLE"
LEDGER_TTL_SECONDS_ENV: Final = "LEDGER_TTL_SECONDS"
MAX_RECEIVE_COUNT_ENV: Final = "MAX_RECEIVE_COUNT"
ACCOUNT_ID_ENV: Final = "ACCOUNT_ID"
# `key=value` (the stack's terminateOnlyTagged): only jobs carrying this tag are terminated;
# others are skipped. Absent or empty: no such rule. The IAM condition is only its backstop.
TERMINATE_ONLY_TAGGED_ENV: Final = "TERMINATE_ONLY_TAGGED"
# The deadline and brake functions' environment (infra/constructs/deadlines.py, brake.py).
REQUEST_QUEUE_URL_ENV: Final = "REQUEST_QUEUE_URL"
REQUEST_QUEUE_ARN_ENV: Final = "REQUEST_QUEUE_ARN"
SCHEDULE_GROUP_ENV: Final = "SCHEDULE_GROUP"
SCHEDULER_ROLE_ARN_ENV: Final = "SCHEDULER_ROLE_ARN"
SCHEDULE_DLQ_ARN_ENV: Final = "SCHEDULE_DLQ_ARN"
# Lambda sets AWS_REGION for every function.
REGION_ENV: Final = "AWS_REGION"
# The request queue's redrive maxReceiveCount when the environment does not say (cdk.json's).
DEFAULT_MAX_RECEIVE_COUNT: Final = 3
# The request queue and its DLQ both keep SQS's maximum message size, 1 MiB (MaximumMessageSize:
# 1,024 bytes to 1,048,576 bytes, CreateQueue), so a message parked in the DLQ always fits back
# into the request queue when it is redriven. Message attributes count towards a message's size
# ("All components of a message attribute are included in the message size restriction", SQS
# developer guide): the terminator parks a message only when its body and attributes fit the DLQ,
# and leaves the others to SQS's own redrive (which keeps the message as it was sent).
REQUEST_MAX_MESSAGE_BYTES: Final = 1_048_576
DLQ_MAX_MESSAGE_BYTES: Final = 1_048_576
# A request body longer than this (UTF-8 bytes) is rejected before it is parsed: a valid request
# (at most 100 job ids and a 1,024-character reason) is a few KB.
MAX_REQUEST_BODY_BYTES: Final = 262_144
# SQS: "Each message can have up to 10 metadata attributes" (SendMessage, MessageAttributes).
MAX_MESSAGE_ATTRIBUTES: Final = 10


# Events the product consumes (../shared/events holds their shapes).
BATCH_EVENT_SOURCE: Final = "aws.batch"
JOB_STATE_CHANGE: Final = "Batch Job State Change"
JOB_QUEUE_BLOCKED: Final = "Batch Job Queue Blocked"
CLOUDWATCH_EVENT_SOURCE: Final = "aws.cloudwatch"
ALARM_STATE_CHANGE: Final = "CloudWatch Alarm State Change"
# The universal target of EventBridge Scheduler that calls SQS SendMessage with any parameters
# (message attributes included): EventBridge Scheduler user guide, "Using universal targets".
SCHEDULER_SQS_SEND_TARGET: Final = "arn:aws:scheduler:::aws-sdk:sqs:sendMessage"
# Names of the handlers the stack deploys (module.function, under lambdas/).
TERMINATOR_HANDLER: Final = "batch_terminator.handlers.terminator.handler"
SWEEPER_HANDLER: Final = "batch_terminator.handlers.sweeper.handler"
DEADLINE_HANDLER: Final = "batch_terminator.handlers.deadline.handler"
BRAKE_HANDLER: Final = "batch_terminator.handlers.brake.handler"


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


ACTIVE_STATUSES: Final = (
    JobStatus.SUBMITTED,
    JobStatus.PENDING,
    JobStatus.RUNNABLE,
    JobStatus.STARTING,
    JobStatus.RUNNING,
)
FINAL_STATUSES: Final = (JobStatus.SUCCEEDED, JobStatus.FAILED)


class Source(StrEnum):
    """Which path a termination decision came from (audit field `source`)."""

    REQUEST = "request"
    SWEEP = "sweep"
    DEADLINE = "deadline"
    ALARM = "alarm"
    BLOCKED = "blocked"


class Outcome(StrEnum):
    TERMINATED = "terminated"
    SKIPPED = "skipped"
    FAILED = "failed"
    REJECTED = "rejected"


def request_event_pattern() -> dict[str, Any]:
    """The EventBridge pattern of termination requests: used by the stack's rule and the demo."""
    return {"source": [EVENT_SOURCE], "detail-type": [REQUEST_DETAIL_TYPE]}


def decision_event_pattern() -> dict[str, Any]:
    """The EventBridge pattern of decision events: the member's forwarding rule and the central
    bus's rule to its log group."""
    return {"source": [EVENT_SOURCE], "detail-type": [DECISION_DETAIL_TYPE]}
