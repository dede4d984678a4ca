"""AWS clients, configured once per container.

The clients come from botocore's session directly: boto3 adds resources and S3 transfers, which
no function uses, and importing them costs every cold start about an eighth of `import boto3`.
Credentials, region and endpoint resolve exactly as for `boto3.client` (the environment, then
the shared config files): boto3's clients are botocore's.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Final

from botocore.config import Config
from botocore.session import Session, get_session

# Standard retry mode backs off on 429 TooManyRequestsException; AWS_MAX_ATTEMPTS tunes attempts.
# TerminateJob(s) are repeated only when Batch provably did not act (batch_api.py
# `guard_terminate_retries`, installed by BatchApi on the client it is given).
# Short timeouts bound one call's worst case (3 attempts of 3 s connect + 10 s read), so the
# terminator can stop starting calls in time (CALL_WORST_CASE_SECONDS).
_CONFIG: Final = Config(
    retries={"mode": "standard"},
    connect_timeout=3,
    read_timeout=10,
    user_agent_extra="batch-terminator",
)
CALL_WORST_CASE_SECONDS: Final = 3 * (3 + 10) + 6


@cache
def _session(environment: tuple[tuple[str, str], ...] = ()) -> Session:
    """One session per container, as boto3's default session: its loaders and credentials are
    shared by every client the function creates. `environment`: the AWS_* variables it was
    made under (`_aws_environment`), the cache key.

    A session reads the environment once (AWS_DATA_PATH when its loader is first made, the
    credentials and profile when first resolved). In Lambda the environment is set before the
    first client and never changes, so this is one session per process. Where one process
    plays several containers in turn (the emulator's sandboxes, each with its own environment,
    such as an older Batch model through AWS_DATA_PATH), a changed environment gets a session
    of its own, as a new container would."""
    del environment
    return get_session()


def _aws_environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


def batch_client() -> Any:
    return _session(_aws_environment()).create_client("batch", config=_CONFIG)


def sqs_client() -> Any:
    return _session(_aws_environment()).create_client("sqs", config=_CONFIG)


def dynamodb_client() -> Any:
    return _session(_aws_environment()).create_client("dynamodb", config=_CONFIG)


def scheduler_client() -> Any:
    return _session(_aws_environment()).create_client("scheduler", config=_CONFIG)
