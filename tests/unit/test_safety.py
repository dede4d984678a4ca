"""The safety rules, as a pure function of the job's current state, the request and the policies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from batch_terminator.contract import JobStatus, Source
from batch_terminator.logic.plan import Named, by_reason, plan
from batch_terminator.logic.safety import judge
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.models.request import TerminationRequest

JOB = "4c7599ae-0a82-49aa-ba5a-4727fcce14a8"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/gpu-training"


def job(
    status: str = "RUNNING", tags: dict[str, str] | None = None, queue: str = QUEUE, **extra: Any
) -> JobSnapshot:
    return JobSnapshot(
        job_id=JOB,
        job_name="train",
        job_queue=queue,
        status=JobStatus(status),
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        tags=tags if tags is not None else {},
        **extra,
    )


def request(**fields: Any) -> TerminationRequest:
    return TerminationRequest.model_validate({"jobId": JOB, "reason": "r", **fields})


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


def test_plan_decides_each_job_once_per_batch_and_groups_by_reason() -> None:
    first = Named("m1", request(reason="a"), Source.REQUEST, JOB)
    again = Named("m2", request(reason="b"), Source.REQUEST, JOB)
    planned = plan([first, again], {JOB: job()}, config())
    assert [p.verdict.terminate for p in planned] == [True, False]
    assert planned[1].verdict.skip_reason == "duplicate: also named by message m1 in this batch"
    assert by_reason(planned) == {"a": [JOB]}
