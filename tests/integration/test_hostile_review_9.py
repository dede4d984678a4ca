"""Hostile review, through the real terminator on the emulator: a request body whose JSON carries
a lone surrogate (`\\ud800`, a valid JSON escape SQS accepts as plain ASCII text) is rejected and
parked, its batch goes on, and the CLI refuses a reason that is not UTF-8 (the validator once
took such text, and the ledger key's hash then failed the whole batch)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.main import app
from batch_terminator_cli.sandbox import Sandbox, sandbox
from tests.integration.test_hostile_inputs import POLICIES, fresh, stopped


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with sandbox(PoliciesFile.model_validate(POLICIES)) as running:
        yield running


def assert_rejected_and_the_batch_goes_on(box: Sandbox, bad_body: str, named: str) -> None:
    """The bad body is parked with its error and a `rejected` line, the job it names is not
    stopped, and the valid request in the same batch terminates its job."""
    other = box.world.job("fine", "gpu-training", "RUNNING")
    bad = box.send(bad_body)
    good = box.send({"jobId": other, "reason": "fine"})

    invocations = box.run_terminator(max_invocations=5)

    assert all(not i.failed_ids for i in invocations), "a bad body failed its batch"
    assert other in stopped(box), "the valid request in the same batch was not processed"
    assert named not in stopped(box), "a body the schema refuses stopped a job"
    parked = [
        m
        for m in box.dead_letters()
        if m["MessageAttributes"]["originalMessageId"]["StringValue"] == bad
    ]
    assert len(parked) == 1, "the bad body is not in the DLQ exactly once"
    assert parked[0]["Body"] == bad_body
    error = parked[0]["MessageAttributes"]["error"]["StringValue"]
    assert re.search("reason", error), error
    assert [a["outcome"] for a in box.audit if a["message_id"] == bad] == ["rejected"]
    assert good not in {m["MessageAttributes"]["originalMessageId"]["StringValue"] for m in parked}


def test_a_selector_with_a_lone_surrogate_never_fails_its_batch(box: Sandbox) -> None:
    fresh(box)
    target = box.world.job("etl-surrogate", "gpu-training", "RUNNING")
    body = (
        '{"selector": {"jobQueues": ["gpu-training"], "jobNamePrefix": "etl-surrogate"}, '
        '"reason": "stop \\ud800", "limit": 1}'
    )
    assert_rejected_and_the_batch_goes_on(box, body, target)


def test_a_by_id_request_with_a_lone_surrogate_is_rejected(box: Sandbox) -> None:
    fresh(box)
    target = box.world.job("by-id-surrogate", "gpu-training", "RUNNING")
    body = f'{{"jobId": "{target}", "reason": "stop \\ud800"}}'
    assert_rejected_and_the_batch_goes_on(box, body, target)


def test_the_same_batch_without_the_surrogate_goes_through(box: Sandbox) -> None:
    """The check above can pass: a body the schema refuses for another reason is parked and the
    batch goes on (the same assertions, a control character instead of the surrogate)."""
    fresh(box)
    target = box.world.job("control-char", "gpu-training", "RUNNING")
    body = f'{{"jobId": "{target}", "reason": "stop \\u0007"}}'
    assert_rejected_and_the_batch_goes_on(box, body, target)


# A shell argument that is not UTF-8 (a Latin-1 terminal's "é", byte 0xE9) reaches Python as the
# lone surrogate U+DCE9 (PEP 383, surrogateescape).
NOT_UTF8_REASON = "arr\u00eat \udce9"
CLI_JOB = "0f2d1f8e-0000-4000-8000-000000000000"


def request_command(reason: str) -> Any:
    return CliRunner().invoke(
        app,
        [
            "request",
            CLI_JOB,
            "--reason",
            reason,
            "--queue-url",
            "http://127.0.0.1:1/q",
            "--region",
            "us-east-1",
            # Nothing may reach a real account if validation lets the request through.
            "--endpoint-url",
            "http://127.0.0.1:1",
        ],
    )


def test_the_request_command_refuses_a_reason_that_is_not_utf8() -> None:
    result = request_command(NOT_UTF8_REASON)
    assert result.exit_code == 2, result.output
    assert "--reason" in result.output
    assert "is not UTF-8 text" in result.output


def test_the_request_command_refuses_a_control_character_before_sending() -> None:
    """The check above can pass: a reason the schema refuses for another reason is refused
    before anything is sent (exit 2, one `invalid request` line)."""
    result = request_command("stop \x07")
    assert result.exit_code == 2, result.output
    assert "invalid request" in result.output
