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

# The ledger (DynamoDB) is written after the last Batch call, in the time the terminator keeps
# for that (handlers/terminator.py RESERVE_MILLIS: one Batch call's worst case plus 10 s). So one
# DynamoDB request must fit in it: at most 2 attempts (`total_max_attempts`, which includes the
# first; AWS_MAX_ATTEMPTS may lower it), 1 s to connect and 2 s to read each (DynamoDB answers
# in milliseconds), and one backoff between them: botocore's standard mode waits rand(0, 1) *
# 1 s after a throttle, 25 ms after any other error (botocore/retries/standard.py
# ExponentialBackoff; "Retries", boto3 guide; "Config", botocore reference: connect_timeout,
# read_timeout, retries).
_LEDGER_ATTEMPTS: Final = 2
_LEDGER_CONNECT_SECONDS: Final = 1
_LEDGER_READ_SECONDS: Final = 2
LEDGER_CALL_WORST_CASE_SECONDS: Final = (
    _LEDGER_ATTEMPTS * (_LEDGER_CONNECT_SECONDS + _LEDGER_READ_SECONDS) + 1
)


def _ledger_attempts() -> int:
    """`_LEDGER_ATTEMPTS`, or AWS_MAX_ATTEMPTS when that is lower (a Config's attempts
    override the environment's, so the lower one is taken here)."""
    try:
        configured = int(os.environ.get("AWS_MAX_ATTEMPTS") or _LEDGER_ATTEMPTS)
    except ValueError:
        configured = _LEDGER_ATTEMPTS
    return max(1, min(configured, _LEDGER_ATTEMPTS))


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


def _short_config() -> Config:
    """Requests bounded by LEDGER_CALL_WORST_CASE_SECONDS each: for services that answer in
    milliseconds and are called after the last Batch call (the ledger, decision events)."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": _ledger_attempts()},
        connect_timeout=_LEDGER_CONNECT_SECONDS,
        read_timeout=_LEDGER_READ_SECONDS,
        user_agent_extra="batch-terminator",
    )


def dynamodb_client() -> Any:
    """The ledger's client: its requests bounded by LEDGER_CALL_WORST_CASE_SECONDS."""
    return _session(_aws_environment()).create_client("dynamodb", config=_short_config())


def events_client() -> Any:
    """EventBridge, for decision events: its requests bounded by LEDGER_CALL_WORST_CASE_SECONDS."""
    return _session(_aws_environment()).create_client("events", config=_short_config())


def scheduler_client() -> Any:
    return _session(_aws_environment()).create_client("scheduler", config=_CONFIG)
