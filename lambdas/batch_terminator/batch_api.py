"""The one module that talks to AWS Batch: DescribeJobs, DescribeJobQueues, ListJobs,
TerminateJobs / TerminateJob.

A termination call is never repeated blindly. botocore's retry modes repeat a call whose answer
was lost (ReadTimeoutError, a connection closed or reset after the request was sent) and a 5xx
answer (botocore/retries/standard.py `TransientRetryableChecker`: `ConnectionError`,
`HTTPClientError`, statuses 500/502/503/504; legacy mode's `GENERAL_CONNECTION_ERROR` in
botocore/retryhandler.py likewise; "Retries", Boto3 developer guide). Such a call may have
stopped the jobs already, so for TerminateJob(s) it is left to the terminator's "uncertain"
path (the claim is kept, a redelivery reads the jobs again) instead. botocore still repeats a
TerminateJob(s) call when the failure proves Batch did not act: throttling (HTTP 429,
TooManyRequestsException and the other throttling codes) and a request that was never sent
(EndpointConnectionError, ConnectTimeoutError), with its own jittered exponential backoff and
retry quota. DescribeJobs, ListJobs and DescribeJobQueues keep botocore's retries unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from batch_terminator.contract import (
    DESCRIBE_JOB_QUEUES_MAX,
    DESCRIBE_JOBS_MAX_IDS,
    LIST_JOBS_MAX_RESULTS,
    TERMINATE_JOBS_MAX_IDS,
    JobStatus,
)
from batch_terminator.models.job import JobSnapshot

# Codes worth retrying: throttling (HTTP 429 TooManyRequestsException) and server-side faults.
RETRYABLE_CODES: Final = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)
# Errors that prove a call was refused before it could act: Batch throttled it (botocore's
# `ThrottledRetryableChecker` codes, plus HTTP 429 whatever the code), or it was never sent.
THROTTLING_CODES: Final = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
NOT_SENT_ERRORS: Final = (EndpointConnectionError, ConnectTimeoutError)
TERMINATE_OPERATIONS: Final = ("TerminateJobs", "TerminateJob")
# What an endpoint says when it does not know TerminateJobs (older endpoints, emulators).
_UNKNOWN_OPERATION_CODES: Final = frozenset(
    {"UnknownOperationException", "UnknownOperation", "InvalidAction", "NotFoundException", "404"}
)


@dataclass(frozen=True)
class BatchError:
    code: str
    message: str
    retryable: bool
    # The call may have reached Batch and acted (a timeout, a 5xx): its effect is unknown.
    uncertain: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @classmethod
    def from_client_error(cls, error: ClientError) -> BatchError:
        details = error.response.get("Error", {})
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        code = str(details.get("Code") or status or "Unknown")
        server_side = status >= 500 or code in ("ServerException", "InternalFailure")
        return cls(
            code=code,
            message=str(details.get("Message") or error),
            retryable=code in RETRYABLE_CODES or status == 429 or status >= 500,
            uncertain=server_side,
        )

    @classmethod
    def from_network_error(cls, error: BotoCoreError) -> BatchError:
        """Connection errors and timeouts: retryable. The call may have acted, unless it was
        never sent (EndpointConnectionError, ConnectTimeoutError)."""
        sent = not isinstance(error, NOT_SENT_ERRORS)
        return cls(type(error).__name__, str(error), retryable=True, uncertain=sent)

    @classmethod
    def from_bulk_entry(cls, entry: dict[str, Any]) -> BatchError:
        code = str(entry.get("code") or "Unknown")
        return cls(
            code=code, message=str(entry.get("message") or ""), retryable=code in RETRYABLE_CODES
        )


class BatchCallFailed(Exception):
    """A read call failed as a whole; `error.retryable` tells whether SQS should retry."""

    def __init__(self, operation: str, error: BatchError) -> None:
        super().__init__(f"{operation} failed: {error}")
        self.operation = operation
        self.error = error


class OutOfTime(Exception):
    """The function's remaining time ran low: no further Batch call is started."""


@dataclass(frozen=True)
class TerminateResult:
    job_id: str
    error: BatchError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def chunked(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _never_low() -> bool:
    return False


def proves_not_acted(response: Any, caught_exception: Exception | None) -> bool:
    """Whether a failed attempt proves Batch did not act on it: it was throttled (HTTP 429 or a
    throttling code) or never sent (EndpointConnectionError, ConnectTimeoutError).

    `response` is botocore's `(http_response, parsed)` pair or None; `caught_exception` the
    transport's exception or None (the arguments of botocore's `needs-retry` event)."""
    if caught_exception is not None:
        return isinstance(caught_exception, NOT_SENT_ERRORS)
    if response is None:
        return False
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code")
    return int(http.status_code) == 429 or code in THROTTLING_CODES


def guard_terminate_retries(client: Any) -> None:
    """Let botocore repeat a TerminateJob(s) attempt only when `proves_not_acted` says so.

    Registered on `needs-retry.batch.<operation>`, which botocore emits before the generic
    `needs-retry.batch` its retry handler listens on (more specific events first,
    botocore/hooks.py). When an attempt failed in a way that may have acted, this handler ends
    the call with that attempt's own error (the transport's exception, or the ClientError
    class the client would raise for the answer), so no retry mode repeats it: raising works on
    every botocore version, where a `False` answer vetoes retries only from botocore 1.43.3.
    Idempotent (one registration per client)."""
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()

    def no_blind_repeat(
        response: Any = None,
        caught_exception: Exception | None = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        if caught_exception is None and (response is None or response[0].status_code < 300):
            return  # an answer: nothing to repeat
        if proves_not_acted(response, caught_exception):
            return  # botocore's retry mode decides, with its backoff and quota
        if caught_exception is not None:
            raise caught_exception
        parsed = response[1]
        error_class = client.exceptions.from_code(parsed.get("Error", {}).get("Code"))
        raise error_class(parsed, operation.name)

    for operation in TERMINATE_OPERATIONS:
        events.register(
            f"needs-retry.{service}.{operation}",
            no_blind_repeat,
            unique_id=f"batch-terminator-no-blind-repeat-{operation}",
        )


class BatchApi:
    """Batch calls in the shapes this product needs; counts every call it makes.

    `time_is_low` is asked before every call; when it says yes, OutOfTime is raised instead of
    starting the call (a Lambda function must not be stopped in the middle of its work).
    `client` (a botocore Batch client) gets `guard_terminate_retries`: its TerminateJob(s)
    calls are repeated only when Batch provably did not act."""

    def __init__(
        self,
        client: Any,
        page_size: int = LIST_JOBS_MAX_RESULTS,
        time_is_low: Callable[[], bool] = _never_low,
    ) -> None:
        self._client = client
        guard_terminate_retries(client)
        self._page_size = page_size
        self._time_is_low = time_is_low
        self.calls: Counter[str] = Counter()
        # The runtime's botocore may predate TerminateJobs; the endpoint may not know it either.
        self._bulk = "TerminateJobs" in client.meta.service_model.operation_names

    @property
    def bulk_terminate_available(self) -> bool:
        return self._bulk

    def describe_jobs(self, job_ids: Iterable[str]) -> dict[str, JobSnapshot]:
        """Current state of each known job, by id; unknown ids are simply absent."""
        unique = list(dict.fromkeys(job_ids))
        found: dict[str, JobSnapshot] = {}
        for chunk in chunked(unique, DESCRIBE_JOBS_MAX_IDS):
            response = self._call("DescribeJobs", self._client.describe_jobs, jobs=list(chunk))
            for job in response.get("jobs", []):
                snapshot = JobSnapshot.from_description(job)
                found[snapshot.job_id] = snapshot
        return found

    def describe_job_queues(
        self, names_or_arns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The named job queues (at most 100 a call), or every queue of the account and region;
        follows every page. Queues that do not exist are simply absent."""
        queues: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query: dict[str, Any] = {"maxResults": DESCRIBE_JOB_QUEUES_MAX}
            if names_or_arns is not None:
                query = {"jobQueues": list(names_or_arns)[:DESCRIBE_JOB_QUEUES_MAX]}
            if token:
                query["nextToken"] = token
            response = self._call("DescribeJobQueues", self._client.describe_job_queues, **query)
            queues.extend(response.get("jobQueues", []))
            token = response.get("nextToken")
            if not token:
                return queues

    def list_jobs(self, job_queue: str, status: JobStatus) -> Iterator[JobSnapshot]:
        """Every job of one queue in one status, following every page (summaries: no tags, no
        queue; the queue asked for is recorded as the listing's)."""
        yield from self._list(job_queue, {"jobQueue": job_queue, "jobStatus": status.value})

    def _list(self, job_queue: str, query: dict[str, Any]) -> Iterator[JobSnapshot]:
        token: str | None = None
        while True:
            page_query = {**query, "maxResults": self._page_size}
            if token:
                page_query["nextToken"] = token
            response = self._call("ListJobs", self._client.list_jobs, **page_query)
            for summary in response.get("jobSummaryList", []):
                yield JobSnapshot.from_summary(summary, job_queue)
            token = response.get("nextToken")
            if not token:
                return

    def terminate_chunks(
        self, job_ids: Sequence[str], reason: str
    ) -> Iterator[list[TerminateResult]]:
        """Terminate with the bulk call where it exists, else one call per job; yields one result
        per job as each call returns, so the caller can record it before the next call. Raises
        OutOfTime before a call it should not start any more."""
        for chunk in chunked(list(dict.fromkeys(job_ids)), TERMINATE_JOBS_MAX_IDS):
            if self._time_is_low():
                raise OutOfTime
            bulk = self._terminate_bulk(chunk, reason) if self._bulk else None
            yield bulk if bulk is not None else self._terminate_each(chunk, reason)

    def terminate(self, job_ids: Sequence[str], reason: str) -> list[TerminateResult]:
        """All chunks at once: one result per job."""
        return [result for chunk in self.terminate_chunks(job_ids, reason) for result in chunk]

    def _terminate_bulk(self, job_ids: Sequence[str], reason: str) -> list[TerminateResult] | None:
        self.calls["TerminateJobs"] += 1
        try:
            response = self._client.terminate_jobs(jobs=list(job_ids), reason=reason)
        except ClientError as exc:
            error = BatchError.from_client_error(exc)
            if error.code in _UNKNOWN_OPERATION_CODES:
                self._bulk = False
                return None
            return [TerminateResult(job_id, error) for job_id in job_ids]
        except BotoCoreError as exc:
            network = BatchError.from_network_error(exc)
            return [TerminateResult(job_id, network) for job_id in job_ids]
        # HTTP 200 is not proof: every id must be accounted for in successful[] or errors[].
        errors = {
            str(e.get("job")): BatchError.from_bulk_entry(e)
            for e in response.get("errors", [])
            if isinstance(e, dict)
        }
        successful = set(response.get("successful", []))
        missing = BatchError(
            "NotReported", "TerminateJobs reported neither success nor error", True, True
        )
        return [
            TerminateResult(
                job_id, errors.get(job_id) or (None if job_id in successful else missing)
            )
            for job_id in job_ids
        ]

    def _terminate_each(self, job_ids: Sequence[str], reason: str) -> list[TerminateResult]:
        results: list[TerminateResult] = []
        for job_id in job_ids:
            if results and self._time_is_low():
                low = BatchError("OutOfTime", "not attempted: the function's time ran low", True)
                results.extend(TerminateResult(j, low) for j in job_ids[len(results) :])
                break
            self.calls["TerminateJob"] += 1
            try:
                self._client.terminate_job(jobId=job_id, reason=reason)
            except ClientError as exc:
                results.append(TerminateResult(job_id, BatchError.from_client_error(exc)))
            except BotoCoreError as exc:
                results.append(TerminateResult(job_id, BatchError.from_network_error(exc)))
            else:
                results.append(TerminateResult(job_id))
        return results

    def _call(self, operation: str, method: Any, **kwargs: Any) -> dict[str, Any]:
        if self._time_is_low():
            raise OutOfTime
        self.calls[operation] += 1
        try:
            response: dict[str, Any] = method(**kwargs)
        except ClientError as exc:
            raise BatchCallFailed(operation, BatchError.from_client_error(exc)) from exc
        except BotoCoreError as exc:
            raise BatchCallFailed(operation, BatchError.from_network_error(exc)) from exc
        return response
