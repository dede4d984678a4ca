"""The AWS CLI's conventions, shared by every command.

- Options: `--profile`, `--region`, `--endpoint-url`, `--output json|table|text`, `-h`/`--help`.
- Exit codes: 0 done, 1 an AWS or file error, 2 a usage error (click's own, for bad options).
- stdout carries the command's output alone (what a script parses); progress, notes and errors
  go to stderr.
- An error is one clear line, never a traceback: `cli_errors` turns the errors boto3 and the
  file system raise into that line and the exit code.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar
from urllib.parse import urlparse

import click
import typer
from rich.console import Console
from typer.exceptions import TyperException

from batch_terminator.contract import REGION_PATTERN
from batch_terminator_cli.output import labelled, say

P = ParamSpec("P")
R = TypeVar("R")

# Tables fit the terminal; where stdout is not one (CI logs, pipes), rich uses COLUMNS or 80.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_REGION = re.compile(REGION_PATTERN)
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
DEFAULT_STACK = "BatchTerminator"
# The AWS CLI's exit status for Ctrl-C (128 + SIGINT).
INTERRUPTED = 130
USAGE = 2


class Output(StrEnum):
    """`--output`: as the AWS CLI's."""

    TABLE = "table"
    JSON = "json"
    TEXT = "text"


ProfileOption = Annotated[
    str | None,
    typer.Option(
        help="AWS profile (default: AWS_PROFILE, else the default profile).", metavar="NAME"
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION, else the profile's).",
        metavar="REGION",
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(help="AWS endpoint, e.g. the one `batch-terminator local` serves.", metavar="URL"),
]
OutputOption = Annotated[
    Output, typer.Option("--output", help="table, json or text.", case_sensitive=False)
]
# CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128 (or its ARN).
_STACK = re.compile(
    r"[A-Za-z][-A-Za-z0-9]{0,127}|arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:\d{12}:stack/[-A-Za-z0-9]+/[-a-f0-9]+"
)


def _stack_name(value: str) -> str:
    if not _STACK.fullmatch(value):
        raise typer.BadParameter(
            f"{value[:80]!r} is not a stack name (a letter, then letters, digits and hyphens)"
        )
    return value


StackOption = Annotated[
    str,
    typer.Option(
        help="Stack whose outputs name the queues, table and log group.", callback=_stack_name
    ),
]

# Resources the stack's outputs name, given by hand instead (an emulator, a renamed stack).
LogGroupOption = Annotated[
    str | None, typer.Option(help="The terminator's log group (instead of reading the stack).")
]
TableOption = Annotated[
    str | None, typer.Option("--table", help="The ledger table (instead of reading the stack).")
]
QueueUrlOption = Annotated[
    str | None, typer.Option(help="The request queue's URL (instead of reading the stack).")
]
DlqUrlOption = Annotated[
    str | None, typer.Option(help="The DLQ's URL (instead of reading the stack).")
]


def aws_session(endpoint_url: str | None, region: str | None, profile: str | None) -> Any:
    """An `Aws` for these options; a malformed endpoint is a usage error (exit 2).

    Raises typer.BadParameter; botocore's ProfileNotFound when the profile is not configured."""
    from batch_terminator_cli.aws import Aws

    if endpoint_url is not None and not _is_url(endpoint_url):
        raise typer.BadParameter(
            f"{endpoint_url!r} is not a URL: give a scheme, a host and a port from 1 to 65535, "
            "e.g. http://127.0.0.1:5050",
            param_hint="--endpoint-url",
        )
    if region is not None and not _REGION.fullmatch(region):
        raise typer.BadParameter(
            f"{region!r} is not a region name (e.g. us-east-1)", param_hint="--region"
        )
    return Aws.connect(endpoint_url, region, profile)


def _is_url(text: str) -> bool:
    try:
        parsed = urlparse(text)
        port = parsed.port  # raises ValueError outside 0-65535
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname) and port != 0


def fail(message: object, code: int = 1, label: str = "error") -> NoReturn:
    """Print one line on stderr and exit with `code`."""
    say(err, labelled(label, message))
    raise typer.Exit(code)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _client_error(error: Any) -> str:
    details = error.response.get("Error", {})
    code = details.get("Code") or "error"
    message = details.get("Message") or ""
    operation = getattr(error, "operation_name", "") or "call"
    return _one_line(Exception(f"{operation} failed ({code}): {message}"))


def error_line(error: BaseException) -> str | None:
    """The one line that says what went wrong, for the errors AWS, the network and the file
    system raise (no credentials, no region, an unknown profile, an endpoint down, an AWS error,
    a stack that is not deployed, a file that cannot be read); None for anything else (a bug)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )
    from botocore.parsers import ResponseParserError

    from batch_terminator_cli.aws import StackOutputMissing

    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials: give --profile, or set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, NoRegionError):
        return "no AWS region: give --region, or set AWS_REGION or the profile's region"
    if isinstance(error, ProfileNotFound):
        return f"{_one_line(error)}: see `aws configure list-profiles`"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach the AWS endpoint: {_one_line(error)}"
    if isinstance(error, ClientError):
        return _client_error(error)
    if isinstance(error, (BotoCoreError, ResponseParserError, StackOutputMissing)):
        return _one_line(error)
    if isinstance(error, (OSError, UnicodeError)):
        return _one_line(error)
    return None


def internal_error_line(error: BaseException) -> str:
    """The line for an error `error_line` does not know: a bug, and how to see its traceback."""
    return (
        f"internal error {type(error).__name__}: {_one_line(error)} "
        "(set BATCH_TERMINATOR_DEBUG=1 for the traceback, and please report it)"
    )


def _not_unicode(value: object) -> str | None:
    """The first text in an argument's value that is not Unicode: a shell argument whose bytes
    are not UTF-8 reaches Python as lone surrogates (PEP 383), which no AWS call, log line or
    hash can carry. Paths are left alone: a file name's bytes are the file system's business."""
    texts = value if isinstance(value, list | tuple) else [value]
    for text in texts:
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return text
    return None


def cli_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command, turning every error it may meet into one line on stderr and an exit code:
    1 for AWS, network and file errors, 130 on Ctrl-C. Usage errors (exit 2) pass through; an
    argument that is not UTF-8 text is one (the command does not run)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for name, value in kwargs.items():
            bad = _not_unicode(value)
            if bad is not None:
                fail(
                    f"--{name.replace('_', '-')}: {bad!a} is not UTF-8 text: check the shell's "
                    "locale (LANG, LC_ALL) or the argument's bytes",
                    code=USAGE,
                )
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException, click.ClickException):
            raise  # exit codes and usage errors (exit 2), printed by typer
        except KeyboardInterrupt:
            say(err, "interrupted")
            raise typer.Exit(INTERRUPTED) from None
        except Exception as error:
            line = error_line(error)
            if line is not None:
                fail(line)
            if os.environ.get("BATCH_TERMINATOR_DEBUG"):
                raise
            fail(internal_error_line(error))

    return run
