"""A policy run: list what the policies need, evaluate, turn selections into requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batch_terminator.batch_api import BatchApi
from batch_terminator.contract import TERMINATE_JOBS_MAX_IDS, JobStatus, Source
from batch_terminator.listing import Listing, find_jobs, resolve_queues, statuses_for
from batch_terminator.logic.evaluate import Evaluation, Selection, evaluate
from batch_terminator.logic.matching import queue_matches
from batch_terminator.logic.rules import (
    TAG_LIMIT_STATUSES,
    AlarmFired,
    BudgetAlerted,
    Scheduled,
    Trigger,
    applicable_policies,
    could_select,
)
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile

REQUESTED_BY = {Source.SWEEP: "batch-terminator/sweeper", Source.ALARM: "batch-terminator/brake"}


@dataclass
class PolicyRun:
    trigger: Trigger
    queues: list[str]
    listing: Listing
    evaluation: Evaluation

    @property
    def source(self) -> Source:
        return Source.SWEEP if isinstance(self.trigger, Scheduled) else Source.ALARM

    def requests(self, run_id: str) -> list[dict[str, Any]]:
        """One request per array (a parent stands for its children) and per up to 50 jobs of one
        queue, policy, reason and status: one message is one TerminateJobs call ("up to 50 jobs
        in a job queue", Batch API reference), however SQS orders and batches the messages."""
        by = REQUESTED_BY[self.source]
        requests: list[dict[str, Any]] = []
        groups: dict[tuple[Any, ...], list[Selection]] = {}
        for selection in self.evaluation.selections:
            job = selection.job
            if selection.children or job.is_array_parent or job.job_queue is None:
                requests.append(to_request(selection, run_id, by))
                continue
            key = (
                job.job_queue,
                selection.policy,
                selection.reason,
                selection.statuses,
                selection.dry_run,
            )
            groups.setdefault(key, []).append(selection)
        for members in groups.values():
            for start in range(0, len(members), TERMINATE_JOBS_MAX_IDS):
                chunk = members[start : start + TERMINATE_JOBS_MAX_IDS]
                request = to_request(chunk[0], run_id, by)
                if len(chunk) > 1:
                    del request["jobId"]
                    request = {"jobIds": [s.job.job_id for s in chunk], **request}
                requests.append(request)
        return requests

    def summary(self) -> dict[str, Any]:
        """The one summary log line of a run: per policy, evaluated, matched, enqueued, capped."""
        return {
            "trigger": trigger_text(self.trigger),
            "queues": len(self.queues),
            "jobs_listed": self.listing.listed,
            "jobs_described": self.listing.described,
            "jobs_evaluated": self.evaluation.evaluated,
            "protected": self.evaluation.protected,
            "already_terminating": self.evaluation.terminating,
            "facts_unknown": self.evaluation.unknown + len(self.listing.unknown),
            "invalid_max_runtime_tags": self.evaluation.invalid_tags,
            "errors": self.evaluation.errors,
            "policies": {
                name: {
                    "evaluated": self.evaluation.evaluated,
                    "matched": count.matched,
                    "enqueued": count.selected,
                    "capped": count.capped,
                    "max_per_run": count.cap,
                }
                for name, count in self.evaluation.counts.items()
            },
        }


def trigger_text(trigger: Trigger) -> str:
    if isinstance(trigger, AlarmFired):
        return f"alarm {trigger.alarm_name}"
    if isinstance(trigger, BudgetAlerted):
        return f"budget {trigger.budget_name}"
    return "schedule"


def to_request(selection: Selection, run_id: str, requested_by: str) -> dict[str, Any]:
    """The request the terminator acts on. It re-reads the job and terminates it only if it is
    still in the status it was judged in (`ifStatus`; an array's children's statuses) and the
    named policy would still select it."""
    request: dict[str, Any] = {
        "jobId": selection.job.job_id,
        "reason": selection.reason,
        "policy": selection.policy,
        "ifStatus": [s.value for s in selection.statuses],
        "requestId": run_id,
        "requestedBy": requested_by,
    }
    if selection.dry_run:
        request["dryRun"] = True
    return request


def run_policies(
    api: BatchApi, policies: PoliciesFile, now: datetime, trigger: Trigger
) -> PolicyRun:
    """List what the policies need, describe what could be selected, evaluate."""
    active = applicable_policies(policies, trigger)
    tag_limits = isinstance(trigger, Scheduled) and policies.settings.max_runtime_tag
    needs: list[tuple[list[str] | None, list[JobStatus] | tuple[JobStatus, ...]]] = [
        (p.match.job_queues, p.when.status) for p in active
    ]
    if tag_limits:
        needs.append((None, TAG_LIMIT_STATUSES))
    queues = resolve_queues(api, policies.settings.job_queues) if needs else []
    queue_statuses = {q: s for q in queues if (s := statuses_for(q, needs))}

    def look(job: JobSnapshot) -> bool:
        if job.job_queue is not None and not queue_matches(
            job.job_queue, policies.settings.job_queues
        ):
            return False
        if tag_limits and job.status in TAG_LIMIT_STATUSES:
            return True  # its tags, which only DescribeJobs gives, may carry a limit
        return any(could_select(p, job, now) for p in active)

    listing = find_jobs(api, queue_statuses, look)
    evaluation = evaluate(listing.jobs, listing.families, policies, now, trigger)
    return PolicyRun(trigger, queues, listing, evaluation)
