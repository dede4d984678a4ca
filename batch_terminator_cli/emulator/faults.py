"""Faults the emulated Batch can be told to produce: throttling, server errors, per-job errors in
TerminateJobs, jobs DescribeJobs does not return, and calls that time out on the network."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
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


class Faults:
    """Injected faults and the count of calls each operation received, for one backend."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.throttles: dict[str, deque[str]] = defaultdict(deque)
        self.bulk_errors: dict[str, BulkError] = {}
        # Per call, in order: None goes through; True/False times out after/before taking effect.
        self.timeouts: dict[str, deque[bool | None]] = defaultdict(deque)
        self.hidden: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, operation: str) -> None:
        """Count a call; raise the throttle or server error injected for it, if any."""
        with self._lock:
            self.calls[operation] += 1
            pending = self.throttles.get(operation)
            fault = pending.popleft() if pending else None
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
            return pending.popleft() if pending else None


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
