"""The functions read the shipped policies without pydantic: the same policies as the schema reads,
and nothing the schema would refuse."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from batch_terminator.contract import ACTIVE_STATUSES
from batch_terminator.logic.durations import format_limit
from batch_terminator.models import policies as runtime
from batch_terminator.models import policies_schema as schema
from tests.unit.parity import same

names = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
texts = st.text(st.sampled_from("abcxyz019-_:/.=*"), min_size=1, max_size=12)
words = st.text(st.sampled_from("abcxyz019-_"), min_size=1, max_size=12)
durations = st.integers(min_value=1, max_value=366 * 86_400).map(
    lambda s: format_limit(timedelta(seconds=s))
)
active = st.lists(st.sampled_from([s.value for s in ACTIVE_STATUSES]), min_size=1, unique=True)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def policy(draw: st.DrawFn, name: str) -> dict[str, Any]:
    status = draw(active)
    if "STARTING" in status and "RUNNABLE" not in status:
        status.append("RUNNABLE")
    trigger = draw(
        optional(
            st.fixed_dictionaries(
                {},
                optional={
                    "alarms": st.lists(words.map(lambda t: t + "*"), min_size=1),
                    "budgets": st.lists(texts, min_size=1),
                },
            ).filter(bool)
        )
    )
    when: dict[str, Any] = {"status": status if len(status) > 1 else status[0]}
    if trigger is None or draw(st.booleans()):
        when["olderThan"] = draw(durations)
    if draw(st.booleans()):
        when["statusReasons"] = draw(st.lists(texts, min_size=1, max_size=3))
    item: dict[str, Any] = {"name": name, "when": when}
    if trigger is not None:
        item["trigger"] = trigger
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "description": texts,
                "match": st.fixed_dictionaries(
                    {},
                    optional={
                        "jobQueues": st.lists(texts, min_size=1, max_size=3),
                        "jobDefinitions": st.lists(texts, min_size=1, max_size=3),
                        "jobNames": st.lists(texts, min_size=1, max_size=3),
                        "tags": st.dictionaries(texts, texts, max_size=3),
                    },
                ),
                "order": st.sampled_from(["oldest-first", "newest-first"]),
                "maxPerRun": st.integers(min_value=1, max_value=10_000),
                "dryRun": st.booleans(),
            },
        )
    )
    return item | extra


@st.composite
def written_files(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(names.filter(lambda n: n != "max-runtime-tag"), unique=True, max_size=4))
    settings_ = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "dryRun": st.booleans(),
                "protectTag": texts,
                "jobQueues": st.lists(texts, min_size=1, max_size=3),
                "sweepInterval": st.integers(min_value=60, max_value=86_400).map(
                    lambda s: format_limit(timedelta(seconds=s))
                ),
                "maxRuntimeTag": st.booleans(),
            },
        )
    )
    return {
        "version": 1,
        "settings": settings_,
        "policies": [draw(policy(name)) for name in chosen],
    }


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(written_files())
def test_the_shipped_document_reads_as_the_schema_validated_it(written: dict[str, Any]) -> None:
    model = schema.PoliciesFile.model_validate(written)
    document = json.loads(runtime.PoliciesFile.model_validate(written).to_json())
    read = runtime.PoliciesFile.from_document(document)
    same(read, model)
    assert runtime.PoliciesFile.from_document(json.loads(read.to_json())) == read


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += leaves(item, (*path, i))
    return found


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20_000) | st.text(max_size=8) | durations,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(written_files(), st.data())
def test_the_runtime_reader_accepts_nothing_the_schema_refuses(
    written: dict[str, Any], data: st.DataObject
) -> None:
    """Any one change to a shipped document (a value replaced, a key added or removed): the
    functions' reader either refuses it (ValueError) or reads the policies the schema reads."""
    document = runtime.PoliciesFile.model_validate(written).to_document()
    mutated = copy.deepcopy(document)
    path = data.draw(st.sampled_from(leaves(mutated)[1:] or [("version",)]))
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[path[-1]] = data.draw(json_values)
    elif action == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=12))] = data.draw(json_values)
    try:
        read = runtime.PoliciesFile.from_document(mutated)
    except ValueError:
        return
    same(read, schema.PoliciesFile.model_validate(mutated))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trigger": {"alarms": ["*"]}, "when": {"status": ["RUNNING"]}}, "names every alarm"),
        ({"when": {"status": ["RUNNING"]}}, "needs when.olderThan"),
        ({"when": {"status": ["SUCCEEDED"], "olderThan": "1h"}}, "finished jobs"),
        ({"when": {"status": ["STARTING"], "olderThan": "1h"}}, "STARTING needs RUNNABLE"),
        ({"name": "max-runtime-tag"}, "is reserved"),
        ({"maxPerRun": 0}, "maxPerRun must be between"),
        ({"maxPerRun": True}, "expected int, got bool"),
        ({"when": {"status": ["RUNNING"], "olderThan": "soon"}}, "invalid duration"),
        ({"order": "random"}, "expected one of"),
        ({"surprise": 1}, "unknown key 'surprise'"),
    ],
)
def test_the_runtime_reader_refuses_what_would_widen_a_policy(
    change: dict[str, Any], message: str
) -> None:
    item = {"name": "cap", "when": {"status": ["RUNNING"], "olderThan": "12h"}} | change
    document = {"version": 1, "policies": [item]}
    with pytest.raises(ValueError, match=message):
        runtime.PoliciesFile.from_document(document)
    with pytest.raises(ValidationError):
        schema.PoliciesFile.model_validate(document)


def test_two_policies_of_one_name_and_a_wrong_interval_are_refused() -> None:
    twice = {"name": "a", "when": {"status": ["RUNNING"], "olderThan": "1h"}}
    with pytest.raises(ValueError, match="used twice"):
        runtime.PoliciesFile.from_document({"version": 1, "policies": [twice, twice]})
    with pytest.raises(ValueError, match="between 1m and 1d"):
        runtime.PoliciesFile.from_document({"version": 1, "settings": {"sweepInterval": "2d"}})
