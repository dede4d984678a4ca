"""The safety rules, applied to every job before any termination, whatever path it came from."""

from __future__ import annotations

from dataclasses import dataclass

from batch_terminator.logic.matching import queue_matches
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.models.request import TerminationRequest


@dataclass(frozen=True)
class Verdict:
    """Terminate, or skip with the why. `dry_run` tells whether a dry run decided it."""

    terminate: bool
    skip_reason: str | None = None
    dry_run: bool = False
    # True when the job is terminated, or would be but for a dry run: what limits count.
    would_terminate: bool = False


TERMINATE = Verdict(terminate=True, would_terminate=True)


def is_protected(job: JobSnapshot, protect_tag: str) -> bool:
    return job.tags is not None and protect_tag in job.tags


def dry_run_level(request: TerminationRequest, config: PoliciesFile) -> str | None:
    """Which level asks for a dry run, if any: global, then policy, then request."""
    if config.settings.dry_run:
        return "global"
    policy = config.policy(request.policy) if request.policy else None
    if policy is not None and policy.dry_run:
        return f"policy {policy.name}"
    if request.dry_run:
        return "request"
    return None


def judge(job: JobSnapshot | None, request: TerminationRequest, config: PoliciesFile) -> Verdict:
    """Rules 1-3 and 5 of the design, re-checked against the job's current state."""
    settings = config.settings
    dry_run = dry_run_level(request, config)
    if job is None:
        return Verdict(
            False, "not found: DescribeJobs does not know this job id", dry_run is not None
        )
    if is_protected(job, settings.protect_tag):
        return Verdict(
            False, f"protected: job carries tag {settings.protect_tag}", dry_run is not None
        )
    if not queue_matches(job.job_queue, settings.job_queues):
        return Verdict(
            False,
            f"queue not allowed: {job.job_queue} is not in settings.jobQueues",
            dry_run is not None,
        )
    if job.status.is_final:
        return Verdict(False, f"already finished: {job.status.value}", dry_run is not None)
    if job.termination_in_progress:
        return Verdict(
            False,
            f"already terminating: {job.status.value} and marked terminated",
            dry_run is not None,
        )
    if request.if_status is not None and job.status not in request.if_status:
        wanted = ", ".join(s.value for s in request.if_status)
        return Verdict(
            False,
            f"precondition failed: status {job.status.value} is not in ifStatus [{wanted}]",
            dry_run is not None,
        )
    if dry_run is not None:
        return Verdict(False, f"dry run ({dry_run})", dry_run=True, would_terminate=True)
    return TERMINATE
