"""What the CLI tests share: a runner, the one-line-error check, and the stack's outputs published
on the emulator as CloudFormation DescribeStacks gives them to the CLI."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from batch_terminator_cli.main import app

runner = CliRunner()
REGION = ["--region", "us-east-1"]
STACK = "BatchTerminator"


def run(*arguments: str) -> Any:
    return runner.invoke(app, [*arguments])


def clean(result: Any) -> None:
    """No traceback, no internal error: whatever happened was reported as one line."""
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
