"""Every command refuses an argument that is not UTF-8 text (a shell argument whose bytes are
not UTF-8 reaches Python as lone surrogates) as a usage error, in one line, before any call."""

from __future__ import annotations

import re
import uuid

import pytest
from typer.testing import CliRunner

from batch_terminator_cli.main import app

runner = CliRunner()
NOT_UTF8 = "caf\udce9"  # b"caf\xe9", Latin-1, as Python decodes it from argv (PEP 383)


def text_options() -> list[tuple[str, str, list[str]]]:
    """(command, option, the command's required arguments) for every option whose help says it
    takes text (`<str>` or `<list[str]>`), read from each command's --help."""
    found = []
    for info in app.registered_commands:
        name = info.name or info.callback.__name__  # type: ignore[union-attr]
        shown = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"}).output
        required = (
            [str(uuid.UUID(int=1))] if re.search(r"\{\w+\}\.\.\.", shown.splitlines()[0]) else []
        )
        found += [
            (name, option, required)
            for option in re.findall(
                r"^\s+(--[a-z-]+)(?:,\s*-\w)? <(?:list\[)?str\]?>", shown, re.M
            )
        ]
    return found


OPTIONS = text_options()


def test_the_walk_finds_the_text_options_people_type() -> None:
    names = {(command, option) for command, option, _ in OPTIONS}
    assert {("pause", "--reason"), ("request", "--reason"), ("audit", "--policy")} <= names


@pytest.mark.parametrize(("command", "option", "required"), OPTIONS)
def test_an_option_that_is_not_utf8_is_a_usage_error(
    command: str, option: str, required: list[str]
) -> None:
    # request's one required option, unless it is the one under test.
    extra = ["--reason", "r"] if command == "request" and option != "--reason" else []
    result = runner.invoke(
        app,
        [command, *required, *extra, option, NOT_UTF8, "--endpoint-url", "http://127.0.0.1:9"],
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "us-east-1"},
    )
    assert "Traceback" not in result.output
    if result.exit_code == 2 and "No such option: --endpoint-url" in result.output:
        pytest.skip(f"{command} takes no --endpoint-url")
    assert result.exit_code == 2, result.output
    # Refused as not UTF-8, or by the option's own check (a stack name, a duration, a URL):
    # either way one error line that names the option.
    lines = [line for line in result.output.splitlines() if "rror" in line]
    assert len(lines) == 1, result.output
    assert option in lines[0] or "is not UTF-8 text" in lines[0], result.output
