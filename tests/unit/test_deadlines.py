"""Deadlines: the first second a rule selects a job, never before it, named per job, status and
attempt; the event patterns the rules filter with."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_terminator.contract import ACTIVE_STATUSES, JobStatus
from batch_terminator.logic.deadlines import (
    deadline,
    limiting_rules,
    schedule_name,
    stale_schedule_names,
)
from batch_terminator.logic.event_patterns import (
    alarm_state_change_pattern,
    job_state_change_pattern,
    limited_statuses,
)
from batch_terminator.logic.rules import rule_selects
from batch_terminator.models.policies import TAG_LIMIT_POLICY
from batch_terminator.scheduling import at_expression
from tests.unit.worlds import NOW, PROTECT, job_id, plain, policies, policy_lists, true_jobs

ONE_SECOND = timedelta(seconds=1)


def _rules(config) -> list[str]:  # type: ignore[no-untyped-def]
    names = [p.name for p in config.policies if p.is_scheduled and p.when.older_than]
    return [*names, TAG_LIMIT_POLICY] if config.settings.max_runtime_tag else names


@settings(max_examples=300, deadline=None)
@given(true_jobs(1), policy_lists, st.booleans())
def test_a_deadline_is_the_first_second_any_rule_selects_the_job(job, config, tag_limits):
    """The property: at the deadline its rule selects the job; a second before, no rule does.
    So a schedule at the deadline never fires early, and no rule would have acted sooner."""
    config = replace(config, settings=replace(config.settings, max_runtime_tag=tag_limits))
    snapshot = job.snapshot()
    found = deadline(snapshot, config)
    if PROTECT in (snapshot.tags or {}) or snapshot.termination_in_progress:
        assert found is None  # the terminator would skip it: no schedule to fire for nothing
        return
    if found is None:
        # No rule selects the job at any later time in this status either.
        for later in (timedelta(hours=1), timedelta(days=30), timedelta(days=400)):
            assert not any(
                rule_selects(r, snapshot, config, NOW + later).selected for r in _rules(config)
            )
        return
    assert found.at.microsecond == 0
    assert rule_selects(found.rule, snapshot, config, found.at).selected
    assert not any(
        rule_selects(r, snapshot, config, found.at - ONE_SECOND).selected for r in _rules(config)
    )
    assert found.status is snapshot.status
    assert found.attempt == len(snapshot.attempts)
    request = found.request("batch-terminator/deadline")
    assert request["ifStatus"] == [snapshot.status.value]
    assert request["policy"] == found.rule


def test_a_protected_or_stopping_job_gets_no_deadline() -> None:
    config = policies({"name": "cap", "when": {"status": "RUNNING", "olderThan": "2h"}})
    assert deadline(plain(1, age=timedelta(minutes=5)), config) is not None
    assert deadline(plain(1, age=timedelta(minutes=5), tags={PROTECT: "1"}), config) is None
    stopping = replace(plain(1, age=timedelta(minutes=5)), is_terminated=True)
    assert deadline(stopping, config) is None


def test_the_earliest_rule_wins_and_the_tag_limit_counts() -> None:
    config = policies(
        {"name": "slow", "when": {"status": "RUNNING", "olderThan": "12h"}},
        {"name": "fast", "when": {"status": "RUNNING", "olderThan": "2h"}},
    )
    job = plain(1, age=timedelta(minutes=30))
    found = deadline(job, config)
    assert found is not None
    assert found.rule == "fast"
    assert found.at == (job.started_at + timedelta(hours=2)).replace(microsecond=0) + ONE_SECOND
    tagged = plain(1, age=timedelta(minutes=30), tags={"batch-terminator:max-runtime": "1h"})
    found = deadline(tagged, config)
    assert found is not None
    assert found.rule == TAG_LIMIT_POLICY
    assert found.reason == "batch-terminator: tag batch-terminator:max-runtime=1h: RUNNING > 1h"


def test_a_retried_job_is_timed_from_its_current_attempt() -> None:
    """Input D's kind on the deadline path: the previous attempt's time does not count."""
    config = policies(
        {"name": "stuck", "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "6h"}}
    )
    job = plain(1, "RUNNABLE", timedelta(minutes=2), retries=1, attempt_ran=timedelta(hours=7))
    found = deadline(job, config)
    assert found is not None
    assert found.at > NOW + timedelta(hours=5)
    assert found.name == schedule_name(job.job_id, JobStatus.RUNNABLE, 1, "stuck")
    assert "-runnable-1-" in found.name


@given(st.integers(0, 10**6), st.sampled_from(list(ACTIVE_STATUSES)), st.integers(0, 10))
def test_schedule_names_are_valid_and_one_to_one(n, status, attempt):
    ids = [job_id(n), f"{job_id(n)}:{n % 10000}"]
    rules = ["a-very-long-policy-name-" * 2, "max-runtime-tag"]
    names = {schedule_name(i, status, attempt, r) for i in ids for r in rules}
    assert len(names) == 4
    for name in names:
        assert re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", name)
    assert schedule_name(ids[0], status, attempt, "p") != schedule_name(
        ids[0], status, attempt + 1, "p"
    )


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_at_expressions_never_fire_early(at: datetime):
    """Scheduler may invoke anywhere in the minute of at(): its first second must not be
    before the deadline, and the last one not long after."""
    text = at_expression(at)
    named = datetime.strptime(text[3:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    earliest_firing = named.replace(second=0)
    assert at <= earliest_firing < at + timedelta(minutes=1)


@given(st.sampled_from(list(ACTIVE_STATUSES)), st.sampled_from(list(ACTIVE_STATUSES)))
def test_a_job_that_moves_on_finds_its_earlier_schedules(before, after):
    """Whatever status a job left (in this attempt, or the previous one after a retry), every
    rule's schedule of that status is among the names deleted when it arrives somewhere later;
    its current status's schedules never are."""
    config = policies(
        *(
            {"name": f"p-{s.value.lower()}", "when": {"status": s.value, "olderThan": "1h"}}
            for s in ACTIVE_STATUSES
            if s is not JobStatus.STARTING
        ),
        {"name": "waiting", "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "2h"}},
    )
    rules = limiting_rules(config)
    order = list(ACTIVE_STATUSES)
    first = plain(1, before.value, timedelta(minutes=5))
    left = [schedule_name(first.job_id, before, 0, r) for s, r, _ in rules if s is before]
    assert left
    if order.index(after) > order.index(before):
        stale = stale_schedule_names(replace(first, status=after), rules)
        assert set(left) <= set(stale)
    retried = plain(1, "RUNNABLE", timedelta(minutes=5), retries=1)
    if before in (JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING):
        assert set(left) <= set(stale_schedule_names(retried, rules))
    finished = replace(first, status=JobStatus.FAILED)
    assert set(left) <= set(stale_schedule_names(finished, rules))
    current = [schedule_name(first.job_id, after, 0, r) for s, r, _ in rules if s is after]
    assert not set(current) & set(stale_schedule_names(replace(first, status=after), rules))


def test_event_patterns_filter_what_the_policies_limit() -> None:
    config = policies(
        {"name": "stuck", "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "6h"}},
        {"name": "brake", "trigger": {"alarms": ["spend-*"]}, "when": {"status": "RUNNING"}},
        jobQueues=["gpu-*", "arn:aws:batch:us-east-1:123456789012:job-queue/etl"],
        maxRuntimeTag=False,
    )
    assert limited_statuses(config) == (JobStatus.RUNNABLE, JobStatus.STARTING)
    pattern = job_state_change_pattern(config)
    assert pattern["detail"]["status"] == ["RUNNABLE", "STARTING", "SUCCEEDED", "FAILED"]
    assert pattern["detail"]["jobQueue"] == [
        {"wildcard": "arn:*:batch:*:*:job-queue/gpu-*"},
        "arn:aws:batch:us-east-1:123456789012:job-queue/etl",
    ]
    alarms = alarm_state_change_pattern(config)
    assert alarms is not None
    assert alarms["detail"] == {
        "alarmName": [{"wildcard": "spend-*"}],
        "state": {"value": ["ALARM"]},
    }
    everything = policies({"name": "cap", "when": {"status": "RUNNING", "olderThan": "1h"}})
    assert "jobQueue" not in job_state_change_pattern(everything)["detail"]
    assert alarm_state_change_pattern(everything) is None


def test_a_brake_on_every_alarm_of_the_account_is_refused() -> None:
    import pytest
    from pydantic import ValidationError

    for pattern in ("*", "**"):
        with pytest.raises(ValidationError, match="names every alarm"):
            policies({"name": "b", "trigger": {"alarms": [pattern]}, "when": {"status": "RUNNING"}})
    policies({"name": "b", "trigger": {"alarms": ["batch-*"]}, "when": {"status": "RUNNING"}})
