"""The HTTP side of the emulated Batch: moto's Batch responses, served from the emulated backend
(`batch.py`), plus what moto's lacks: TerminateJobs, ListJobs paging and multiNodeJobId, the
SubmitJob fields moto drops (retryStrategy, nodeOverrides), and injected timeouts."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from botocore.loaders import Loader
from moto.batch import urls as batch_urls
from moto.batch.responses import BatchResponse
from moto.core.common_types import TYPE_RESPONSE

from batch_terminator_cli.emulator import dynamodb, eventbridge, scheduler, sqs, sqs_move
from batch_terminator_cli.emulator.batch import EmulatedBatchBackend, emulated_batch_backends
from batch_terminator_cli.emulator.faults import time_out


@cache
def _operation_names() -> dict[str, str]:
    """URL action (`terminatejobs`) to operation name (`TerminateJobs`), from the Batch model the
    installed botocore ships. Not through a session: a session honours AWS_DATA_PATH, which tests
    point at an older model to play an old Lambda runtime, and this map is built once."""
    model = Loader().load_service_model("batch", "service-2")
    return {name.lower(): name for name in model["operations"]}


class EmulatedBatchResponse(BatchResponse):
    """moto's Batch responses, served from the emulated backend, plus TerminateJobs, paging,
    multiNodeJobId, the SubmitJob fields moto drops, and injected timeouts."""

    @property
    def batch_backend(self) -> EmulatedBatchBackend:
        return emulated_batch_backends[self.current_account][self.region]

    def call_action(self) -> TYPE_RESPONSE:
        operation = _operation_names().get(self._get_action(), self._get_action())
        applied = self.batch_backend.faults.take_timeout(operation)
        if applied is False:
            self.batch_backend.faults.calls[operation] += 1  # it was sent, and never answered
            time_out(self.normalized_request)
            return 500, {}, ""
        response = super().call_action()
        if applied:
            time_out(self.normalized_request)  # it took effect; the answer is lost on the way back
        return response

    def submitjob(self) -> str:
        name, job_id, arn = self.batch_backend.submit_job(
            self._get_param("jobName"),
            self._get_param("jobDefinition"),
            self._get_param("jobQueue"),
            array_properties=self._get_param("arrayProperties", {}),
            depends_on=self._get_param("dependsOn"),
            container_overrides=self._get_param("containerOverrides"),
            eks_properties_override=self._get_param("eksPropertiesOverride"),
            timeout=self._get_param("timeout"),
            parameters=self._get_param("parameters"),
            tags=self._get_param("tags"),
            retry_strategy=self._get_param("retryStrategy"),
            node_overrides=self._get_param("nodeOverrides"),
        )
        return json.dumps({"jobId": job_id, "jobName": name, "jobArn": arn})

    def listjobs(self) -> str:
        summaries, token = self.batch_backend.list_jobs_page(
            job_queue=self._get_param("jobQueue"),
            array_job_id=self._get_param("arrayJobId"),
            multi_node_job_id=self._get_param("multiNodeJobId"),
            job_status=self._get_param("jobStatus"),
            filters=self._get_param("filters"),
            max_results=self._get_param("maxResults"),
            next_token=self._get_param("nextToken"),
        )
        result: dict[str, Any] = {"jobSummaryList": summaries}
        if token:
            result["nextToken"] = token
        return json.dumps(result)

    def terminatejobs(self) -> str:
        successful, errors = self.batch_backend.terminate_jobs(
            list(self._get_param("jobs") or []), self._get_param("reason")
        )
        return json.dumps({"successful": successful, "errors": errors})


_installed = False


def install() -> None:
    """Route moto's Batch URLs to the emulated backend, complete moto's EventBridge events and
    Scheduler, let its SQS send in constant time, and make its DynamoDB item writes atomic
    under concurrent callers (`dynamodb.py`) (idempotent; before any mock starts)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return
    dynamodb.install()
    eventbridge.install()
    scheduler.install()
    sqs.install()
    sqs_move.install()
    for path in list(batch_urls.url_paths):
        batch_urls.url_paths[path] = EmulatedBatchResponse.dispatch
    batch_urls.url_paths["{0}/v1/terminatejobs$"] = EmulatedBatchResponse.dispatch
    _installed = True
