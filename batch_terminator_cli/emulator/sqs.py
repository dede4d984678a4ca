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

Sending, as SQS does it (moto is kinder, so a test of a big or odd message would prove nothing):

- the size limit counts UTF-8 bytes of the body and of every message attribute's name, type and
  value ("All components of a message attribute are included in the message size restriction",
  SQS developer guide, message attributes); moto counts the body's characters only;
- an empty body is refused (SendMessage: "The minimum size is one character");
- characters outside XML's set (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
  #x10000-#x10FFFF) are not refused: SQS "replaces those invalid characters with U+FFFD before
  storing the message in the queue, as long as the message body contains at least one valid
  character" (SendMessage, MessageBody). moto stores them unchanged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs.exceptions import InvalidParameterValue, MissingParameter, ReceiptHandleIsInvalid
from moto.sqs.models import Queue, SQSBackend

_sending = threading.local()
# What SQS accepts in a body (the XML 1.0 Char production); anything else becomes U+FFFD.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
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

    def send_message(
        self: SQSBackend, queue_name: str, message_body: str, *args: Any, **kwargs: Any
    ) -> Any:
        message_body = _as_sqs_stores(
            self.get_queue(queue_name),
            message_body,
            kwargs.get("message_attributes") or (args[0] if args else None) or {},
        )
        with _while_sending():
            return send(self, queue_name, message_body, *args, **kwargs)

    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    _install_receive()
    _installed = True


def _as_sqs_stores(queue: Any, body: str, attributes: dict[str, Any]) -> str:
    """The body SQS would store, or the error SendMessage answers (see the module docstring)."""
    if not body:
        raise MissingParameter("MessageBody")
    stored = _NOT_XML_CHAR.sub("\ufffd", body)
    if not _NOT_XML_CHAR.sub("", body):
        raise InvalidParameterValue("Invalid characters found in the message body.")
    size = _utf8_size(stored)
    for name, value in attributes.items():
        size += _utf8_size(str(name))
        for part in ("DataType", "StringValue", "BinaryValue"):
            raw = value.get(part)
            if raw is not None:
                size += len(raw) if isinstance(raw, bytes) else _utf8_size(str(raw))
    limit = int(queue.maximum_message_size)
    if size > limit:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
        )
    return stored


def _utf8_size(text: str) -> int:
    # A lone surrogate cannot reach SQS over the wire; counted as its 3 bytes if a test sends one.
    return len(text.encode("utf-8", "surrogatepass"))


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
