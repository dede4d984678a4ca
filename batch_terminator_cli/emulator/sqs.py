"""moto's SQS, made to send in constant time, and to receive and delete in linear time.

On every SendMessage moto reads one queue attribute, ContentBasedDeduplication, through
`Queue.attributes`, which builds every attribute, the approximate message counts included, by
looking at every message in the queue: a queue filled with N messages costs O(N^2). Batch's events
(one per job status change) fill the events queue by the thousand, so while a message is being
sent `Queue.attributes` holds only what sending reads. Everything else (GetQueueAttributes
included) still sees every attribute.

Receiving and deleting (every answer is moto's; only faster):

- For every message ReceiveMessage returns, moto checks the queue's retention period through
  `get_queue_attributes(queue, ["MessageRetentionPeriod"])`, which builds every attribute of
  the queue, each a pass over every message. Here the check reads the integer from the queue.
- `Queue.messages` (the visible, undelayed messages, built on every receive) reads the clock
  twice per message; here once per call.
- DeleteMessage looks at every receipt handle of every message of the queue, twice. The message
  being deleted is nearly always one received and not deleted yet (`pending_messages`): look
  there first, then in the whole queue as moto does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs.exceptions import ReceiptHandleIsInvalid
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
    _install_receive()
    _installed = True


def _install_receive() -> None:
    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Any
    ) -> bool:
        queue: Any = self.get_queue(queue_name)  # MessageRetentionPeriod, set as an int
        retention_period = int(queue.message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    def messages(self: Queue) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delete_message(self: Queue, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # already deleted: moto answers as if it deleted it again
        target = next(
            (m for m in self.pending_messages if m.had_receipt_handle(receipt_handle)), None
        ) or next((m for m in self._messages if m.had_receipt_handle(receipt_handle)), None)
        if target is None:
            raise ReceiptHandleIsInvalid()
        self.pending_messages.discard(target)
        self.deleted_messages.update(h for h in target.all_receipt_handles if h is not None)
        self._messages.remove(target)  # messages compare by identity

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
