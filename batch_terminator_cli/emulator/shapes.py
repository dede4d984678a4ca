"""The JSON Batch returns for a job: JobDetail (DescribeJobs) and JobSummary (ListJobs).

Built field by field from the job rather than from moto's `describe()`, so that every field is
one Batch really sends, when it sends it:

- startedAt only once an attempt reached RUNNING; after a retry the top-level startedAt,
  stoppedAt and statusReason still describe the last finished attempt (JobDetail, botocore
  model: startedAt is "when the job transitioned from the STARTING state to the RUNNING state");
- `attempts[]` lists finished attempts only (AttemptDetail);
- a summary holds only JobSummary's members: never tags or jobQueue, and (see Behaviour) not
  always jobDefinition;
- a multi-node job shows `nodeProperties`; a node `X#i` shows `nodeDetails` and no tags: its
  tags are the job's (https://docs.aws.amazon.com/batch/latest/userguide/multi-node-parallel-jobs.html).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import botocore.session

from batch_terminator_cli.emulator.jobs import ALL_STATUSES, FINAL, Attempt, EmulatedJob


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@cache
def summary_members() -> frozenset[str]:
    """JobSummary's members in the installed botocore model: nothing else goes in a summary."""
    model = botocore.session.get_session().get_service_model("batch")
    return frozenset(model.shape_for("JobSummary").members)


def _started_at(job: EmulatedJob) -> datetime | None:
    if job.attempt_started_at is not None:
        return job.attempt_started_at
    return job.finished_attempts[-1].started_at if job.finished_attempts else None


def _stopped_at(job: EmulatedJob) -> datetime | None:
    if job._child_jobs and job.status in FINAL:
        return max((c.stopped_at for c in job.children if c.stopped_at), default=None)
    return job.stopped_at


def _status_reason(job: EmulatedJob) -> str | None:
    if job._child_jobs:
        return job.stop_reason if job.status in FINAL else None
    return job.timing.status_reason


def _common(job: EmulatedJob) -> dict[str, Any]:
    timing = job.timing
    cancelled, terminated = job.flags
    result: dict[str, Any] = {
        "jobArn": job.arn,
        "jobId": job.job_id,
        "jobName": job.job_name,
        "createdAt": _ms(job.job_created_at),
        "status": job.status,
        "isCancelled": cancelled,
        "isTerminated": terminated,
    }
    optional = {
        "statusReason": _status_reason(job),
        "startedAt": None if job._child_jobs else _started_at(timing),
        "stoppedAt": _stopped_at(timing),
    }
    result.update(
        {k: _ms(v) if isinstance(v, datetime) else v for k, v in optional.items() if v is not None}
    )
    array = _array_properties(job)
    if array:
        result["arrayProperties"] = array
    return result


def _array_properties(job: EmulatedJob) -> dict[str, Any]:
    if job._child_jobs:
        summary = dict.fromkeys(ALL_STATUSES, 0)
        for child in job.children:
            summary[str(child._status)] += 1
        return {"size": len(job.children), "statusSummary": summary}
    if job.parent is not None:
        return {"index": job.array_properties.get("index")}
    return {}


def _last_exit_code(job: EmulatedJob) -> int | None:
    timing = job.timing
    if timing.status in FINAL and timing.finished_attempts:
        return timing.finished_attempts[-1].exit_code
    return None


def job_summary(job: EmulatedJob, *, omit_definition: bool) -> dict[str, Any]:
    """A ListJobs JobSummary."""
    result = _common(job)
    if not omit_definition:
        result["jobDefinition"] = job.job_definition.arn
    exit_code = _last_exit_code(job)
    if exit_code is not None:
        result["container"] = {"exitCode": exit_code}
    if job.nodes:
        result["nodeProperties"] = {"numNodes": len(job.nodes)}
    elif job.main_job is not None:
        result["nodeProperties"] = {
            "isMainNode": job.main_job.main_node is job,
            "numNodes": len(job.main_job.nodes or []),
            "nodeIndex": job.node_index,
        }
    allowed = summary_members()
    return {key: value for key, value in result.items() if key in allowed}


def job_detail(job: EmulatedJob) -> dict[str, Any]:
    """A DescribeJobs JobDetail."""
    result = _common(job)
    timing = job.timing
    result.update(
        {
            "jobQueue": job.job_queue.arn,
            "jobDefinition": job.job_definition.arn,
            "dependsOn": list(job.depends_on or []),
            "parameters": dict(job.parameters),
            "attempts": [_attempt(a) for a in timing.finished_attempts],
            "platformCapabilities": list(job.job_definition.platform_capabilities or []),
            "propagateTags": bool(job.job_definition.propagate_tags),
        }
    )
    if job.retry_strategy:
        result["retryStrategy"] = job.retry_strategy
    if job.timeout:
        result["timeout"] = job.timeout
    tags = job.backend.list_tags_for_resource(job.arn)
    if tags and job.main_job is None:  # nodes carry no tags of their own
        result["tags"] = tags
    if job.nodes:
        properties = dict(job.job_definition.node_properties or {})
        properties["numNodes"] = len(job.nodes)
        result["nodeProperties"] = properties
    elif job.main_job is not None:
        result["nodeDetails"] = {
            "nodeIndex": job.node_index,
            "isMainNode": job.main_job.main_node is job,
        }
        result["container"] = _node_container(job)
    elif job.job_definition.container_properties is not None and not job._child_jobs:
        result["container"] = _container(job)
    return result


def _attempt(attempt: Attempt) -> dict[str, Any]:
    container: dict[str, Any] = {}
    if attempt.exit_code is not None:
        container["exitCode"] = attempt.exit_code
    if attempt.log_stream is not None:
        container["logStreamName"] = attempt.log_stream
    result: dict[str, Any] = {
        "container": container,
        "stoppedAt": _ms(attempt.stopped_at),
        "statusReason": attempt.reason,
    }
    if attempt.started_at is not None:
        result["startedAt"] = _ms(attempt.started_at)
    return result


def _container(job: EmulatedJob) -> dict[str, Any]:
    details: dict[str, Any] = job._container_details()
    details.pop("logStreamName", None)
    if _started_at(job) is not None:
        details["logStreamName"] = job._stream_name
    exit_code = _last_exit_code(job)
    if exit_code is not None:
        details["exitCode"] = exit_code
    return details


def _node_container(job: EmulatedJob) -> dict[str, Any]:
    """The container of the node range that covers this node ("0:", "1:3", "2", ...)."""
    assert job.main_job is not None
    assert job.node_index is not None
    count = len(job.main_job.nodes or [])
    properties = job.job_definition.node_properties or {}
    for node_range in properties.get("nodeRangeProperties", []):
        start, colon, end = str(node_range.get("targetNodes", "0:")).partition(":")
        first = int(start or 0)
        last = int(end or count - 1) if colon else first
        if first <= job.node_index <= last:
            details = dict(node_range.get("container") or {})
            break
    else:
        details = {}
    if _started_at(job) is not None:
        details["logStreamName"] = job._stream_name
    exit_code = _last_exit_code(job)
    if exit_code is not None:
        details["exitCode"] = exit_code
    return details
