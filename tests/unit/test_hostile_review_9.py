"""Hostile review of the pydantic-free request validator, the policies reader and the asset's
bytecode: inputs where the functions' code and the reference schema parted ways, or the build
broke. Each test held a defect found by the review (text that is not Unicode, a policy name with
a trailing newline, date-times outside RFC 3339, a protect tag or policy name the schema refuses,
an interpreter selected by the environment); they fail if it comes back."""

from __future__ import annotations

import os
import stat
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from batch_terminator.contract import Outcome, Source
from batch_terminator.decisions import Member, publish_decisions
from batch_terminator.logic.bodies import InvalidRequest
from batch_terminator.models import policies as runtime
from batch_terminator.models import policies_schema as schema
from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.request import Origin, validate_request
from batch_terminator.models.request_schema import ORIGIN_CONTEXT
from batch_terminator.models.request_schema import TerminationRequest as Schema
from infra.asset import build_lambda_asset

ORIGIN = Origin("123456789012", "us-east-1")
JOB = str(uuid.UUID(int=7))
SELECTOR = {"jobQueues": ["gpu-training"]}


def schema_reads(body: Any) -> str | None:
    """The schema's canonical JSON of `body`, or None when the schema refuses it."""
    try:
        model = Schema.model_validate(body, context={ORIGIN_CONTEXT: ORIGIN})
    except ValidationError:
        return None
    return model.model_dump_json(exclude_none=True)


def validator_reads(body: Any) -> str | None:
    """The validator's canonical JSON (the ledger key's source) of `body`, or None when it
    refuses it. The JSON is hashed as UTF-8: it must be encodable."""
    try:
        request = validate_request(body, ORIGIN)
    except InvalidRequest:
        return None
    text = request.to_json()
    text.encode("utf-8")
    return text


# --- the request validator against the schema ---------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"jobId": JOB, "reason": "stop \ud800"},
        {"jobId": JOB, "reason": "stop", "requestedBy": "alice \udcff"},
        {"selector": {**SELECTOR, "jobNamePrefix": "etl\udfff"}, "reason": "r"},
        {"selector": {**SELECTOR, "tags": {"team": "ml\ud83d"}}, "reason": "r"},
    ],
)
def test_a_lone_surrogate_is_refused_as_the_schema_refuses_it(body: dict[str, Any]) -> None:
    assert schema_reads(body) is None
    assert validator_reads(body) is None


@pytest.mark.parametrize("name", ["gpu-cap\n", "quick-cap\n", "a\n"])
def test_a_policy_name_with_a_trailing_newline_is_refused(name: str) -> None:
    body = {"jobId": JOB, "reason": "r", "policy": name}
    assert schema_reads(body) is None
    assert validator_reads(body) is None


# Times `datetime.fromisoformat` reads and pydantic's parser refuses: offsets with seconds or
# fractions, the basic and week-date forms, an hour alone, a two-digit offset, a blank before Z.
ACCEPTED_ONLY_BY_THE_VALIDATOR = [
    "2026-01-01T00:00:00+01:00:30",
    "2026-01-01T00:00:00-23:59:59",
    "2026-01-01T00:00:00+00:00:01",
    "2026-01-01T00:00:00+00:00:00.5",
    "20260101T000000Z",
    "2026-W01-1T00:00Z",
    "2026-01-01T00Z",
    "2026-01-01T00:00:00+01",
    "2026-01-01T00:00:00 Z",
]


@pytest.mark.parametrize("moment", ACCEPTED_ONLY_BY_THE_VALIDATOR)
@pytest.mark.parametrize("key", ["createdBefore", "createdAfter"])
def test_a_time_the_schema_refuses_is_refused(key: str, moment: str) -> None:
    body = {"selector": {**SELECTOR, key: moment}, "reason": "r"}
    assert schema_reads(body) is None
    assert validator_reads(body) is None


@pytest.mark.parametrize("moment", ["2026-01-01T00:00:00z", "2026-01-01t00:00:00.250z"])
def test_a_lowercase_z_is_read_as_the_schema_reads_it(moment: str) -> None:
    body = {"selector": {**SELECTOR, "createdBefore": moment}, "reason": "r"}
    expected = schema_reads(body)
    assert expected is not None
    assert validator_reads(body) == expected


@pytest.mark.parametrize(
    "moment",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01t00:00:00Z",
        "2026-01-01 00:00:00Z",
        "2026-01-01T00:00Z",
        "2026-01-01T00:00:00-00:00",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00.1234567Z",
        "2026-01-01T00:00:00.120000+05:30",
        "2026-01-01T00:00:00,5Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_times_both_read_give_the_same_ledger_key(moment: str) -> None:
    """What was tried and holds: odd offsets and fractions both sides read write one JSON."""
    body = {"selector": {**SELECTOR, "createdAfter": moment}, "reason": "r"}
    assert validator_reads(body) == schema_reads(body)


@pytest.mark.parametrize(
    "body",
    [
        {"jobId": JOB, "reason": "r", "limit": 1.0},
        {"selector": SELECTOR, "reason": "r", "limit": 10**30},
        {"selector": SELECTOR, "reason": "r", "limit": True},
        {"jobId": JOB, "reason": "r", "dryRun": 1},
        {"jobId": f"{JOB}\n", "reason": "r"},
        {"jobId": f"arn:aws:batch:us-east-1:123456789012:job/{JOB}\n", "reason": "r"},
        {"jobId": f"arn:aws-iso:batch:us-east-1:123456789012:job/{JOB}", "reason": "r"},
        {"jobId": f"arn:aws:batch:us-east-1:123456789012:job/{JOB}:01", "reason": "r"},
        {"selector": {"jobQueues": ["arn:aws:batch:us-east-1:123456789012:job-queue/q\n"]}},
        {"selector": {**SELECTOR, "tags": {"a.b": ""}}, "reason": "r"},
        {"selector": {**SELECTOR, "jobNamePrefix": "\x85"}, "reason": "r"},
        {"jobId": JOB, "reason": "\U0001f600" * 1024},
        {"jobId": JOB, "reason": "r", "ifStatus": ["RUNNING", "FAILED", "x"]},
    ],
)
def test_odd_bodies_both_sides_agree_on(body: dict[str, Any]) -> None:
    """What was tried and holds: floats, huge ints, bools, trailing newlines in ids and ARNs,
    another partition, NEL, astral characters."""
    assert validator_reads(body) == schema_reads(body)


# --- the shipped policies reader against the schema --------------------------------------------


def policies_document(**settings: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "settings": {"jobQueues": ["gpu-training"], **settings},
        "policies": [{"name": "cap", "when": {"status": ["RUNNING"], "olderThan": "12h"}}],
    }


@pytest.mark.parametrize(
    "protect_tag", ["batch-terminator:protect\n", "batch-terminator:protect\r", "p" * 1025]
)
def test_the_reader_refuses_a_protect_tag_the_schema_refuses(protect_tag: str) -> None:
    document = policies_document(protectTag=protect_tag)
    with pytest.raises(ValidationError):
        schema.PoliciesFile.model_validate(document)
    with pytest.raises(ValueError, match="protectTag"):
        runtime.PoliciesFile.from_document(document)


@pytest.mark.parametrize("name", ["Quick Cap", "gpu_cap", "-cap", "cap-"])
def test_the_reader_refuses_a_policy_name_the_schema_refuses(name: str) -> None:
    document = policies_document()
    document["policies"][0]["name"] = name
    with pytest.raises(ValidationError):
        schema.PoliciesFile.model_validate(document)
    # What the sweeper would send for it is refused by the terminator.
    with pytest.raises(InvalidRequest, match="policy"):
        validate_request({"jobId": JOB, "reason": "r", "policy": name}, ORIGIN)
    with pytest.raises(ValueError, match="name"):
        runtime.PoliciesFile.from_document(document)


# --- the asset's bytecode ----------------------------------------------------------------------


RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def pyenv_like_shim(directory: Path) -> Path:
    """A `python3.X` on PATH that, like a pyenv shim, runs the interpreter only when the
    environment selects a version (PYENV_VERSION, `pyenv shell`), and otherwise says
    `command not found` and exits 127."""
    shim = directory / RUNTIME
    shim.write_text(
        "#!/bin/sh\n"
        'if [ -z "$PYENV_VERSION" ]; then\n'
        f'  echo "pyenv: {RUNTIME}: command not found" >&2\n'
        "  exit 127\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"\n',
        encoding="utf-8",
    )
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


def test_an_interpreter_selected_by_the_environment_builds_the_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    pyenv_like_shim(shims)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PYENV_VERSION", "selected")
    # No pyenv versions directory to fall back on: the shim is the one candidate.
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    policies = runtime.PoliciesFile.from_document(policies_document())
    out = build_lambda_asset(policies, tmp_path / "asset", RUNTIME)
    assert (out / "batch_terminator" / "__init__.py").is_file()


# --- decision events: a flaky EventBridge --------------------------------------------------------


class OddError(Exception):
    """An exception type no SDK defines: publishing must count it, not let it through."""


class ScriptedEvents:
    """PutEvents answers in a given order: an answer (its Entries possibly missing, short, long,
    or refusing entries) or an exception to raise; every call's entries are kept."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(list(Entries))
        step = self.script.pop(0) if self.script else {}
        if isinstance(step, BaseException):
            raise step
        kind, refused = step if isinstance(step, tuple) else ("ok", set())
        if kind == "missing":
            return {"FailedEntryCount": 0}
        count = {"short": len(Entries) // 2, "long": len(Entries) + 3}.get(kind, len(Entries))
        return {
            "FailedEntryCount": len(refused),
            "Entries": [
                {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}
                if i in refused
                else {"EventId": str(i)}
                for i in range(count)
            ],
        }


answers = st.one_of(
    st.tuples(
        st.sampled_from(["ok", "short", "long", "missing"]),
        st.sets(st.integers(0, 12), max_size=4),
    ),
    st.sampled_from(
        [
            ValueError("bad"),
            KeyError("Entries"),
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            RecursionError("deep"),
            OddError("no SDK raises this"),
            TimeoutError("read timed out"),
        ]
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(answers, max_size=8),
    st.integers(0, 35),
    st.lists(st.integers(0, 200_000), min_size=1, max_size=3),
)
def test_publishing_never_raises_and_counts_every_record(
    script: list[Any], count: int, reason_lengths: list[int]
) -> None:
    """What was tried and holds: whatever PutEvents answers or raises, and however large the
    records (one over 256 KB alone), publishing returns, and every record is counted once as
    sent or failed; a record counted as sent was in some call."""
    records = [
        AuditRecord(
            outcome=Outcome.TERMINATED,
            job_id=JOB,
            job_name="train",
            job_queue=None,
            status_before="RUNNING",
            reason="r" * reason_lengths[i % len(reason_lengths)],
            policy=None,
            source=Source.REQUEST,
            requested_by=None,
            request_id=str(i),
            dry_run=False,
        )
        for i in range(count)
    ]
    events = ScriptedEvents(script)
    published = publish_decisions(events, records, Member("123456789012", "us-east-1", "aws"))
    assert published.sent + published.failed == count
    called = {e["Detail"] for call in events.calls for e in call}
    assert published.sent <= len(called)
