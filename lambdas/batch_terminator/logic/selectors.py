"""Selector requests: which listed jobs a `{"selector": {...}}` request names."""

from __future__ import annotations

from datetime import datetime

from batch_terminator.logic.evaluate import age_of
from batch_terminator.logic.matching import job_definition_matches, queue_matches, tags_match
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.request import Selector


def selector_matches(
    job: JobSnapshot, selector: Selector, now: datetime, *, tags_known: bool = True
) -> bool:
    """Every key the selector gives must match; `tags_known=False` lets tag conditions pass."""
    if job.status not in selector.statuses or not queue_matches(job.job_queue, selector.job_queues):
        return False
    if selector.job_name_prefix is not None and not job.job_name.startswith(
        selector.job_name_prefix
    ):
        return False
    if selector.job_definition is not None and not job_definition_matches(
        job.job_definition, [selector.job_definition]
    ):
        return False
    created = job.created_at
    if selector.created_before is not None and (
        created is None or not created < selector.created_before
    ):
        return False
    if selector.created_after is not None and (
        created is None or not created > selector.created_after
    ):
        return False
    if selector.min_age is not None:
        age = age_of(job, now)
        if age is None or age < selector.min_age:
            return False
    if selector.tags is not None and tags_known:
        return job.tags is not None and tags_match(job.tags, selector.tags)
    return True
