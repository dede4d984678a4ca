"""moto's SQS, made to send in constant time.

On every SendMessage moto reads one queue attribute, ContentBasedDeduplication, through
`Queue.attributes`, which builds every attribute, the approximate message counts included, by
looking at every message in the queue: a queue filled with N messages costs O(N^2). Batch's events
(one per job status change) fill the events queue by the thousand, so while a message is being
sent `Queue.attributes` holds only what sending reads. Everything else (GetQueueAttributes
included) still sees every attribute.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.sqs.models import Queue, SQSBackend

_sending = threading.local()
_installed = False


@contextmanager
def _while_sending() -> Iterator[None]:
    depth = getattr(_sending, "depth", 0)
    _sending.depth = depth + 1
    try:
        yield
    finally:
        _sending.depth = depth


def install() -> None:
    """Patch moto's SQS (idempotent)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return
    every_attribute = Queue.attributes
    send = SQSBackend.send_message

    def attributes(self: Queue) -> dict[str, Any]:
        if not getattr(_sending, "depth", 0):
            return every_attribute.fget(self)  # type: ignore[attr-defined,no-any-return]
        if not self.fifo_queue:
            return {}
        deduplication = getattr(self, "content_based_deduplication", False)
        return {"ContentBasedDeduplication": str(deduplication).lower()}

    def send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        with _while_sending():
            return send(self, *args, **kwargs)

    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    _installed = True
