"""The safety rules and a request's preconditions, re-checked on a job's fresh DescribeJobs state
before any termination, whatever path the request came from. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from batch_terminator.logic.ages import age_in_status
from batch_terminator.logic.matching import queue_matches
from batch_terminator.logic.rules import rule_selects
from batch_terminator.logic.selectors import selector_selects
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.models.request import TerminationRequest


class Decision(StrEnum):
    TERMINATE = "terminate"
    SKIP = "skip"
    # Not decided yet: SQS delivers the request again (a job DescribeJobs does not see yet).
    RETRY = "retry"


@dataclass(frozen=True)
class Verdict:
    """Terminate, skip with the why, or retry with the why. `dry_run` tells whether a dry run
    was asked for; `held_by_dry_run` that the job would be terminated but for it."""

    decision: Decision
    why: str | None = None
    dry_run: bool = False
    held_by_dry_run: bool = False
    # The age a policy or a selector's minAge decided on (audit `age_seconds`).
    age: timedelta | None = None

    @property
    def terminate(self) -> bool:
        return self.decision is Decision.TERMINATE

    @property
    def would_terminate(self) -> bool:
        """Terminated, or would be but for a dry run: what limits and caps count."""
        return self.terminate or self.held_by_dry_run

    @property
    def skip_reason(self) -> str | None:
        return self.why if self.decision is Decision.SKIP else None


def skip(why: str, dry_run: bool = False, age: timedelta | None = None) -> Verdict:
    return Verdict(Decision.SKIP, why, dry_run=dry_run, age=age)


def is_protected(job: JobSnapshot, protect_tag: str) -> bool:
    """Unknown tags are not "no protect tag": only described jobs can be judged unprotected."""
    return job.tags is None or protect_tag in job.tags


@dataclass(frozen=True)
class RequiredTag:
    """The stack's terminateOnlyTagged: only jobs carrying tag `key` with value `value` may be
    terminated (TERMINATE_ONLY_TAGGED, `key=value`)."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str | None) -> RequiredTag | None:
        """`team=ml-platform` -> RequiredTag("team", "ml-platform"); None or blank -> None.
        Raises ValueError when there is no `=` or the key is empty (the value may be empty, as
        a Batch tag's may)."""
        if text is None or not text.strip():
            return None
        key, separator, value = text.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"terminateOnlyTagged: expected key=value, got {text!r}")
        return cls(key.strip(), value.strip())

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


def carries(job: JobSnapshot | None, required: RequiredTag) -> bool:
    """Whether the job's tags (an array child's and an MNP node's are its parent's, as for the
    protect tag) hold `required`. Unknown tags carry nothing."""
    return job is not None and job.tags is not None and job.tags.get(required.key) == required.value


def required_tag_skip(
    verdict: Verdict, job: JobSnapshot | None, required: RequiredTag | None
) -> Verdict:
    """`verdict`, unless it would terminate the job (or would but for a dry run) and the job
    lacks the required tag: then a skip that says so, keeping the verdict's dry run and age."""
    if required is None or not verdict.would_terminate or carries(job, required):
        return verdict
    why = f"not tagged {required} (terminateOnlyTagged)"
    return skip(why, verdict.dry_run, verdict.age)


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


def safety_skip(
    job: JobSnapshot, config: PoliciesFile, dry_run: bool, *, parent_of_array: bool = False
) -> Verdict | None:
    """Rules 1-3 on the job itself: unknown facts, the protect tag, the allowed queues, and a job
    that is finished or already being terminated. None when none of them stops it.

    An array parent marked as being terminated may still have children running (a CancelJob
    stops none that have started): `parent_of_array` leaves that to its children's own marks."""
    settings = config.settings
    if not job.described:
        return skip("facts unknown: DescribeJobs did not return the job", dry_run)
    if is_protected(job, settings.protect_tag):
        return skip(f"protected: job carries tag {settings.protect_tag}", dry_run)
    if job.job_queue is None or not queue_matches(job.job_queue, settings.job_queues):
        return skip(f"queue not allowed: {job.job_queue} is not in settings.jobQueues", dry_run)
    if job.status.is_final:
        return skip(f"already finished: {job.status.value}", dry_run)
    if job.termination_in_progress and not parent_of_array:
        marked = "cancelled" if job.is_cancelled else "terminated"
        return skip(f"already terminating: {job.status.value} and marked {marked}", dry_run)
    return None


def judge(
    job: JobSnapshot | None,
    request: TerminationRequest,
    config: PoliciesFile,
    now: datetime,
    *,
    last_delivery: bool = True,
) -> Verdict:
    """Safety rules 1-3 and 5 of the design and the request's preconditions (`ifStatus`, its
    selector, the policy it names), on the job's current described state.

    `job` is None when DescribeJobs did not return it. Batch is eventually consistent (a job just
    submitted may not be visible yet), so that is retried until the last delivery.
    """
    dry_run = dry_run_level(request, config) is not None
    if job is None:
        if not last_delivery:
            return Verdict(
                Decision.RETRY,
                "not found yet: DescribeJobs does not know this job id (it may have just been "
                "submitted); the request is delivered again",
                dry_run,
            )
        return skip("not found: DescribeJobs does not know this job id", dry_run)
    if job.described and job.tags is None:
        # A child or node whose parent (main job) DescribeJobs did not return: its protect tag
        # and queue are unknown. Eventually consistent: retried until the last delivery.
        why = (
            "facts unknown: DescribeJobs did not return the array parent or multi-node job it "
            "belongs to"
        )
        if not last_delivery:
            return Verdict(Decision.RETRY, f"{why}; the request is delivered again", dry_run)
        return skip(why, dry_run)
    unsafe = safety_skip(job, config, dry_run)
    if unsafe is not None:
        return unsafe
    if request.if_status is not None and job.status not in request.if_status:
        wanted = ", ".join(s.value for s in request.if_status)
        return skip(
            f"precondition failed: status {job.status.value} is not in ifStatus [{wanted}]",
            dry_run,
        )
    age: timedelta | None = None
    if request.selector is not None:
        judged = selector_selects(job, request.selector, now)
        if not judged.selected:
            return skip(f"precondition failed: selector: {judged.why_not}", dry_run, judged.age)
        age = judged.age  # what minAge decided on, and what "oldest first" orders by
    if request.policy is not None:
        judged = rule_selects(request.policy, job, config, now)
        if not judged.selected:
            return skip(
                f"precondition failed: policy {request.policy} would not select the job now: "
                f"{judged.why_not}",
                dry_run,
                judged.age,
            )
        age = judged.age if judged.age is not None else age_in_status(job, now)
    if dry_run:
        level = dry_run_level(request, config)
        return Verdict(Decision.SKIP, f"dry run ({level})", True, held_by_dry_run=True, age=age)
    return Verdict(Decision.TERMINATE, age=age)
