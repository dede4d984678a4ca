"""The functions' request validator against the request's pydantic model (its JSON Schema's
source): the same bodies accepted, read alike, the same canonical JSON (the ledger key), the
same errors."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from batch_terminator.contract import JobStatus
from batch_terminator.logic.bodies import InvalidRequest
from batch_terminator.models.base import describe_validation_error
from batch_terminator.models.request import Origin, validate_request
from batch_terminator.models.request_schema import ORIGIN_CONTEXT
from batch_terminator.models.request_schema import TerminationRequest as Schema
from tests.unit.parity import same

ORIGIN = Origin("123456789012", "us-east-1")
JOB = str(uuid.UUID(int=7))

job_ids = st.sampled_from(
    [
        JOB,
        f"{JOB}:3",
        f"{JOB}#0",
        f"{JOB}:01",
        f"arn:aws:batch:us-east-1:123456789012:job/{JOB}",
        f"arn:aws:batch:eu-west-1:123456789012:job/{JOB}",
        f"arn:aws-cn:batch:us-east-1:123456789012:job/{JOB}",
        f"arn:aws:batch:us-east-1:999999999999:job/{JOB}",
        "not-a-job",
        "",
    ]
)
queues = st.sampled_from(
    [
        "gpu-training",
        "spot_cpu",
        "gpu-*",
        "",
        "arn:aws:batch:us-east-1:123456789012:job-queue/gpu",
        "arn:aws:batch:us-west-2:123456789012:job-queue/gpu",
        "a" * 129,
    ]
)
texts = st.sampled_from(["r", "why", "", "   ", "\u200b", "a\nb", "x" * 1025, "x" * 1024, "é"])
statuses = st.sampled_from([s.value for s in JobStatus] + ["DONE", "running"])
status_values = statuses | st.lists(statuses, max_size=3)
times = st.sampled_from(
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00+02:00",
        "2026-01-01T00:00:00.250000Z",
        "2026-01-01T00:00:00",
        "yesterday",
    ]
)
scalars = st.none() | st.booleans() | st.integers(-3, 1_200) | st.floats(0, 5) | texts

selectors = st.fixed_dictionaries(
    {},
    optional={
        "jobQueues": st.lists(queues, max_size=3),
        "statuses": status_values,
        "jobNamePrefix": texts,
        "jobDefinition": texts,
        "tags": st.dictionaries(texts, texts, max_size=2),
        "createdBefore": times,
        "createdAfter": times,
        "minAge": st.sampled_from(["6h", "1h30m", "soon", "0s", "400d"]),
    },
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "jobId": job_ids,
        "jobIds": st.lists(job_ids, max_size=4),
        "selector": selectors,
        "reason": texts,
        "limit": st.integers(-1, 1_001) | st.booleans() | st.just(5.0),
        "requestedBy": texts,
        "requestId": texts,
        "dryRun": st.booleans() | st.just("true"),
        "ifStatus": status_values,
        "policy": st.sampled_from(["gpu-cap", "Not_A_Name", "-x"]),
    },
)


def _datetimes(errors: str) -> str:
    """The errors without those about a selector's times: pydantic's parser and Python's
    `datetime.fromisoformat` word them differently, and the validator refuses numbers there
    (see `_numeric_times`). That a time is refused is checked on its own below."""
    parts = [p for p in errors.split("; ") if not re.match(r"selector\.created(Before|After): ", p)]
    return "; ".join(parts)


def _numeric_times(body: Any) -> bool:
    selector = body.get("selector") if isinstance(body, dict) else None
    return isinstance(selector, dict) and any(
        isinstance(selector.get(key), int | float) for key in ("createdBefore", "createdAfter")
    )


def agree(body: Any, origin: Origin) -> None:
    try:
        model = Schema.model_validate(body, context={ORIGIN_CONTEXT: origin})
    except ValidationError as exc:
        expected = "; ".join(describe_validation_error(exc))
        with pytest.raises(InvalidRequest) as refused:
            validate_request(body, origin)
        assert _datetimes(str(refused.value)) == _datetimes(expected)
        for key in ("createdBefore", "createdAfter"):
            assert (f"selector.{key}: " in expected) <= (f"selector.{key}: " in str(refused.value))
        return
    if _numeric_times(body):
        # Stricter on purpose: pydantic's lax mode reads a number as a Unix time; the validator
        # takes ISO 8601 text with a time zone only.
        with pytest.raises(InvalidRequest, match="valid datetime"):
            validate_request(body, origin)
        return
    read = validate_request(body, origin)
    same(read, model)
    assert read.to_json() == model.model_dump_json(exclude_none=True)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@example({"jobId": JOB, "reason": "r"}, ORIGIN)
@example(
    {"selector": {"jobQueues": ["q"], "createdBefore": "2026-01-01T00:00:00Z"}, "reason": "r"},
    ORIGIN,
)
@example({"jobIds": [JOB] * 101, "reason": "r"}, ORIGIN)
@given(bodies, st.sampled_from([ORIGIN, Origin()]))
def test_the_validator_and_the_schema_agree(body: dict[str, Any], origin: Origin) -> None:
    agree(body, origin)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.data())
def test_they_agree_on_any_one_change_to_a_body(body: dict[str, Any], data: st.DataObject) -> None:
    changed = copy.deepcopy(body)
    target = changed
    if "selector" in changed and isinstance(changed["selector"], dict) and data.draw(st.booleans()):
        target = changed["selector"]
    key = data.draw(st.sampled_from([*target, "surprise", "dryrun"]))
    target[key] = data.draw(
        scalars | st.lists(scalars, max_size=2) | st.dictionaries(texts, scalars)
    )
    agree(changed, ORIGIN)


@given(scalars | st.lists(scalars, max_size=2))
def test_they_agree_on_what_is_not_an_object(body: Any) -> None:
    agree(body, ORIGIN)
