"""moto's SQS, made to receive in linear time, for the benchmarks that move thousands of messages.

For every message ReceiveMessage returns, moto checks the queue's retention period through
`get_queue_attributes(queue, ["MessageRetentionPeriod"])`, which builds every attribute of the
queue two or three times over, the approximate message counts included, each a pass over every
message in the queue: receiving a queue of N messages costs O(N^2). The check below reads the
same value (the queue's `MessageRetentionPeriod`, an integer number of seconds) straight from
the queue; the answer is the same, only faster. Nothing else changes.
"""

from __future__ import annotations

from typing import Any

from moto.core.utils import unix_time
from moto.sqs.models import SQSBackend

_installed = False


def install() -> None:
    """Patch moto's SQS (idempotent)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return

    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Any
    ) -> bool:
        queue: Any = self.get_queue(queue_name)  # MessageRetentionPeriod, set as an int
        retention_period = int(queue.message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    _installed = True
