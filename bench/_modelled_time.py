"""A virtual clock for Batch API calls: how long a sequence of calls would take against a Batch
that allows `rate` calls a second (a token bucket holding up to `burst` tokens) and answers
each call after `latency` seconds. Nothing sleeps: the clock only adds up.

The model (the same for every path a benchmark compares):

- calls are made one after another, each when the one before has answered: a Lambda function
  makes its Batch calls sequentially, and the benchmarks run one invocation after another;
- a call costs max(latency, the wait for a token): a token is taken when the call starts, and
  a call that finds the bucket empty waits until the next token;
- the bucket starts full and refills at `rate` tokens a second, one account-wide bucket for
  every Batch operation.

With latency 100 ms and 10 calls/s, one sequential caller takes a token every 100 ms, exactly
as fast as they refill: every call costs 100 ms and the modelled time is the number of calls
times 100 ms. Running invocations concurrently would not be faster, the bucket would hold them
to 10 calls/s. Not modelled: Lambda start-up and SQS (the time between a request being queued
and the terminator receiving it), the service's own latency spread, throttling errors and their
retries (the caller waits for a token instead).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelledBatch:
    rate: float = 10.0
    latency: float = 0.1
    burst: float = 10.0
    now: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    _tokens: float = field(init=False)
    _refilled_at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._tokens = self.burst

    def call(self, operation: str) -> float:
        """One call starts now; returns what it cost and moves the clock past its answer."""
        self._refill(self.now)
        wait = 0.0
        if self._tokens < 1:
            wait = (1 - self._tokens) / self.rate
            self._refill(self.now + wait)
        self._tokens -= 1
        cost = max(self.latency, wait)
        self.now += cost
        self.calls[operation] += 1
        return cost

    def _refill(self, moment: float) -> None:
        if moment > self._refilled_at:
            elapsed = moment - self._refilled_at
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._refilled_at = moment

    def watch(self, client: Any) -> None:
        """Put every API call a boto3 Batch client makes on this clock."""

        def before_call(model: Any, **_: Any) -> None:
            self.call(str(model.name))

        client.meta.events.register("before-call.batch", before_call)
