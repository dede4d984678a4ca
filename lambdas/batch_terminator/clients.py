"""boto3 clients, configured once per container."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off on 429 TooManyRequestsException; AWS_MAX_ATTEMPTS tunes attempts.
_CONFIG = Config(retries={"mode": "standard"}, user_agent_extra="batch-terminator")


def batch_client() -> Any:
    return boto3.client("batch", config=_CONFIG)


def sqs_client() -> Any:
    return boto3.client("sqs", config=_CONFIG)
