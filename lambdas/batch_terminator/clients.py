"""boto3 clients, configured once per container."""

from __future__ import annotations

from typing import Any, Final

import boto3
from botocore.config import Config

# Standard retry mode backs off on 429 TooManyRequestsException; AWS_MAX_ATTEMPTS tunes attempts.
# Short timeouts bound one call's worst case (3 attempts of 3 s connect + 10 s read), so the
# terminator can stop starting calls in time (CALL_WORST_CASE_SECONDS).
_CONFIG: Final = Config(
    retries={"mode": "standard"},
    connect_timeout=3,
    read_timeout=10,
    user_agent_extra="batch-terminator",
)
CALL_WORST_CASE_SECONDS: Final = 3 * (3 + 10) + 6


def batch_client() -> Any:
    return boto3.client("batch", config=_CONFIG)


def sqs_client() -> Any:
    return boto3.client("sqs", config=_CONFIG)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=_CONFIG)


def scheduler_client() -> Any:
    return boto3.client("scheduler", config=_CONFIG)
