"""Selector requests: which jobs a `{"selector": {...}}` request names. Pure.

`could_match` is asked of ListJobs summaries (unknown facts pass) to choose what to describe;
`selector_selects` decides on described facts, when the selector is expanded and again, on the
fresh state, before the terminator acts.
"""

from __future__ import annotations

from datetime import datetime

from batch_terminator.logic.ages import age_in_status, at_most_age
from batch_terminator.logic.durations import format_duration, format_limit
from batch_terminator.logic.matching import job_definition_matches, queue_matches, tags_match
from batch_terminator.logic.rules import Judgement
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.request import Selector


def _created_in_window(job: JobSnapshot, selector: Selector) -> bool:
    created = job.created_at
    if selector.created_before is not None and (
        created is None or not created < selector.created_before
    ):
        return False
    return selector.created_after is None or (
        created is not None and created > selector.created_after
    )


def could_match(job: JobSnapshot, selector: Selector, now: datetime) -> bool:
    """Might this listed job match once described? Only what the summary tells rules it out."""
    if job.status not in selector.statuses:
        return False
    if job.job_queue is not None and not queue_matches(job.job_queue, selector.job_queues):
        return False
    if selector.job_name_prefix is not None and not job.job_name.startswith(
        selector.job_name_prefix
    ):
        return False
    if (
        selector.job_definition is not None
        and job.job_definition is not None
        and not job_definition_matches(job.job_definition, [selector.job_definition])
    ):
        return False
    if job.created_at is not None and not _created_in_window(job, selector):
        return False
    bound = at_most_age(job, now)
    return selector.min_age is None or bound is None or not bound < selector.min_age


def selector_selects(job: JobSnapshot, selector: Selector, now: datetime) -> Judgement:
    """Every key the selector gives must hold on the job's described facts."""
    if not job.described:
        return Judgement(False, why_not="facts unknown: DescribeJobs did not return the job")
    if job.status not in selector.statuses:
        wanted = ", ".join(s.value for s in selector.statuses)
        return Judgement(False, why_not=f"status {job.status.value} is not in [{wanted}]")
    if job.job_queue is None or not queue_matches(job.job_queue, selector.job_queues):
        return Judgement(False, why_not=f"queue {job.job_queue} is not one of the selector's")
    if selector.job_name_prefix is not None and not job.job_name.startswith(
        selector.job_name_prefix
    ):
        return Judgement(False, why_not="job name does not start with the selector's prefix")
    if selector.job_definition is not None and (
        job.job_definition is None
        or not job_definition_matches(job.job_definition, [selector.job_definition])
    ):
        return Judgement(False, why_not=f"job definition {job.job_definition} does not match")
    if not _created_in_window(job, selector):
        return Judgement(False, why_not="createdAt is outside the selector's window")
    if selector.tags is not None and (job.tags is None or not tags_match(job.tags, selector.tags)):
        return Judgement(False, why_not="tags do not match")
    age = age_in_status(job, now)
    if selector.min_age is not None:
        if age is None:
            return Judgement(
                False, why_not=f"age in {job.status.value} unknown: Batch does not give it"
            )
        if age < selector.min_age:
            return Judgement(
                False,
                age=age,
                why_not=(
                    f"{job.status.value} {format_duration(age)} is under minAge "
                    f"{format_limit(selector.min_age)}"
                ),
            )
    return Judgement(True, age=age, limit=selector.min_age)
