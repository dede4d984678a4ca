"""Policy evaluation: examples for each rule, and properties over generated worlds."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings

from batch_terminator.contract import JobStatus
from batch_terminator.logic.arrays import ArrayFamily
from batch_terminator.logic.evaluate import TAG_LIMIT_CAP, evaluate
from batch_terminator.logic.rules import AlarmFired, Scheduled
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from tests.unit.worlds import (
    NOW,
    PROTECT,
    TrueJob,
    family,
    job_id,
    plain,
    policies,
    policy_lists,
    worlds,
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
STUCK = {"name": "stuck", "when": {"status": ["RUNNABLE", "STARTING"], "olderThan": "6h"}}


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_reason_names_policy_status_and_limit_and_the_age_is_measured() -> None:
    running = plain(age=hours(12) + timedelta(minutes=7), tags={"team": "ml"})
    [selection] = evaluate([running], [], policies(GPU_CAP), NOW, Scheduled()).selections
    # One reason per policy and limit, so one bulk call carries 50 jobs; the age is the job's.
    assert selection.reason == "batch-terminator: policy gpu-runtime-cap: RUNNING > 12h"
    assert selection.age == hours(12) + timedelta(minutes=7)
    assert (selection.policy, selection.dry_run, selection.statuses) == (
        "gpu-runtime-cap",
        False,
        (JobStatus.RUNNING,),
    )


def test_every_match_condition_must_hold() -> None:
    ok = {"tags": {"team": "ml"}}
    cases = [
        plain(1, age=hours(11), **ok),
        plain(2, queue="spot-cpu", **ok),
        plain(3, definition="etl", **ok),
        plain(4, name="adhoc", **ok),
        plain(5),
        plain(6, "RUNNABLE", **ok),
    ]
    assert evaluate(cases, [], policies(GPU_CAP), NOW, Scheduled()).selections == []


def test_a_pattern_matches_what_it_names() -> None:
    """`*batch*` names queues: it must not match every queue through the ARN's `:batch:`."""
    rule = {"name": "all", "when": {"status": "RUNNING", "olderThan": "1h"}}
    payroll = plain(1, queue="payroll")
    for pattern in ("*batch*", "*east*", "*queue*", "*123456789012*"):
        file = policies(rule, jobQueues=[pattern])
        evaluation = evaluate([payroll], [], file, NOW, Scheduled())
        assert evaluation.selections == [], pattern
        assert evaluation.not_allowed == 1
    arn_glob = "arn:aws:batch:us-east-1:123456789012:job-queue/pay*"
    assert evaluate(
        [payroll], [], policies(rule, jobQueues=[arn_glob]), NOW, Scheduled()
    ).selections


def test_protected_disallowed_lingering_and_undescribed_jobs_are_never_selected() -> None:
    rule = {"name": "all", "when": {"status": "RUNNING", "olderThan": "1h"}}
    jobs = [
        plain(1, tags={PROTECT: ""}),
        plain(2, queue="research"),
        plain(3, lingering=True),
        plain(4, described=False),
        plain(5),
    ]
    evaluation = evaluate(jobs, [], policies(rule, jobQueues=["gpu-*"]), NOW, Scheduled())
    assert [s.job.job_id for s in evaluation.selections] == [job_id(5)]
    assert (
        evaluation.protected,
        evaluation.not_allowed,
        evaluation.terminating,
        evaluation.unknown,
    ) == (1, 1, 1, 1)


def test_lingering_terminations_do_not_use_up_the_cap() -> None:
    """A cancelled job lingers in RUNNABLE for a while; re-selecting it on every sweep would
    starve the jobs behind it."""
    rule = {**STUCK, "maxPerRun": 1}
    lingering = plain(1, "RUNNABLE", hours(30), lingering=True)
    waiting = plain(2, "RUNNABLE", hours(7))
    [selection] = evaluate([lingering, waiting], [], policies(rule), NOW, Scheduled()).selections
    assert selection.job.job_id == waiting.job_id


def test_cap_order_and_counts() -> None:
    rule = {"name": "cap", "when": {"status": "RUNNING", "olderThan": "1h"}, "maxPerRun": 2}
    jobs = [plain(i, age=hours(h)) for i, h in enumerate([5, 9, 2, 7], start=1)]
    oldest = evaluate(jobs, [], policies(rule), NOW, Scheduled())
    assert [s.age for s in oldest.selections] == [hours(9), hours(7)]
    count = oldest.counts["cap"]
    assert (count.matched, count.selected, count.capped, count.cap_reached) == (4, 2, 2, True)
    newest = evaluate(jobs, [], policies({**rule, "order": "newest-first"}), NOW, Scheduled())
    assert [s.age for s in newest.selections] == [hours(2), hours(5)]


def test_dry_run_policy_and_global_mark_selections() -> None:
    rule = {"name": "try", "when": {"status": "RUNNING", "olderThan": "1h"}, "dryRun": True}
    assert evaluate([plain()], [], policies(rule), NOW, Scheduled()).selections[0].dry_run
    plain_rule = {**rule, "dryRun": False}
    file = policies(plain_rule, dryRun=True)
    assert evaluate([plain()], [], file, NOW, Scheduled()).selections[0].dry_run


def test_job_tag_limit_acts_as_a_policy_and_a_malformed_tag_never_stops_a_sweep() -> None:
    tagged = plain(
        1, age=hours(2) + timedelta(minutes=5), tags={"batch-terminator:max-runtime": "2h"}
    )
    young = plain(2, age=hours(1), tags={"batch-terminator:max-runtime": "2h"})
    broken = plain(3, tags={"batch-terminator:max-runtime": "two hours"})
    huge = plain(4, tags={"batch-terminator:max-runtime": "1000000000d"})
    other = plain(5, age=hours(13), tags={"team": "ml"})
    file = policies(GPU_CAP)
    evaluation = evaluate([tagged, young, broken, huge, other], [], file, NOW, Scheduled())
    assert {s.job.job_id: s.policy for s in evaluation.selections} == {
        tagged.job_id: "max-runtime-tag",
        other.job_id: "gpu-runtime-cap",
    }
    [by_tag] = [s for s in evaluation.selections if s.policy == "max-runtime-tag"]
    assert by_tag.reason == "batch-terminator: tag batch-terminator:max-runtime=2h: RUNNING > 2h"
    assert evaluation.invalid_tags == {broken.job_id: "two hours", huge.job_id: "1000000000d"}
    assert evaluate([tagged], [], policies(maxRuntimeTag=False), NOW, Scheduled()).selections == []


def test_alarm_policies_run_only_on_their_alarm_and_scheduled_ones_only_on_schedule() -> None:
    brake = {
        "name": "spend-brake",
        "trigger": {"alarms": ["batch-spend-*"]},
        "when": {"status": ["RUNNING", "RUNNABLE"]},
    }
    sweep = {"name": "cap", "when": {"status": "RUNNING", "olderThan": "1h"}}
    file = policies(brake, sweep)
    young = plain(1, age=timedelta(minutes=10))
    fired = evaluate([young], [], file, NOW, AlarmFired("batch-spend-critical"))
    assert [s.policy for s in fired.selections] == ["spend-brake"]
    assert fired.selections[0].reason == "batch-terminator: policy spend-brake: RUNNING"
    assert evaluate([young], [], file, NOW, AlarmFired("other-alarm")).selections == []
    assert evaluate([young], [], file, NOW, Scheduled()).selections == []


def test_first_policy_in_file_order_claims_a_job_once() -> None:
    first = {"name": "first", "when": {"status": "RUNNING", "olderThan": "1h"}}
    second = {"name": "second", "when": {"status": "RUNNING", "olderThan": "1h"}}
    evaluation = evaluate([plain()], [], policies(first, second), NOW, Scheduled())
    assert [s.policy for s in evaluation.selections] == ["first"]
    assert evaluation.counts["second"].matched == 0


# ---- ages (input D, input E) ----------------------------------------------------------------


def test_a_retried_job_is_aged_from_its_previous_attempt_not_from_its_creation() -> None:
    """Input D: created 7 h ago, the first attempt ran ~7 h and was reclaimed 2 minutes ago;
    RUNNABLE again, it has waited 2 minutes, not 7 hours."""
    retried = plain(1, "RUNNABLE", timedelta(minutes=2), retries=1, attempt_ran=hours(7))
    assert retried.created_at is not None
    assert NOW - retried.created_at > hours(6)
    assert retried.started_at is not None  # stale: the previous attempt's
    assert evaluate([retried], [], policies(STUCK), NOW, Scheduled()).selections == []
    waited = plain(2, "RUNNABLE", hours(7), retries=1)
    assert [
        s.age for s in evaluate([waited], [], policies(STUCK), NOW, Scheduled()).selections
    ] == [hours(7)]


def test_a_starting_job_is_aged_from_when_it_became_runnable() -> None:
    """Input E: created 8 h ago, STARTING now; Batch gives no startedAt until RUNNING."""
    starting = plain(1, "STARTING", timedelta(minutes=1), waiting=hours(8))
    assert starting.started_at is None
    [selection] = evaluate([starting], [], policies(STUCK), NOW, Scheduled()).selections
    assert selection.age == hours(8) + timedelta(minutes=1)
    assert selection.reason == "batch-terminator: policy stuck: STARTING > 6h"


def test_a_job_that_waited_on_dependencies_is_aged_from_when_they_finished() -> None:
    waited = plain(1, "RUNNABLE", hours(1), had_dependencies=True)
    assert waited.created_at is not None
    assert NOW - waited.created_at > hours(2)
    assert evaluate([waited], [], policies(STUCK), NOW, Scheduled()).selections == []
    unknown = plain(2, "RUNNABLE", hours(9), had_dependencies=True, dependencies_resolved=False)
    assert evaluate([unknown], [], policies(STUCK), NOW, Scheduled()).selections == []


# ---- arrays (input A) -------------------------------------------------------------------------

RUNTIME = {
    "name": "runtime",
    "match": {"jobQueues": ["gpu-training"]},
    "when": {"status": "RUNNING", "olderThan": "12h"},
}


def kids(*specs: tuple[str, float]) -> list[TrueJob]:
    return [TrueJob("", JobStatus(s), hours(h)) for s, h in specs]


def test_an_array_with_children_the_policy_does_not_select_is_never_terminated_whole() -> None:
    """Input A: children 0 and 1 RUNNING 13 h, children 2 and 3 RUNNABLE: only 0 and 1 go."""
    fam, _ = family(100, kids(("RUNNING", 13), ("RUNNING", 13), ("RUNNABLE", 1), ("RUNNABLE", 1)))
    evaluation = evaluate([], [fam], policies(RUNTIME), NOW, Scheduled())
    assert sorted(s.job.job_id for s in evaluation.selections) == [
        f"{fam.parent.job_id}:0",
        f"{fam.parent.job_id}:1",
    ]
    assert all(not s.children for s in evaluation.selections)


def test_running_children_under_the_limit_keep_the_parent_alive_without_tag_limits() -> None:
    """Input A with maxRuntimeTag false: a RUNNING child under the limit is still a child."""
    fam, _ = family(100, kids(("RUNNING", 13), ("RUNNING", 1)))
    file = policies(RUNTIME, maxRuntimeTag=False)
    [selection] = evaluate([], [fam], file, NOW, Scheduled()).selections
    assert selection.job.job_id == f"{fam.parent.job_id}:0"


def test_an_array_whose_unfinished_children_all_match_is_terminated_once_and_counts_them_all() -> (
    None
):
    fam, _ = family(
        100, kids(("RUNNABLE", 7), ("STARTING", 0.1), ("SUCCEEDED", 1), ("RUNNABLE", 8))
    )
    fam = ArrayFamily(
        fam.parent,
        tuple(
            replace(c, attempts=(), created_at=NOW - hours(8))
            if c.status is JobStatus.STARTING
            else c
            for c in fam.children
        ),
    )
    evaluation = evaluate([], [fam], policies(STUCK), NOW, Scheduled())
    [selection] = evaluation.selections
    assert selection.job.job_id == fam.parent.job_id
    assert {c.job_id for c in selection.children} == {f"{fam.parent.job_id}:{i}" for i in (0, 1, 3)}
    assert selection.statuses == (JobStatus.RUNNABLE, JobStatus.STARTING)
    assert selection.reason == "batch-terminator: policy stuck: RUNNABLE, STARTING > 6h"
    assert evaluation.counts["stuck"].selected == 3


def test_an_array_with_a_child_describejobs_did_not_return_is_not_terminated_whole() -> None:
    fam, _ = family(100, kids(("RUNNABLE", 7), ("RUNNABLE", 7), ("RUNNABLE", 7)))
    partial = ArrayFamily(fam.parent, fam.children[:2])
    evaluation = evaluate([], [partial], policies(STUCK), NOW, Scheduled())
    assert sorted(s.job.job_id for s in evaluation.selections) == [
        c.job_id for c in partial.children
    ]


def test_an_array_larger_than_the_cap_gives_way_to_its_oldest_children() -> None:
    fam, _ = family(100, kids(("RUNNABLE", 7), ("RUNNABLE", 9), ("RUNNABLE", 8)))
    evaluation = evaluate([], [fam], policies({**STUCK, "maxPerRun": 2}), NOW, Scheduled())
    assert [s.job.job_id for s in evaluation.selections] == [
        f"{fam.parent.job_id}:1",
        f"{fam.parent.job_id}:2",
    ]
    count = evaluation.counts["stuck"]
    assert (count.matched, count.selected, count.capped) == (3, 2, 1)


def test_a_parent_is_never_judged_by_its_own_pending_status() -> None:
    rule = {"name": "pending", "when": {"status": "PENDING", "olderThan": "1h"}}
    fam, _ = family(100, kids(("RUNNING", 5), ("RUNNING", 5)))
    assert evaluate([fam.parent], [fam], policies(rule), NOW, Scheduled()).selections == []


def test_a_protected_array_protects_every_child() -> None:
    fam, _ = family(100, kids(("RUNNABLE", 9), ("RUNNABLE", 9)), tags={PROTECT: "yes"})
    evaluation = evaluate([], [fam], policies(STUCK), NOW, Scheduled())
    assert evaluation.selections == []
    assert evaluation.protected == 2


# ---- properties ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(worlds(), policy_lists)
def test_what_a_sweep_selects_is_what_the_rules_allow(
    world: tuple[list[TrueJob], list[tuple[ArrayFamily, list[TrueJob]]]], file: PoliciesFile
) -> None:
    plain_jobs, arrays = world
    truth = {j.job_id: j for j in plain_jobs} | {k.job_id: k for _, ks in arrays for k in ks}
    snapshots = [j.snapshot() for j in plain_jobs]
    evaluation = evaluate(snapshots, [f for f, _ in arrays], file, NOW, Scheduled())
    families = {f.parent.job_id: f for f, _ in arrays}
    stopped: list[str] = []
    per_rule: dict[str, int] = {}
    for selection in evaluation.selections:
        jobs = selection.children or (selection.job,)
        if selection.children:
            fam = families[selection.job.job_id]
            assert fam.complete
            unfinished = {
                c.job_id
                for c in fam.children
                if not c.status.is_final and not truth[c.job_id].lingering
            }
            assert {c.job_id for c in selection.children} == unfinished
        per_rule[selection.policy] = per_rule.get(selection.policy, 0) + len(jobs)
        policy = file.policy(selection.policy)
        for job in jobs:
            real = truth[job.job_id]
            stopped.append(job.job_id)
            assert real.described
            assert PROTECT not in real.tags
            assert real.queue in ("gpu-training", "spot-cpu")
            assert not real.lingering
            if policy is None:  # the job's own tag limit
                assert real.status is JobStatus.RUNNING
                continue
            assert real.status in policy.when.status
            assert policy.when.older_than is not None
            assert real.documented_age > policy.when.older_than
    assert len(stopped) == len(set(stopped)), "a job selected twice"
    for rule, count in per_rule.items():
        policy = file.policy(rule)
        assert count <= (policy.max_per_run if policy else TAG_LIMIT_CAP)


@settings(max_examples=100, deadline=None)
@given(worlds(), policy_lists)
def test_summaries_alone_never_select_anything(
    world: tuple[list[TrueJob], list[tuple[ArrayFamily, list[TrueJob]]]], file: PoliciesFile
) -> None:
    """What a ListJobs summary lacks (tags, queue, attempts) must never read as a fact."""
    plain_jobs, _ = world
    summaries: list[JobSnapshot] = [replace(j, described=False).snapshot() for j in plain_jobs]
    assert evaluate(summaries, [], file, NOW, Scheduled()).selections == []
