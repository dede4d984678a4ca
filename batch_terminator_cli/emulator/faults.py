"""Faults the emulated Batch can be told to produce: throttling, server errors, per-job errors in
TerminateJobs, jobs DescribeJobs does not return, and calls that time out on the network.

Faults are injected one by one (`BatchControl.throttle`, `fail_in_bulk`, `timeout`,
`hide_from_describe`), or at random rates from a seed (`RandomFaults`, for the chaos run):
a fault queued one by one always comes first."""

from __future__ import annotations

import random
import socket
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ReadTimeoutError
from moto.core.exceptions import AWSError


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


@dataclass
class BulkError:
    code: str
    message: str
    times: int


@dataclass
class RandomFaults:
    """Faults drawn at random, seeded, for the calls of `operations` (the chaos run).

    Rates are probabilities per call (per job named, for `bulk_error_rate`):
    throttle_rate: the call fails as a whole with HTTP 429 TooManyRequestsException, Batch's
        throttling answer (botocore's standard retry mode treats both the code and the 429
        status as throttling: botocore/retries/standard.py `ThrottlingErrorDetector`);
    server_error_rate: the call fails as a whole with 500 ServerException (Batch's modelled
        server error, botocore's batch service-2.json `ServerException`);
    timeout_rate: the call times out on the network; half of those after the call took effect
        (the answer is lost), half before it reached Batch;
    bulk_error_rate: TerminateJobs reports a job in `errors[]` (code `ClientException`, or
        `ServerException` for one in four: the per-job codes are Batch's error codes) and leaves
        it alone.
    Each draw is made under the backend's fault lock, from the stream the calling thread
    named (`stream`: one per Lambda invocation, say) or the shared one: a run that makes the
    same calls in each stream draws the same faults, however threads interleave.
    """

    seed: int
    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    timeout_rate: float = 0.0
    bulk_error_rate: float = 0.0
    operations: frozenset[str] = frozenset(
        {"DescribeJobs", "ListJobs", "TerminateJobs", "TerminateJob"}
    )
    # What was injected, by kind and operation ("throttle:DescribeJobs": 12), for the report.
    injected: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "server_error_rate", "timeout_rate", "bulk_error_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if self.throttle_rate + self.server_error_rate > 1.0:
            raise ValueError("throttle_rate + server_error_rate must be at most 1")
        self._shared = random.Random(self.seed)  # noqa: S311 - fault draws, not secrets
        self._streams: dict[str, random.Random] = {}
        self._local = threading.local()

    def answer_lost(self) -> bool:
        """Whether the call this thread is serving took effect with its answer lost (a
        timeout drawn after effect)."""
        return bool(getattr(self._local, "lost_answer", False))

    def stream(self, name: str | None) -> None:
        """Draw this thread's faults from the stream `name` from now on (None: the shared
        stream). A stream's draws depend on the seed and the name only."""
        self._local.name = name

    @property
    def _random(self) -> random.Random:
        name: str | None = getattr(self._local, "name", None)
        if name is None:
            return self._shared
        found = self._streams.get(name)
        if found is None:
            found = self._streams[name] = random.Random(f"{self.seed}/{name}")  # noqa: S311
        return found

    def call_fault(self, operation: str) -> str | None:
        """The error code this call fails with as a whole, if any (call under the lock)."""
        if operation not in self.operations:
            return None
        draw = self._random.random()
        if draw < self.throttle_rate:
            fault = TooManyRequestsException.TYPE
        elif draw < self.throttle_rate + self.server_error_rate:
            fault = ServerException.TYPE
        else:
            return None
        self.injected[f"{fault}:{operation}"] += 1
        return fault

    def timeout(self, operation: str) -> bool | None:
        """None: no timeout; otherwise whether the call takes effect first (under the lock)."""
        self._local.lost_answer = False
        if operation not in self.operations or self._random.random() >= self.timeout_rate:
            return None
        applied = self._random.random() < 0.5
        self._local.lost_answer = applied
        self.injected[f"timeout {'after' if applied else 'before'} effect:{operation}"] += 1
        return applied

    def bulk_error(self) -> BulkError | None:
        """The `errors[]` entry TerminateJobs reports for one job, if any (under the lock)."""
        if "TerminateJobs" not in self.operations:
            return None
        if self._random.random() >= self.bulk_error_rate:
            return None
        code = "ServerException" if self._random.random() < 0.25 else "ClientException"
        self.injected[f"errors[] {code}:TerminateJobs"] += 1
        return BulkError(code, f"Injected {code} for this job", 1)


class Faults:
    """Injected faults and the count of calls each operation received, for one backend."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.throttles: dict[str, deque[str]] = defaultdict(deque)
        self.bulk_errors: dict[str, BulkError] = {}
        # Per call, in order: None goes through; True/False times out after/before taking effect.
        self.timeouts: dict[str, deque[bool | None]] = defaultdict(deque)
        self.hidden: dict[str, int] = {}
        # Faults drawn at random for every call, after the ones queued above (None: none).
        self.random: RandomFaults | None = None
        self._lock = threading.Lock()

    def count(self, operation: str) -> None:
        """Count a call; raise the throttle or server error injected for it, if any."""
        with self._lock:
            self.calls[operation] += 1
            pending = self.throttles.get(operation)
            fault = pending.popleft() if pending else None
            if fault is None and self.random is not None:
                fault = self.random.call_fault(operation)
        if fault is not None:
            raise _FAULTS[fault](f"Injected {fault} for {operation}")

    def bulk_error(self, job_id: str) -> BulkError | None:
        """The error TerminateJobs reports for `job_id` this time, if one was injected."""
        with self._lock:
            injected = self.bulk_errors.get(job_id)
            if injected is not None:
                injected.times -= 1
                if injected.times <= 0:
                    del self.bulk_errors[job_id]
            elif self.random is not None:
                injected = self.random.bulk_error()
            return injected

    def hides(self, job_id: str) -> bool:
        """Whether this DescribeJobs call leaves `job_id` out (and one omission less to go)."""
        with self._lock:
            left = self.hidden.get(job_id, 0)
            if left <= 0:
                return False
            if left == 1:
                del self.hidden[job_id]
            else:
                self.hidden[job_id] = left - 1
            return True

    def take_timeout(self, operation: str) -> bool | None:
        """None: no timeout for this call. Otherwise whether the call takes effect first."""
        with self._lock:
            pending = self.timeouts.get(operation)
            if pending:
                return pending.popleft()
            return self.random.timeout(operation) if self.random is not None else None


def time_out(request: Any) -> None:
    """Fail the call being served as a network timeout would.

    In process (moto's `mock_aws`), moto serves requests from botocore's `before-send` event;
    botocore treats an HTTPClientError raised there as the transport's own
    (botocore/endpoint.py `_do_get_response`), so the client raises `ReadTimeoutError`.

    Under the moto server (`batch-terminator local`) the request came over a socket: the
    connection is shut without an answer, and the client raises
    `botocore.exceptions.ConnectionClosedError`. A server cannot make the client's read timer
    fire short of stalling for the client's whole `read_timeout` (60 s by default); both errors
    are HTTPClientError (a BotoCoreError, not a ClientError), retried alike by botocore.
    """
    environ = getattr(request, "environ", None) or {}
    connection = environ.get("werkzeug.socket")
    if connection is None:
        raise ReadTimeoutError(endpoint_url=str(getattr(request, "url", "")))
    # werkzeug's write to a shut socket raises BrokenPipeError, which it treats as a dropped
    # connection: no answer is sent and nothing is logged.
    connection.shutdown(socket.SHUT_RDWR)
