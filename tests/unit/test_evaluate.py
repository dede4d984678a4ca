"""Policy evaluation: examples for each rule, and properties that must hold for any input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_terminator.contract import ACTIVE_STATUSES, JobStatus
from batch_terminator.logic.evaluate import AlarmFired, Scheduled, evaluate, worth_describing
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ARN = "arn:aws:batch:us-east-1:123456789012"
PROTECT = "batch-terminator:protect"


def job(
    n: int = 1,
    status: str = "RUNNING",
    age: timedelta = timedelta(hours=13),
    queue: str = "gpu-training",
    tags: dict[str, str] | None = None,
    definition: str = "train-bert",
    name: str = "nightly-train",
    **extra: Any,
) -> JobSnapshot:
    moment = NOW - age
    started = status in ("STARTING", "RUNNING")
    return JobSnapshot(
        job_id=f"00000000-0000-4000-8000-{n:012d}",
        job_name=name,
        job_queue=f"{ARN}:job-queue/{queue}",
        status=JobStatus(status),
        created_at=moment - timedelta(minutes=5) if started else moment,
        started_at=moment if started else None,
        job_definition=f"{ARN}:job-definition/{definition}:3",
        tags=tags if tags is not None else {},
        **extra,
    )


def policies(*items: dict[str, Any], **settings: Any) -> PoliciesFile:
    return PoliciesFile.model_validate(
        {"version": 1, "settings": settings, "policies": list(items)}
    )


GPU_CAP = {
    "name": "gpu-runtime-cap",
    "match": {
        "jobQueues": ["gpu-training"],
        "jobDefinitions": ["train-*"],
        "jobNames": ["nightly-*"],
        "tags": {"team": "*"},
    },
    "when": {"status": "RUNNING", "olderThan": "12h"},
}


def test_reason_names_policy_and_measured_age_against_limit() -> None:
    running = job(age=timedelta(hours=12, minutes=7), tags={"team": "ml"})
    [selection] = evaluate([running], policies(GPU_CAP), NOW, Scheduled()).selections
    assert selection.reason == "batch-terminator: policy gpu-runtime-cap: RUNNING 12h07m > 12h"
    assert selection.policy == "gpu-runtime-cap"
    assert not selection.dry_run


def test_every_match_condition_must_hold() -> None:
    ok = {"tags": {"team": "ml"}}
    cases = {
        "younger": job(age=timedelta(hours=11), **ok),
        "other queue": job(queue="spot-cpu", **ok),
        "other definition": job(definition="etl", **ok),
        "other name": job(name="adhoc", **ok),
        "missing tag": job(),
        "other status": job(status="RUNNABLE", **ok),
    }
    evaluation = evaluate(cases.values(), policies(GPU_CAP), NOW, Scheduled())
    assert evaluation.selections == []


def test_age_is_since_started_when_running_and_since_created_before() -> None:
    stuck = {"name": "stuck", "when": {"status": ["RUNNABLE", "RUNNING"], "olderThan": "6h"}}
    runnable = job(1, "RUNNABLE", age=timedelta(hours=7))
    running_long_queued = JobSnapshot(
        **{
            **job(2).__dict__,
            "created_at": NOW - timedelta(hours=9),
            "started_at": NOW - timedelta(hours=1),
        }
    )
    selected = {
        s.job.job_id
        for s in evaluate(
            [runnable, running_long_queued], policies(stuck), NOW, Scheduled()
        ).selections
    }
    assert selected == {runnable.job_id}


def test_protected_and_disallowed_jobs_are_never_selected() -> None:
    rule = {"name": "all", "when": {"status": "RUNNING", "olderThan": "1h"}}
    jobs = [job(1, tags={PROTECT: ""}), job(2, queue="research"), job(3)]
    evaluation = evaluate(jobs, policies(rule, jobQueues=["gpu-*"]), NOW, Scheduled())
    assert [s.job.job_id for s in evaluation.selections] == [jobs[2].job_id]
    assert (evaluation.protected, evaluation.not_allowed) == (1, 1)


def test_cap_order_and_counts() -> None:
    rule = {"name": "cap", "when": {"status": "RUNNING", "olderThan": "1h"}, "maxPerRun": 2}
    jobs = [job(i, age=timedelta(hours=h)) for i, h in enumerate([5, 9, 2, 7], start=1)]
    oldest = evaluate(jobs, policies(rule), NOW, Scheduled())
    assert [s.age.total_seconds() / 3600 for s in oldest.selections] == [9, 7]
    count = oldest.counts["cap"]
    assert (count.matched, count.selected, count.capped, count.cap_reached) == (4, 2, 2, True)
    assert oldest.capped_policies == {"cap": 2}
    newest = evaluate(jobs, policies({**rule, "order": "newest-first"}), NOW, Scheduled())
    assert [s.age.total_seconds() / 3600 for s in newest.selections] == [2, 5]


def test_dry_run_policy_and_global_mark_selections() -> None:
    rule = {"name": "try", "when": {"status": "RUNNING", "olderThan": "1h"}, "dryRun": True}
    assert evaluate([job()], policies(rule), NOW, Scheduled()).selections[0].dry_run
    plain = {**rule, "dryRun": False}
    assert evaluate([job()], policies(plain, dryRun=True), NOW, Scheduled()).selections[0].dry_run


def test_job_tag_limit_acts_as_a_policy() -> None:
    tagged = job(1, age=timedelta(hours=2, minutes=5), tags={"batch-terminator:max-runtime": "2h"})
    young = job(2, age=timedelta(hours=1), tags={"batch-terminator:max-runtime": "2h"})
    broken = job(3, tags={"batch-terminator:max-runtime": "two hours"})
    evaluation = evaluate([tagged, young, broken], policies(), NOW, Scheduled())
    [selection] = evaluation.selections
    assert selection.job == tagged
    assert (
        selection.reason
        == "batch-terminator: tag batch-terminator:max-runtime=2h: RUNNING 2h05m > 2h"
    )
    assert selection.policy == "max-runtime-tag"
    assert evaluation.invalid_tags == {broken.job_id: "two hours"}
    assert evaluate([tagged], policies(maxRuntimeTag=False), NOW, Scheduled()).selections == []


def test_alarm_policies_run_only_on_their_alarm_and_scheduled_ones_only_on_schedule() -> None:
    brake = {
        "name": "spend-brake",
        "trigger": {"alarms": ["batch-spend-*"]},
        "when": {"status": ["RUNNING", "RUNNABLE"]},
    }
    sweep = {"name": "cap", "when": {"status": "RUNNING", "olderThan": "1h"}}
    file = policies(brake, sweep)
    young = job(1, age=timedelta(minutes=10))
    assert [
        s.policy
        for s in evaluate([young], file, NOW, AlarmFired("batch-spend-critical")).selections
    ] == ["spend-brake"]
    assert evaluate([young], file, NOW, AlarmFired("other-alarm")).selections == []
    assert evaluate([young], file, NOW, Scheduled()).selections == []
    [selection] = evaluate([young], file, NOW, AlarmFired("batch-spend-critical")).selections
    assert selection.reason == "batch-terminator: policy spend-brake: RUNNING 10m"


def test_first_policy_in_file_order_claims_a_job_once() -> None:
    first = {"name": "first", "when": {"status": "RUNNING", "olderThan": "1h"}}
    second = {"name": "second", "when": {"status": "RUNNING", "olderThan": "1h"}}
    evaluation = evaluate([job()], policies(first, second), NOW, Scheduled())
    assert [s.policy for s in evaluation.selections] == ["first"]
    assert evaluation.counts["second"].matched == 0


def test_array_whose_children_all_match_is_terminated_through_its_parent_once() -> None:
    rule = {"name": "stuck", "when": {"status": "RUNNABLE", "olderThan": "6h"}}
    parent = job(100, "PENDING", age=timedelta(hours=8), array_size=3)
    kids = [
        JobSnapshot(
            **{
                **job(100 + i, "RUNNABLE", age=timedelta(hours=7 + i)).__dict__,
                "job_id": f"{parent.job_id}:{i}",
                "array_parent_id": parent.job_id,
            }
        )
        for i in range(3)
    ]
    evaluation = evaluate([parent, *kids], policies(rule), NOW, Scheduled())
    [selection] = evaluation.selections
    assert selection.job.job_id == parent.job_id
    assert len(selection.children) == 3
    assert selection.reason == "batch-terminator: policy stuck: array of 3 jobs RUNNABLE 7h > 6h"
    assert evaluation.counts["stuck"].matched == 1


def test_array_partly_matching_terminates_only_the_matching_children() -> None:
    rule = {"name": "stuck", "when": {"status": "RUNNABLE", "olderThan": "6h"}}
    parent = job(100, "PENDING", array_size=2)
    old = JobSnapshot(
        **{
            **job(101, "RUNNABLE", age=timedelta(hours=9)).__dict__,
            "job_id": f"{parent.job_id}:0",
            "array_parent_id": parent.job_id,
        }
    )
    fresh = JobSnapshot(
        **{
            **job(102, "RUNNABLE", age=timedelta(hours=1)).__dict__,
            "job_id": f"{parent.job_id}:1",
            "array_parent_id": parent.job_id,
        }
    )
    evaluation = evaluate([parent, old, fresh], policies(rule), NOW, Scheduled())
    assert [s.job.job_id for s in evaluation.selections] == [old.job_id]


def test_parent_is_never_judged_by_its_own_pending_status() -> None:
    rule = {"name": "pending", "when": {"status": "PENDING", "olderThan": "1h"}}
    parent = job(100, "PENDING", age=timedelta(hours=5), array_size=2)
    assert evaluate([parent], policies(rule), NOW, Scheduled()).selections == []


def test_worth_describing_ignores_tags_but_not_the_rest() -> None:
    file = policies(GPU_CAP, maxRuntimeTag=False)
    listed = JobSnapshot(**{**job().__dict__, "tags": None})
    assert worth_describing(listed, file, Scheduled(), NOW)
    assert not worth_describing(
        JobSnapshot(**{**listed.__dict__, "job_name": "adhoc"}), file, Scheduled(), NOW
    )
    running_any_age = JobSnapshot(**{**listed.__dict__, "job_name": "adhoc"})
    assert worth_describing(
        running_any_age, policies(GPU_CAP), Scheduled(), NOW
    )  # tag limits need its tags


# ---- properties -------------------------------------------------------------------------

statuses = st.sampled_from([s.value for s in ACTIVE_STATUSES])
ages = st.integers(min_value=0, max_value=96 * 3600).map(lambda s: timedelta(seconds=s))
tag_sets = st.dictionaries(
    st.sampled_from([PROTECT, "team", "batch-terminator:max-runtime"]),
    st.sampled_from(["ml", "bio", "", "2h", "30m"]),
    max_size=3,
)
jobs_strategy = st.lists(
    st.tuples(statuses, ages, st.sampled_from(["gpu-training", "spot-cpu", "research"]), tag_sets),
    max_size=40,
).map(lambda specs: [job(i, s, a, q, t) for i, (s, a, q, t) in enumerate(specs)])
policy_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "when": st.fixed_dictionaries(
                {
                    "status": st.lists(statuses, min_size=1, max_size=3, unique=True),
                    "olderThan": st.sampled_from(["30m", "2h", "12h"]),
                }
            ),
            "maxPerRun": st.integers(min_value=1, max_value=10),
            "order": st.sampled_from(["oldest-first", "newest-first"]),
            "match": st.sampled_from([{}, {"jobQueues": ["gpu-*"]}, {"tags": {"team": "ml"}}]),
        }
    ),
    max_size=4,
).map(
    lambda items: policies(
        *({**p, "name": f"p{i}"} for i, p in enumerate(items)),
        jobQueues=["gpu-training", "spot-cpu"],
    )
)


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, policy_strategy)
def test_protected_jobs_are_never_selected(jobs: list[JobSnapshot], file: PoliciesFile) -> None:
    selected = evaluate(jobs, file, NOW, Scheduled()).selections
    assert not any(PROTECT in (s.job.tags or {}) for s in selected)
    assert all(s.job.job_queue.endswith(("/gpu-training", "/spot-cpu")) for s in selected)


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, policy_strategy)
def test_caps_are_never_exceeded_and_jobs_never_counted_twice(
    jobs: list[JobSnapshot], file: PoliciesFile
) -> None:
    evaluation = evaluate(jobs, file, NOW, Scheduled())
    for policy in file.policies:
        assert (
            sum(1 for s in evaluation.selections if s.policy == policy.name) <= policy.max_per_run
        )
    ids = [s.job.job_id for s in evaluation.selections]
    assert len(ids) == len(set(ids))


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, policy_strategy)
def test_a_job_younger_than_every_limit_that_applies_is_never_selected(
    jobs: list[JobSnapshot], file: PoliciesFile
) -> None:
    evaluation = evaluate(jobs, file, NOW, Scheduled())
    for selection in evaluation.selections:
        assert selection.limit is not None
        assert selection.job.age_since is not None
        assert selection.age == NOW - selection.job.age_since
        assert selection.age > selection.limit
