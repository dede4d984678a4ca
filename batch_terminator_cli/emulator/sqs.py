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
  character" (SendMessage, MessageBody). moto stores them unchanged. A string message attribute's
  value gets the same rule (replaced, or refused when no character is valid).

SendMessageBatch, as SQS does it: "The result of sending each message is reported individually in
the response" (SendMessageBatch, API reference). An entry that is too large for the queue, empty,
has no valid character or has invalid message attributes fails alone, as a `Failed` entry
(BatchResultErrorEntry: Id, Code, Message, SenderFault true), while the other entries are sent.
moto validates every entry's attributes for the whole call, and raises for the whole call when one
entry is too large after sending the entries before it. What concerns the request stays a
request error, as the reference lists them: no entries (EmptyBatchRequest), more than 10
(TooManyEntriesInBatchRequest), a bad or repeated Id (InvalidBatchEntryId,
BatchEntryIdsNotDistinct), and a total payload over 1 MiB (BatchRequestTooLong: "The maximum
allowed individual message size and the maximum total payload size (the sum of the individual
lengths of all of the batched messages) are both 1 MiB", counted here in UTF-8 bytes with
attributes, as one message is).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs.exceptions import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    InvalidParameterValue,
    MissingParameter,
    ReceiptHandleIsInvalid,
    SQSException,
    TooManyEntriesInBatchRequest,
)
from moto.sqs.models import Message, Queue, SQSBackend
from moto.sqs.responses import SQSResponse
from moto.sqs.utils import validate_message_attributes

_sending = threading.local()
# What SQS accepts in a body (the XML 1.0 Char production); anything else becomes U+FFFD.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# SendMessageBatch: at most 10 entries, Ids of 1 to 80 alphanumerics, hyphens or underscores, and
# 1 MiB in all (SendMessageBatch and SendMessageBatchRequestEntry, API reference).
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 1_048_576
_BATCH_ENTRY_ID = re.compile(r"[\w-]{1,80}", re.ASCII)
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
        if args:  # message_attributes given by position, as moto's own callers may
            kwargs["message_attributes"], args = args[0], args[1:]
        message_body, kwargs["message_attributes"] = _as_sqs_stores(
            self.get_queue(queue_name), message_body, kwargs.get("message_attributes") or {}
        )
        with _while_sending():
            return send(self, queue_name, message_body, *args, **kwargs)

    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.send_message_batch = _send_message_batch  # type: ignore[method-assign]
    SQSResponse.send_message_batch = _send_message_batch_response  # type: ignore[method-assign]
    _install_receive()
    _installed = True


def _as_sqs_stores(queue: Any, body: str, attributes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The body and message attributes SQS would store, or the error SendMessage answers (see
    the module docstring)."""
    if not body:
        raise MissingParameter("MessageBody")
    stored = _stored_text(body, "the message body")
    stored_attributes = {
        name: (
            {
                **value,
                "StringValue": _stored_text(value["StringValue"], f"message attribute {name}"),
            }
            if isinstance(value, dict) and isinstance(value.get("StringValue"), str)
            else value
        )
        for name, value in attributes.items()
    }
    size = _message_size(stored, stored_attributes)
    limit = int(queue.maximum_message_size)
    if size > limit:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
        )
    return stored, stored_attributes


def _stored_text(text: str, what: str) -> str:
    if text and not _NOT_XML_CHAR.sub("", text):
        raise InvalidParameterValue(f"Invalid characters found in {what}.")
    return _NOT_XML_CHAR.sub("\ufffd", text)


def _message_size(body: str, attributes: dict[str, Any]) -> int:
    size = _utf8_size(body)
    for name, value in attributes.items():
        size += _utf8_size(str(name))
        for part in ("DataType", "StringValue", "BinaryValue"):
            raw = value.get(part) if isinstance(value, dict) else None
            if raw is not None:
                size += len(raw) if isinstance(raw, bytes) else _utf8_size(str(raw))
    return size


def _send_message_batch(
    self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]
) -> tuple[list[Message], list[dict[str, Any]]]:
    """SendMessageBatch: each entry sent or failed alone (see the module docstring). Raises
    the request's errors only."""
    self.get_queue(queue_name)
    if not entries:
        raise EmptyBatchRequest()
    if len(entries) > MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest(len(entries))
    ids = [str(entry.get("Id", "")) for entry in entries.values()]
    if not all(_BATCH_ENTRY_ID.fullmatch(i) for i in ids):
        raise InvalidBatchEntryId()
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise BatchEntryIdsNotDistinct(duplicate)
    total = sum(
        _message_size(str(entry.get("MessageBody") or ""), entry.get("MessageAttributes") or {})
        for entry in entries.values()
    )
    if total > MAX_BATCH_BYTES:
        raise BatchRequestTooLong(total)
    sent: list[Message] = []
    failed: list[dict[str, Any]] = []
    for entry in entries.values():
        try:
            validate_message_attributes(entry.get("MessageAttributes") or {})
            message = self.send_message(
                queue_name,
                entry.get("MessageBody") or "",
                message_attributes=entry.get("MessageAttributes") or {},
                delay_seconds=entry.get("DelaySeconds"),
                group_id=entry.get("MessageGroupId"),
                deduplication_id=entry.get("MessageDeduplicationId"),
            )
        except SQSException as refused:
            failed.append(
                {
                    "Id": entry["Id"],
                    "SenderFault": True,
                    "Code": refused.code,
                    "Message": refused.message,
                }
            )
            continue
        message.user_id = entry["Id"]  # type: ignore[attr-defined]
        sent.append(message)
    return sent, failed


def _send_message_batch_response(self: SQSResponse) -> Any:
    """moto's SendMessageBatch response, without its whole-call check of every entry's message
    attributes (each entry's are checked as it is sent)."""
    from moto.core.responses import ActionResult

    queue_name = self._get_queue_name()
    queue = self.sqs_backend.get_queue(queue_name)
    listed = self._get_param("Entries", [])
    entries = {str(index): entry for index, entry in enumerate(listed)}
    for entry in entries.values():
        entry.setdefault("MessageAttributes", {})
        entry.setdefault("DelaySeconds", None)
    messages, failed = self.sqs_backend.send_message_batch(queue_name, entries)
    result: dict[str, Any] = {"Successful": [], "Failed": failed}
    for message in messages:
        answer = {
            "Id": message.user_id,  # type: ignore[attr-defined]
            "MessageId": message.id,
            "MD5OfMessageBody": message.body_md5,
        }
        if message.message_attributes:
            answer["MD5OfMessageAttributes"] = message.attribute_md5
        if queue.fifo_queue:
            answer["SequenceNumber"] = message.sequence_number
        result["Successful"].append(answer)
    return ActionResult(result)


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
