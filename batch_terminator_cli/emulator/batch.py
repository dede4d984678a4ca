"""moto's Batch, made to behave like the real service where this product depends on it.

moto (with `use_docker: False`) marks every job SUCCEEDED at submit, has no TerminateJobs, no
ListJobs pagination, only the JOB_NAME filter, and ignores unknown ids silently. Here:

- jobs stay where they are (SUBMITTED after SubmitJob) until moved with `BatchControl.set_state`,
  with controllable createdAt / startedAt;
- TerminateJob / TerminateJobs cancel before STARTING and terminate after: status FAILED,
  statusReason = reason, isCancelled / isTerminated, array children follow their parent; unknown
  ids succeed silently, as AWS does (TerminateJobs lists them in `successful`);
- ListJobs needs a queue or array id, lists RUNNING when no status is given, ignores the status
  when filters are given, supports JOB_NAME, JOB_DEFINITION, BEFORE/AFTER_CREATED_AT filters and
  pages with maxResults (≤ 1000) and an opaque nextToken; array children are listed by arrayJobId;
- DescribeJobs takes at most 100 ids and reports array parents' status from their children;
- faults can be injected: a whole call throttled (HTTP 429) or one job reported in `errors[]`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from moto.batch import urls as batch_urls
from moto.batch.exceptions import ClientException
from moto.batch.models import BatchBackend, Job
from moto.batch.responses import BatchResponse
from moto.core.base_backend import BackendDict
from moto.core.exceptions import AWSError
from moto.core.models import DEFAULT_ACCOUNT_ID

ACTIVE: Final = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
BEFORE_STARTING: Final = ("SUBMITTED", "PENDING", "RUNNABLE")
FINAL: Final = ("SUCCEEDED", "FAILED")
ALL_STATUSES: Final = (*ACTIVE, *FINAL)
MAX_PAGE: Final = 1000
_JOB_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:#_-]{0,127}$")


class TooManyRequestsException(AWSError):
    TYPE = "TooManyRequestsException"
    STATUS = 429


class ServerException(AWSError):
    TYPE = "ServerException"
    STATUS = 500


class UnknownOperationException(AWSError):
    """What an endpoint that predates an operation answers."""

    TYPE = "UnknownOperationException"
    STATUS = 400


_FAULTS: Final = {
    fault.TYPE: fault
    for fault in (TooManyRequestsException, ServerException, UnknownOperationException)
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class EmulatedJob(Job):
    """A job that never runs by itself: its status is whatever the emulator last set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._status = "SUBMITTED"
        self.job_created_at = datetime.now(UTC)
        self.is_terminated = False
        self.is_cancelled = False
        self.parent: EmulatedJob | None = None

    # A plain attribute: moto's state manager would advance it on every read.
    @property
    def status(self) -> str:
        if self._child_jobs:
            return self._array_status()
        return str(self._status)

    @status.setter
    def status(self, value: str) -> None:
        self._status = value

    def _array_status(self) -> str:
        statuses = [child._status for child in self._child_jobs or []]
        if any(s in ACTIVE for s in statuses):
            return "PENDING"  # a parent sits in PENDING while any child is unfinished
        return "SUCCEEDED" if all(s == "SUCCEEDED" for s in statuses) else "FAILED"

    def stop_job(self, reason: str) -> None:
        """TerminateJob semantics: cancel before STARTING, terminate after; FAILED either way."""
        if self.status in FINAL:
            return
        if self._child_jobs:
            for child in self._child_jobs:
                child.stop_job(reason)  # type: ignore[attr-defined]
        elif self._status in BEFORE_STARTING:
            self.is_cancelled = True
        else:
            self.is_terminated = True
        self.job_stopped_reason = reason
        self.job_stopped = True
        self.job_stopped_at = datetime.now(UTC)
        self._status = "FAILED"

    def _array_fields(self) -> dict[str, Any]:
        if self._child_jobs:
            summary = dict.fromkeys(ALL_STATUSES, 0)
            for child in self._child_jobs:
                summary[str(child._status)] += 1
            return {"arrayProperties": {"size": len(self._child_jobs), "statusSummary": summary}}
        if self.parent is not None:
            return {"arrayProperties": {"index": self.array_properties.get("index")}}
        return {}

    def describe_short(self) -> dict[str, Any]:
        result = super().describe_short()
        result.pop("container", None)
        result.update(self._array_fields())
        result["isCancelled"] = self.is_cancelled
        result["isTerminated"] = self.is_terminated
        if self.status not in ("STARTING", "RUNNING", *FINAL) or self._never_started:
            result.pop("startedAt", None)
        return result

    def describe(self) -> dict[str, Any]:
        result = super().describe()
        result["status"] = self.status
        result.update(self._array_fields())
        result["isCancelled"] = self.is_cancelled
        result["isTerminated"] = self.is_terminated
        if self._never_started:
            result.pop("startedAt", None)
        return result

    @property
    def _never_started(self) -> bool:
        return self.job_started_at.year == 1970


@dataclass
class _BulkError:
    code: str
    message: str
    times: int


class EmulatedBatchBackend(BatchBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self._faults: dict[str, deque[str]] = defaultdict(deque)
        self._bulk_errors: dict[str, _BulkError] = {}
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    @property
    def _url_module(self) -> Any:
        return batch_urls

    # -- fault injection -------------------------------------------------------------------
    def count(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1
            pending = self._faults.get(operation)
            fault = pending.popleft() if pending else None
        if fault is not None:
            raise _FAULTS[fault](f"Injected {fault} for {operation}")

    # -- jobs ------------------------------------------------------------------------------
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
    ) -> tuple[str, str, str]:
        self.count("SubmitJob")
        job_def = self.get_job_definition(job_def_id)
        if job_def is None:
            raise ClientException(f"Job definition {job_def_id} does not exist")
        queue = self.get_job_queue(job_queue)
        if queue is None:
            raise ClientException(f"Job queue {job_queue} does not exist")
        common: dict[str, Any] = {
            "log_backend": self.logs_backend,
            "container_overrides": container_overrides,
            "eks_properties_override": eks_properties_override,
            "depends_on": depends_on,
            "all_jobs": self._jobs,
            "timeout": timeout,
            "parameters": parameters,
        }
        job = EmulatedJob(
            job_name,
            job_def,
            queue,
            self,
            array_properties=array_properties or {},
            tags=tags,
            **common,
        )
        self._jobs[job.job_id] = job
        size = int((array_properties or {}).get("size", 0))
        if size:
            children = []
            for index in range(size):
                child = EmulatedJob(
                    job_name,
                    job_def,
                    queue,
                    self,
                    array_properties={"index": index},
                    provided_job_id=f"{job.job_id}:{index}",
                    tags=tags,
                    **common,
                )
                queue.jobs.remove(child)  # children are listed by arrayJobId, not by queue
                child.parent = job
                child.job_created_at = job.job_created_at
                self._jobs[child.job_id] = child
                children.append(child)
            job._child_jobs = children  # type: ignore[assignment]
        return job_name, job.job_id, job.arn

    def describe_jobs(self, jobs: list[str] | None) -> list[dict[str, Any]]:
        self.count("DescribeJobs")
        wanted = list(jobs or [])
        if len(wanted) > 100:
            raise ClientException("Up to 100 job IDs may be passed to DescribeJobs")
        found = []
        for identifier in wanted:
            job = self._jobs.get(identifier) or self._jobs.get(identifier.rsplit("/", 1)[-1])
            if job is not None:
                found.append(job.describe())
        return found

    def list_jobs_page(
        self,
        job_queue: str | None,
        array_job_id: str | None,
        job_status: str | None,
        filters: list[dict[str, Any]] | None,
        max_results: int | None,
        next_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.count("ListJobs")
        candidates = self._list_candidates(job_queue, array_job_id)
        if filters:
            selected = [job for job in candidates if all(_filter_matches(job, f) for f in filters)]
        else:
            status = job_status or "RUNNING"
            if status not in ALL_STATUSES:
                raise ClientException(
                    f"jobStatus {status} is not one of {' | '.join(ALL_STATUSES)}"
                )
            selected = [job for job in candidates if job.status == status]
        page_size = max_results or MAX_PAGE
        if not 1 <= page_size <= MAX_PAGE:
            raise ClientException(f"maxResults must be between 1 and {MAX_PAGE}")
        start = _decode_token(next_token)
        page = selected[start : start + page_size]
        end = start + len(page)
        token = _encode_token(end) if end < len(selected) else None
        return [job.describe_short() for job in page], token

    def _list_candidates(
        self, job_queue: str | None, array_job_id: str | None
    ) -> list[EmulatedJob]:
        if array_job_id:
            parent = self._jobs.get(array_job_id)
            return list(parent._child_jobs or []) if parent is not None else []  # type: ignore[arg-type]
        if not job_queue:
            raise ClientException("jobQueue, arrayJobId or multiNodeJobId must be given")
        queue = self.get_job_queue(job_queue)
        if queue is None:
            raise ClientException(f"Job queue {job_queue} does not exist")
        return [job for job in queue.jobs if isinstance(job, EmulatedJob)]

    def terminate_job(self, job_id: str, reason: str) -> None:
        self.count("TerminateJob")
        _check_reason(reason)
        if not job_id:
            raise ClientException("'jobId' is a required field")
        job = self._jobs.get(job_id)
        if isinstance(job, EmulatedJob):
            job.stop_job(reason)

    def terminate_jobs(
        self, job_ids: list[str], reason: str
    ) -> tuple[list[str], list[dict[str, str]]]:
        self.count("TerminateJobs")
        _check_reason(reason)
        if not 1 <= len(job_ids) <= 50:
            raise ClientException("jobs must contain between 1 and 50 job IDs")
        successful: list[str] = []
        errors: list[dict[str, str]] = []
        for job_id in job_ids:
            injected = self._bulk_errors.get(job_id)
            if injected is not None:
                injected.times -= 1
                if injected.times <= 0:
                    del self._bulk_errors[job_id]
                errors.append({"job": job_id, "code": injected.code, "message": injected.message})
            elif not _JOB_ID.match(job_id):
                errors.append(
                    {"job": job_id, "code": "ValidationException", "message": "malformed job ID"}
                )
            else:
                job = self._jobs.get(job_id)
                if isinstance(job, EmulatedJob):
                    job.stop_job(reason)
                successful.append(job_id)  # unknown ids are treated as successfully processed
        return successful, errors

    def cancel_job(self, job_id: str, reason: str) -> None:
        """CancelJob silently does nothing to jobs that have started: that is why nobody here uses it."""
        self.count("CancelJob")
        job = self._jobs.get(job_id)
        if isinstance(job, EmulatedJob) and job.status in BEFORE_STARTING:
            job.stop_job(reason)


def _check_reason(reason: str | None) -> None:
    if not reason:
        raise ClientException("'reason' is a required field")
    if len(reason) > 1024:
        raise ClientException("reason must be at most 1024 characters")


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ClientException("nextToken is invalid") from exc


def _prefix_match(value: str, pattern: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


def _filter_matches(job: EmulatedJob, query: dict[str, Any]) -> bool:
    name, values = query.get("name"), list(query.get("values") or [])
    if not values:
        raise ClientException("a filter needs values")
    if name == "JOB_NAME":
        return any(_prefix_match(job.job_name, v) for v in values)
    if name == "JOB_DEFINITION":
        definition = job.job_definition
        forms = (definition.arn, definition.name, f"{definition.name}:{definition.revision}")
        return any(_prefix_match(form, v) for v in values for form in forms)
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
        created = _ms(job.job_created_at)
        limit = int(values[0])
        return created < limit if name == "BEFORE_CREATED_AT" else created > limit
    raise ClientException(
        f"filter {name} is not one of JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT, AFTER_CREATED_AT"
    )


emulated_batch_backends: BackendDict[EmulatedBatchBackend] = BackendDict(
    EmulatedBatchBackend, "batch"
)


class EmulatedBatchResponse(BatchResponse):
    """moto's Batch responses, served from the emulated backend, plus TerminateJobs and paging."""

    @property
    def batch_backend(self) -> EmulatedBatchBackend:
        return emulated_batch_backends[self.current_account][self.region]

    def listjobs(self) -> str:
        summaries, token = self.batch_backend.list_jobs_page(
            job_queue=self._get_param("jobQueue"),
            array_job_id=self._get_param("arrayJobId"),
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
    """Route moto's Batch URLs to the emulated backend (idempotent; before any mock starts)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return
    for path in list(batch_urls.url_paths):
        batch_urls.url_paths[path] = EmulatedBatchResponse.dispatch
    batch_urls.url_paths["{0}/v1/terminatejobs$"] = EmulatedBatchResponse.dispatch
    _installed = True


class BatchControl:
    """Test and demo controls that Batch itself has no API for: time, state, faults."""

    def __init__(self, account_id: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> None:
        install()
        self.account_id = account_id
        self.region = region

    @property
    def backend(self) -> EmulatedBatchBackend:
        return emulated_batch_backends[self.account_id][self.region]

    def job(self, job_id: str) -> EmulatedJob:
        job = self.backend._jobs[job_id]
        assert isinstance(job, EmulatedJob)
        return job

    def set_state(
        self,
        job_id: str,
        status: str,
        *,
        created_at: datetime | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """Put a job in `status`; STARTING and later get a startedAt (now unless given)."""
        if status not in ALL_STATUSES:
            raise ValueError(f"unknown status {status}")
        job = self.job(job_id)
        job.status = status
        if created_at is not None:
            job.job_created_at = created_at
        if status in ("STARTING", "RUNNING", *FINAL) and (started_at or job._never_started):
            job.job_started_at = started_at or datetime.now(UTC)
        if status in FINAL:
            job.job_stopped = True
            job.job_stopped_at = datetime.now(UTC)

    def add_jobs(
        self,
        queue: str,
        definition: str,
        jobs: Iterable[tuple[str, str, datetime, dict[str, str] | None]],
    ) -> list[str]:
        """Seed many jobs at once, straight into the backend (benchmarks need 100,000 quickly).

        Each item is (name, status, since, tags): `since` is startedAt for STARTING/RUNNING and
        createdAt before that. Queue and definition must exist already.
        """
        backend = self.backend
        job_queue = backend.get_job_queue(queue)
        job_definition = backend.get_job_definition(definition)
        if job_queue is None or job_definition is None:
            raise ValueError(f"create queue {queue} and job definition {definition} first")
        ids = []
        for name, status, since, tags in jobs:
            job = EmulatedJob(
                name,
                job_definition,
                job_queue,
                backend,
                log_backend=backend.logs_backend,
                container_overrides=None,
                eks_properties_override=None,
                depends_on=None,
                all_jobs=backend._jobs,
                timeout=None,
                array_properties={},
                parameters=None,
                tags=tags,
            )
            backend._jobs[job.job_id] = job
            started = status in ("STARTING", "RUNNING")
            self.set_state(
                job.job_id,
                status,
                created_at=since - timedelta(minutes=3) if started else since,
                started_at=since if started else None,
            )
            ids.append(job.job_id)
        return ids

    def throttle(
        self, operation: str, times: int = 1, code: str = "TooManyRequestsException"
    ) -> None:
        """The next `times` calls of `operation` fail as a whole (429 by default, or ServerException)."""
        self.backend._faults[operation].extend([code] * times)

    def fail_in_bulk(
        self, job_id: str, code: str = "ClientException", message: str = "injected", times: int = 1
    ) -> None:
        """The next `times` TerminateJobs calls naming `job_id` report it in `errors[]` and leave it."""
        self.backend._bulk_errors[job_id] = _BulkError(code, message, times)

    def calls(self) -> dict[str, int]:
        return dict(self.backend.calls)

    def reset_calls(self) -> None:
        self.backend.calls.clear()

    def jobs(self) -> Iterable[EmulatedJob]:
        return [j for j in self.backend._jobs.values() if isinstance(j, EmulatedJob)]
