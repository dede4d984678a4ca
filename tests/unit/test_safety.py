"""The safety rules, as a pure function of the job's current state, the request and the policies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_terminator.contract import JobStatus
from batch_terminator.logic.safety import Decision, RequiredTag, Verdict, required_tag_skip
from batch_terminator.logic.safety import judge as judge_now
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.models.request import TerminationRequest, validate_request

JOB = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/gpu-training"


NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def job(
    status: str = "RUNNING", tags: dict[str, str] | None = None, queue: str = QUEUE, **extra: Any
) -> JobSnapshot:
    return JobSnapshot(
        **{
            "job_id": JOB,
            "job_name": "train",
            "job_queue": queue,
            "status": JobStatus(status),
            "created_at": NOW - timedelta(hours=3),
            "started_at": NOW - timedelta(hours=2) if status == "RUNNING" else None,
            "tags": tags if tags is not None else {},
            "described": True,
            **extra,
        }
    )


def judge(
    snapshot: JobSnapshot | None,
    req: TerminationRequest,
    cfg: PoliciesFile,
    *,
    last_delivery: bool = True,
) -> Verdict:
    return judge_now(snapshot, req, cfg, NOW, last_delivery=last_delivery)


def request(**fields: Any) -> TerminationRequest:
    body = {"jobId": JOB, "reason": "r", **fields}
    return validate_request({k: v for k, v in body.items() if v is not None})


def config(**settings: Any) -> PoliciesFile:
    return PoliciesFile.model_validate(
        {
            "version": 1,
            "settings": {"jobQueues": ["gpu-*"], **settings},
            "policies": [
                {
                    "name": "careful",
                    "when": {"status": "RUNNING", "olderThan": "1h"},
                    "dryRun": True,
                },
                {"name": "bold", "when": {"status": "RUNNING", "olderThan": "1h"}},
            ],
        }
    )


def test_active_job_in_allowed_queue_is_terminated() -> None:
    verdict = judge(job(), request(), config())
    assert verdict.terminate
    assert verdict.skip_reason is None
    assert not verdict.dry_run


@pytest.mark.parametrize(
    ("snapshot", "why"),
    [
        (None, "not found: DescribeJobs does not know this job id"),
        (
            job(tags={"batch-terminator:protect": ""}),
            "protected: job carries tag batch-terminator:protect",
        ),
        (job(queue="arn:aws:batch:us-east-1:123456789012:job-queue/research"), "queue not allowed"),
        (job("SUCCEEDED"), "already finished: SUCCEEDED"),
        (job("FAILED"), "already finished: FAILED"),
        (job(is_terminated=True), "already terminating: RUNNING and marked terminated"),
        (job("RUNNABLE", is_cancelled=True), "already terminating: RUNNABLE"),
    ],
)
def test_jobs_that_must_not_be_touched_are_skipped_with_the_why(
    snapshot: JobSnapshot | None, why: str
) -> None:
    verdict = judge(snapshot, request(), config())
    assert not verdict.terminate
    assert verdict.skip_reason is not None
    assert verdict.skip_reason.startswith(why)


def test_protection_wins_over_every_other_instruction() -> None:
    protected = job(tags={"batch-terminator:protect": "true"})
    verdict = judge(protected, request(ifStatus="RUNNING", policy="bold"), config(jobQueues=["*"]))
    assert not verdict.terminate


def test_custom_protect_tag() -> None:
    tagged = job(tags={"keep": "1"})
    assert not judge(tagged, request(), config(protectTag="keep")).terminate
    assert judge(tagged, request(), config()).terminate


def test_if_status() -> None:
    assert judge(job("RUNNABLE"), request(ifStatus=["RUNNABLE"]), config()).terminate
    verdict = judge(job("RUNNING"), request(ifStatus=["RUNNABLE", "STARTING"]), config())
    assert (
        verdict.skip_reason
        == "precondition failed: status RUNNING is not in ifStatus [RUNNABLE, STARTING]"
    )


@pytest.mark.parametrize(
    ("cfg", "req", "level"),
    [
        (config(dryRun=True), request(), "global"),
        (config(), request(policy="careful"), "policy careful"),
        (config(), request(dryRun=True), "request"),
        (config(dryRun=True), request(dryRun=True, policy="careful"), "global"),
    ],
)
def test_dry_run_at_every_level(cfg: PoliciesFile, req: TerminationRequest, level: str) -> None:
    verdict = judge(job(), req, cfg)
    assert (verdict.terminate, verdict.dry_run, verdict.skip_reason) == (
        False,
        True,
        f"dry run ({level})",
    )


def test_a_policy_without_dry_run_does_not_force_one() -> None:
    assert judge(job(), request(policy="bold"), config()).terminate


def test_dry_run_is_reported_even_when_another_rule_skips() -> None:
    verdict = judge(job("SUCCEEDED"), request(dryRun=True), config())
    assert (verdict.skip_reason, verdict.dry_run) == ("already finished: SUCCEEDED", True)


def test_queue_patterns_match_names_and_arns() -> None:
    assert judge(job(), request(), config(jobQueues=[QUEUE])).terminate
    assert judge(job(), request(), config(jobQueues=["gpu-training"])).terminate
    assert not judge(job(), request(), config(jobQueues=["gpu-train"])).terminate


def test_a_job_describejobs_does_not_see_yet_is_retried_until_the_last_delivery() -> None:
    """Input F: DescribeJobs is eventually consistent; a just-submitted job may be missing."""
    early = judge(None, request(), config(), last_delivery=False)
    assert early.decision is Decision.RETRY
    assert early.why is not None
    assert early.why.startswith("not found yet")
    last = judge(None, request(), config(), last_delivery=True)
    assert (last.decision, last.skip_reason) == (
        Decision.SKIP,
        "not found: DescribeJobs does not know this job id",
    )


def test_unknown_tags_are_never_no_protect_tag() -> None:
    """Input G's kind: a job whose tags Batch did not give is treated as protected."""
    summary_only = replace(job(), tags=None, described=False)
    verdict = judge(summary_only, request(), config())
    assert not verdict.terminate
    assert verdict.skip_reason is not None
    assert verdict.skip_reason.startswith("facts unknown")
    assert not judge(replace(job(), tags=None), request(), config()).terminate


def test_a_policy_decision_is_rechecked_against_the_policy_on_the_fresh_state() -> None:
    cfg = config(jobQueues=["*"])
    ripe = job(started_at=NOW - timedelta(hours=2))
    assert judge(ripe, request(policy="bold"), cfg).terminate
    fresh = job(started_at=NOW - timedelta(minutes=30))
    verdict = judge(fresh, request(policy="bold"), cfg)
    assert verdict.skip_reason == (
        "precondition failed: policy bold would not select the job now: RUNNING 30m is not over 1h"
    )
    moved = job("RUNNABLE")
    assert (judge(moved, request(policy="bold"), cfg).skip_reason or "").startswith(
        "precondition failed: policy bold would not select the job now: status RUNNABLE"
    )
    gone = judge(ripe, request(policy="no-such-policy"), cfg)
    assert (gone.skip_reason or "").endswith(
        "policy no-such-policy is not in the deployed policies"
    )


def test_a_request_claiming_the_tag_limit_is_honoured_only_over_the_tag() -> None:
    cfg = config(jobQueues=["*"])
    tagged = job(tags={"batch-terminator:max-runtime": "1h"})
    assert judge(tagged, request(policy="max-runtime-tag"), cfg).terminate
    untagged = judge(job(), request(policy="max-runtime-tag"), cfg)
    assert not untagged.terminate
    off = config(jobQueues=["*"], maxRuntimeTag=False)
    assert not judge(tagged, request(policy="max-runtime-tag"), off).terminate


def test_a_selector_is_rechecked_on_the_fresh_state() -> None:
    selector = {"jobQueues": ["gpu-training"], "statuses": ["RUNNABLE"], "minAge": "1h"}
    stuck = job("RUNNABLE")
    assert judge(stuck, request(jobId=None, selector=selector), config()).terminate
    started = judge(job("RUNNING"), request(jobId=None, selector=selector), config())
    assert (started.skip_reason or "").startswith("precondition failed: selector: status RUNNING")
    young = job("RUNNABLE", created_at=NOW - timedelta(minutes=5))
    assert (
        judge(young, request(jobId=None, selector=selector), config()).skip_reason
        == "precondition failed: selector: RUNNABLE 5m is under minAge 1h"
    )


# -- terminateOnlyTagged ---------------------------------------------------------------------
TEAM = RequiredTag("team", "ml-platform")
tag_text = st.sampled_from(["team", "ml-platform", "ml", "Team", "", "other", "ml-platform "])
tag_maps = st.dictionaries(tag_text, tag_text, max_size=4)
verdicts = st.sampled_from(
    [
        Verdict(Decision.TERMINATE),
        Verdict(Decision.TERMINATE, age=timedelta(hours=2)),
        Verdict(Decision.SKIP, "dry run (request)", True, held_by_dry_run=True),
        Verdict(Decision.SKIP, "protected: job carries tag p"),
        Verdict(Decision.RETRY, "not found yet"),
    ]
)


@given(tags=st.one_of(st.none(), tag_maps), verdict=verdicts)
def test_only_a_job_carrying_the_required_tag_may_be_terminated(
    tags: dict[str, str] | None, verdict: Verdict
) -> None:
    snapshot = replace(job(), tags=tags)
    judged = required_tag_skip(verdict, snapshot, TEAM)

    tagged = tags is not None and tags.get("team") == "ml-platform"
    if verdict.would_terminate and not tagged:
        assert judged.decision is Decision.SKIP
        assert judged.skip_reason == "not tagged team=ml-platform (terminateOnlyTagged)"
        assert not judged.would_terminate
        assert judged.dry_run == verdict.dry_run
        assert judged.age == verdict.age
    else:
        assert judged is verdict


@given(tags=st.one_of(st.none(), tag_maps), verdict=verdicts)
def test_no_required_tag_changes_nothing(tags: dict[str, str] | None, verdict: Verdict) -> None:
    assert required_tag_skip(verdict, replace(job(), tags=tags), None) is verdict


def test_an_unknown_job_carries_no_tag() -> None:
    judged = required_tag_skip(Verdict(Decision.TERMINATE), None, TEAM)
    assert judged.skip_reason == "not tagged team=ml-platform (terminateOnlyTagged)"


@given(
    key=st.text(min_size=1).filter(lambda k: "=" not in k and k.strip() == k and k != ""),
    value=st.text().filter(lambda v: v.strip() == v),
)
def test_required_tag_round_trips(key: str, value: str) -> None:
    parsed = RequiredTag.parse(f"{key}={value}")
    assert parsed == RequiredTag(key, value)
    assert RequiredTag.parse(str(parsed)) == parsed


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_required_tag_when_unset(text: str | None) -> None:
    assert RequiredTag.parse(text) is None


@pytest.mark.parametrize("text", ["team", "=ml-platform", " = x"])
def test_malformed_required_tag_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="terminateOnlyTagged: expected key=value"):
        RequiredTag.parse(text)
