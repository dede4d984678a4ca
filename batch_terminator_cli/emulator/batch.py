"""moto's Batch, made to behave like the real service where this product depends on it.

moto (with `use_docker: False`) marks every job SUCCEEDED at submit, has no TerminateJobs, no
ListJobs pagination, only the JOB_NAME filter, no multi-node nodes, and ignores unknown ids
silently. Here (the jobs themselves are in `jobs.py`, their JSON in `shapes.py`, the HTTP side
in `responses.py`, the controls in `control.py`):

- jobs stay where they are (SUBMITTED after SubmitJob) until `BatchControl` moves them;
- TerminateJob / TerminateJobs flag a job isCancelled (before STARTING) or isTerminated at once,
  and the job lingers in its status before it becomes FAILED with the reason (see Behaviour);
  array parents pass the stop to their unfinished children, multi-node jobs to their nodes;
  unknown ids succeed silently: "Jobs that can't be found are treated as successfully
  processed" (TerminateJobs, botocore model);
- DescribeJobs takes at most 100 ids and may not return a job created moments ago;
- ListJobs needs exactly one of jobQueue, arrayJobId, multiNodeJobId, pages, and returns bare
  JobSummary objects (`listing.py`);
- SubmitJob keeps retryStrategy, dependsOn and nodeOverrides.numNodes; a `multinode` job
  definition makes nodes `X#0`..`X#N-1`, listed by multiNodeJobId, never in queue listings;
- faults can be injected (`faults.py`): a call throttled or failing with a server error, one job
  in TerminateJobs' `errors[]`, a job DescribeJobs leaves out, a call that times out;
- every status change publishes a `Batch Job State Change` event to the emulated EventBridge
  (`batch_events.py`).
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any, Final

from moto.batch import urls as batch_urls
from moto.batch.exceptions import ClientException
from moto.batch.models import BatchBackend
from moto.core.base_backend import BackendDict

from batch_terminator_cli.emulator.batch_events import BatchEvents
from batch_terminator_cli.emulator.behaviour import Behaviour
from batch_terminator_cli.emulator.faults import Faults
from batch_terminator_cli.emulator.jobs import BEFORE_STARTING, EmulatedJob
from batch_terminator_cli.emulator.listing import page, select
from batch_terminator_cli.emulator.shapes import job_detail, job_summary
from batch_terminator_cli.emulator.truth import TerminationEvent

_JOB_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:#_-]{0,127}$")
MAX_ARRAY_SIZE: Final = 10_000


class EmulatedBatchBackend(BatchBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.behaviour = Behaviour()
        self.faults = Faults()
        self.termination_log: list[TerminationEvent] = []
        # One call at a time: reads move lingering jobs on, and the local server is threaded.
        self.lock = threading.RLock()
        self.events = BatchEvents(account_id, region_name, self.lock)

    @property
    def _url_module(self) -> Any:
        return batch_urls

    # -- jobs ------------------------------------------------------------------------------
    def new_job(
        self, name: str, definition: Any, queue: Any, *, listed: bool = True, **kwargs: Any
    ) -> EmulatedJob:
        """A job in `_jobs`; `listed=False` for array children and nodes, which queue listings
        leave out."""
        job = EmulatedJob(
            name,
            definition,
            queue,
            self,
            log_backend=self.logs_backend,
            container_overrides=kwargs.pop("container_overrides", None),
            eks_properties_override=kwargs.pop("eks_properties_override", None),
            depends_on=kwargs.pop("depends_on", None),
            all_jobs=self._jobs,
            timeout=kwargs.pop("timeout", None),
            array_properties=kwargs.pop("array_properties", None) or {},
            parameters=kwargs.pop("parameters", None),
            **kwargs,
        )
        if not listed and queue.jobs and queue.jobs[-1] is job:
            queue.jobs.pop()  # moto's Job appended itself to the queue
        self._jobs[job.job_id] = job
        return job

    def submit_job(
        self,
        job_name: str,
        job_def_id: str,
        job_queue: str,
        array_properties: dict[str, Any],
        depends_on: list[dict[str, str]] | None = None,
        container_overrides: dict[str, Any] | None = None,
        eks_properties_override: dict[str, Any] | None = None,
        timeout: dict[str, int] | None = None,
        parameters: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        retry_strategy: dict[str, Any] | None = None,
        node_overrides: dict[str, Any] | None = None,
    ) -> tuple[str, str, str]:
        with self.lock:
            self.faults.count("SubmitJob")
            definition = self.get_job_definition(job_def_id)
            if definition is None:
                raise ClientException(f"Job definition {job_def_id} does not exist")
            queue = self.get_job_queue(job_queue)
            if queue is None:
                raise ClientException(f"Job queue {job_queue} does not exist")
            size = int((array_properties or {}).get("size", 0))
            if size and not 2 <= size <= MAX_ARRAY_SIZE:
                raise ClientException(f"array size must be between 2 and {MAX_ARRAY_SIZE}")
            common: dict[str, Any] = {
                "container_overrides": container_overrides,
                "eks_properties_override": eks_properties_override,
                "depends_on": depends_on,
                "timeout": timeout,
                "parameters": parameters,
                # "The retry strategy to use for failed jobs that are submitted with this job
                # definition. Any retry strategy that's specified during a SubmitJob operation
                # overrides" it (RegisterJobDefinitionRequest.retryStrategy, botocore model).
                "retry_strategy": retry_strategy or definition.retry_strategy or None,
            }
            job = self.new_job(
                job_name, definition, queue, array_properties=array_properties, tags=tags, **common
            )
            if size:
                self._add_children(job, size, tags, common)
            elif definition.type == "multinode":
                self._add_nodes(job, node_overrides, common)
            return job_name, job.job_id, job.arn

    def _add_children(
        self, job: EmulatedJob, size: int, tags: dict[str, str] | None, common: dict[str, Any]
    ) -> None:
        children = []
        for index in range(size):
            child = self.new_job(
                job.job_name,
                job.job_definition,
                job.job_queue,
                listed=False,
                array_properties={"index": index},
                provided_job_id=f"{job.job_id}:{index}",
                tags=tags,  # children are tagged as their parent is
                **common,
            )
            child.parent = job
            child.restart(job.job_created_at)
            children.append(child)
        job._child_jobs = children  # type: ignore[assignment]

    def _add_nodes(
        self, job: EmulatedJob, overrides: dict[str, Any] | None, common: dict[str, Any]
    ) -> None:
        properties = job.job_definition.node_properties or {}
        count = int((overrides or {}).get("numNodes") or properties.get("numNodes") or 0)
        main = int(properties.get("mainNode", 0))
        if not 0 <= main < count:
            raise ClientException(f"mainNode {main} must be less than numNodes {count}")
        nodes = []
        for index in range(count):
            node = self.new_job(
                job.job_name,
                job.job_definition,
                job.job_queue,
                listed=False,
                provided_job_id=f"{job.job_id}#{index}",
                **common,
            )
            node.main_job, node.node_index = job, index
            node.restart(job.job_created_at)
            nodes.append(node)
        job.nodes, job.main_node_index = nodes, main

    def find(self, identifier: str) -> EmulatedJob | None:
        job = self._jobs.get(identifier) or self._jobs.get(identifier.rsplit("/", 1)[-1])
        return job if isinstance(job, EmulatedJob) else None

    def describe_jobs(self, jobs: list[str] | None) -> list[dict[str, Any]]:
        with self.lock:
            self.faults.count("DescribeJobs")
            wanted = list(jobs or [])
            if len(wanted) > 100:
                raise ClientException("Up to 100 job IDs may be passed to DescribeJobs")
            now = datetime.now(UTC)
            found = [
                job
                for job in map(self.find, wanted)
                if job is not None
                and not self.faults.hides(job.job_id)
                and not self._lagging(job, now)
            ]
            details = [job_detail(job) for job in found]
            with self.events.scope():
                for job in found:
                    job.observe()
            return details

    def _lagging(self, job: EmulatedJob, now: datetime) -> bool:
        """Eventual consistency: a job created moments ago is not returned yet (Behaviour)."""
        behaviour = self.behaviour
        if job.describe_lag_used >= behaviour.describe_lag_reads:
            return False
        if (now - job.job_created_at).total_seconds() >= behaviour.describe_lag_seconds:
            return False
        job.describe_lag_used += 1
        return True

    def list_jobs_page(
        self,
        job_queue: str | None,
        array_job_id: str | None,
        multi_node_job_id: str | None,
        job_status: str | None,
        filters: list[dict[str, Any]] | None,
        max_results: int | None,
        next_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self.lock:
            self.faults.count("ListJobs")
            candidates = self._list_candidates(job_queue, array_job_id, multi_node_job_id)
            chosen, token = page(select(candidates, job_status, filters), max_results, next_token)
            behaviour = self.behaviour
            summaries = [
                job_summary(job, omit_definition=behaviour.omits_job_definition(job.job_id))
                for job in chosen
            ]
            with self.events.scope():
                for job in chosen:
                    job.observe()
            return summaries, token

    def _list_candidates(
        self, job_queue: str | None, array_job_id: str | None, multi_node_job_id: str | None
    ) -> list[EmulatedJob]:
        given = [value for value in (job_queue, array_job_id, multi_node_job_id) if value]
        if len(given) != 1:
            raise ClientException("Specify exactly one of jobQueue, arrayJobId, multiNodeJobId")
        if array_job_id or multi_node_job_id:
            owner = self.find(str(array_job_id or multi_node_job_id))
            if owner is None:
                return []
            return owner.children if array_job_id else list(owner.nodes or [])
        queue = self.get_job_queue(str(job_queue))
        if queue is None:
            raise ClientException(f"Job queue {job_queue} does not exist")
        return [job for job in queue.jobs if isinstance(job, EmulatedJob)]

    # -- stopping jobs ---------------------------------------------------------------------
    def stop(self, job_id: str, reason: str, operation: str) -> list[TerminationEvent]:
        """Flag `job_id` (and its unfinished children or nodes) as stopping; record each job
        stopped."""
        job = self.find(job_id)
        if job is None or not job.stoppable:
            return []  # unknown, finished or already stopping: a successful no-op
        if operation == "CancelJob" and job.status not in BEFORE_STARTING:
            return []  # CancelJob leaves started jobs alone, and still succeeds
        main = job.main_node
        # The main node last: when it fails the job is over and its other nodes stop with it.
        members = sorted(job.members, key=lambda member: member is main)
        targets = [target for target in (job, *members) if target.stoppable]
        now = datetime.now(UTC)
        # Only jobs that run a container are stopped: children and nodes, not the array parent
        # or the multi-node job whose status follows them.
        events = [
            TerminationEvent(target.job_id, operation, job_id, reason, now, target.truth())
            for target in targets
            if not target.members
        ]
        with self.events.scope():
            for target in targets:
                target.mark_stopping(reason, self.behaviour.linger_reads)
        self.termination_log.extend(events)
        return events

    def terminate_job(self, job_id: str, reason: str) -> None:
        with self.lock:
            self.faults.count("TerminateJob")
            _check_reason(reason)
            if not job_id:
                raise ClientException("'jobId' is a required field")
            self.stop(job_id, reason, "TerminateJob")

    def terminate_jobs(
        self, job_ids: list[str], reason: str
    ) -> tuple[list[str], list[dict[str, str]]]:
        with self.lock:
            self.faults.count("TerminateJobs")
            _check_reason(reason)
            if not 1 <= len(job_ids) <= 50:
                raise ClientException("jobs must contain between 1 and 50 job IDs")
            successful: list[str] = []
            errors: list[dict[str, str]] = []
            for job_id in job_ids:
                injected = self.faults.bulk_error(job_id)
                if injected is not None:
                    errors.append(
                        {"job": job_id, "code": injected.code, "message": injected.message}
                    )
                elif not _JOB_ID.match(job_id):
                    errors.append(
                        {
                            "job": job_id,
                            "code": "ValidationException",
                            "message": "malformed job ID",
                        }
                    )
                else:
                    self.stop(job_id, reason, "TerminateJobs")
                    successful.append(job_id)  # unknown ids too
            return successful, errors

    def cancel_job(self, job_id: str, reason: str) -> None:
        """CancelJob silently does nothing to jobs that have started: that is why nobody here uses it."""
        with self.lock:
            self.faults.count("CancelJob")
            self.stop(job_id, reason, "CancelJob")

    def settle(self) -> list[str]:
        """Every termination lands now; the ids of the jobs that were lingering."""
        with self.lock:
            lingering = [
                job
                for job in self._jobs.values()
                if isinstance(job, EmulatedJob) and job.pending_stop is not None
            ]
            now = datetime.now(UTC)
            with self.events.scope():
                for job in lingering:
                    job.finish_stopping(now)  # a main node may have stopped later nodes already
            return [job.job_id for job in lingering]


def _check_reason(reason: str | None) -> None:
    if not reason:
        raise ClientException("'reason' is a required field")
    if len(reason) > 1024:
        raise ClientException("reason must be at most 1024 characters")


emulated_batch_backends: BackendDict[EmulatedBatchBackend] = BackendDict(
    EmulatedBatchBackend, "batch"
)
