"""SQS message move tasks (DLQ redrive), which moto does not implement.

As the SQS API reference describes StartMessageMoveTask, ListMessageMoveTasks and
CancelMessageMoveTask (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/
API_StartMessageMoveTask.html, API_ListMessageMoveTasks.html, API_CancelMessageMoveTask.html) and
the developer guide its DLQ redrive ("Configure a dead-letter queue redrive"):

- The source must be a queue configured as the dead-letter queue of another SQS queue
  (`InvalidParameterValue` otherwise). The destination is the given queue, or, when none is
  given, each message's original source queue (the `DeadLetterQueueSourceArn` SQS records as a
  message enters a DLQ; here, where that is unknown, the DLQ's one source queue).
- Only one active task per queue at a time: a second start while one runs is refused.
- The task is asynchronous: it moves the source's messages in order, oldest first ("Dead-letter
  queues redrive messages in the order they are received, starting with the oldest message"), at
  `MaxNumberOfMessagesPerSecond` (1 to 500; unset: the system's own rate, 500 here). Each moved
  message is a new message in the destination ("a new messageID and enqueueTime are assigned to
  redriven messages", so its retention period starts again; receive count 0) with the same body,
  message attributes and system attributes, and is deleted from the source only once it is in
  the destination: nothing is lost or doubled.
- ListMessageMoveTasks gives the most recent tasks of a source first (MaxResults 1 to 10,
  default 1), with `ApproximateNumberOfMessagesMoved`, `ApproximateNumberOfMessagesToMove` (the
  messages in the source when the task started), `Status` (RUNNING, COMPLETED, CANCELLING,
  CANCELLED, FAILED), `StartedTimestamp` (ms since the epoch) and the `TaskHandle` while it runs.

- A message the destination refuses (larger than its MaximumMessageSize, for one) ends the task:
  `Status` FAILED with a `FailureReason` ("The task failure reason (only included if the task
  status is FAILED)", ListMessageMoveTasksResultEntry); that message and every one behind it stay
  in the source. ListMessageMoveTasks itself answers as usual. The reference gives no wording for
  the reason: here it is the refusal's error code and message.

Here the task progresses whenever a move-task call is made: by the time elapsed since the last
step, at its rate (the emulator has no background worker for SQS).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import unix_time
from moto.sqs.exceptions import InvalidParameterValue, SQSException
from moto.sqs.models import Message, Queue, SQSBackend
from moto.sqs.responses import SQSResponse

SYSTEM_RATE = 500
MAX_RATE = 500
_lock = threading.RLock()
_installed = False


class ResourceNotFound(SQSException):
    """No such task (CancelMessageMoveTask's ResourceNotFoundException)."""

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


@dataclass
class MoveTask:
    """One message move task of a source queue."""

    task_id: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    started: float  # seconds since the epoch
    moved: int = 0
    status: str = "RUNNING"
    failure: str | None = None
    last_step: float = field(default=0.0)
    credit: float = 0.0  # messages the rate allows and not moved yet

    @property
    def handle(self) -> str:
        raw = json.dumps({"taskId": self.task_id, "sourceArn": self.source_arn})
        return base64.b64encode(raw.encode()).decode()

    def describe(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": int(self.started * 1000),
        }
        if self.status == "RUNNING":
            result["TaskHandle"] = self.handle
        if self.destination_arn:
            result["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            result["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            result["FailureReason"] = self.failure
        return result


def _tasks(backend: SQSBackend) -> dict[str, list[MoveTask]]:
    """Source ARN -> its tasks, oldest first; kept on the backend, so moto's reset forgets them
    with the queues."""
    tasks: dict[str, list[MoveTask]] | None = getattr(backend, "_message_move_tasks", None)
    if tasks is None:
        tasks = {}
        backend._message_move_tasks = tasks  # type: ignore[attr-defined]
    return tasks


def _queue_by_arn(backend: SQSBackend, arn: str, what: str) -> Queue:
    for queue in backend.queues.values():
        if queue.queue_arn == arn:
            return queue
    raise InvalidParameterValue(
        f"Value {arn} for parameter {what} is invalid. Reason: no such queue."
    )


def _sources(backend: SQSBackend, dlq: Queue) -> list[Queue]:
    return [q for q in backend.queues.values() if q.dead_letter_queue is dlq]


def start(
    backend: SQSBackend, source_arn: str, destination_arn: str | None, rate: int | None
) -> str:
    """StartMessageMoveTask; returns the task handle. Raises InvalidParameterValue."""
    with _lock:
        _step_all(backend)
        source = _queue_by_arn(backend, source_arn, "SourceArn")
        if not _sources(backend, source):
            raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn is not None:
            _queue_by_arn(backend, destination_arn, "DestinationArn")
        if rate is not None and not 1 <= rate <= MAX_RATE:
            raise InvalidParameterValue(
                f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. "
                f"Reason: must be between 1 and {MAX_RATE}."
            )
        tasks = _tasks(backend)
        busy = {source_arn} | ({destination_arn} if destination_arn else set())
        for arn, queue_tasks in tasks.items():
            for task in queue_tasks:
                involved = {arn} | ({task.destination_arn} if task.destination_arn else set())
                if task.status == "RUNNING" and involved & busy:
                    raise InvalidParameterValue(
                        "There is already a task running. Only one active task is allowed "
                        "for a source queue arn at a given time."
                    )
        now = unix_time()
        task = MoveTask(
            task_id=str(uuid.uuid4()),
            source_arn=source_arn,
            destination_arn=destination_arn,
            rate=rate,
            to_move=len(source._messages),
            started=now,
            last_step=now,
        )
        tasks.setdefault(source_arn, []).append(task)
        return task.handle


def list_tasks(backend: SQSBackend, source_arn: str, max_results: int) -> list[dict[str, Any]]:
    """ListMessageMoveTasks: the source's most recent tasks first."""
    if not 1 <= max_results <= 10:
        raise InvalidParameterValue(
            f"Value {max_results} for parameter MaxResults is invalid. Reason: must be 1 to 10."
        )
    with _lock:
        _queue_by_arn(backend, source_arn, "SourceArn")
        _step_all(backend)
        tasks = _tasks(backend).get(source_arn, [])
        return [task.describe() for task in reversed(tasks[-max_results:])]


def cancel(backend: SQSBackend, handle: str) -> int:
    """CancelMessageMoveTask; returns the messages moved so far. Raises ResourceNotFound."""
    with _lock:
        _step_all(backend)
        for queue_tasks in _tasks(backend).values():
            for task in queue_tasks:
                if task.handle == handle and task.status == "RUNNING":
                    task.status = "CANCELLED"
                    return task.moved
        raise ResourceNotFound("Task does not exist or is not running.")


def _step_all(backend: SQSBackend) -> None:
    now = unix_time()
    for queue_tasks in _tasks(backend).values():
        for task in queue_tasks:
            if task.status == "RUNNING":
                _step(backend, task, now)


def _step(backend: SQSBackend, task: MoveTask, now: float) -> None:
    rate = task.rate or SYSTEM_RATE
    task.credit = min(task.credit + (now - task.last_step) * rate, float(rate))
    task.last_step = now
    allowance = int(task.credit)
    task.credit -= allowance
    try:
        source = _queue_by_arn(backend, task.source_arn, "SourceArn")
    except InvalidParameterValue:
        task.status, task.failure = "FAILED", "AWS.SimpleQueueService.NonExistentQueue"
        return
    for _ in range(allowance):
        waiting = [m for m in source._messages if m.visible and not m.delayed]
        if not waiting:
            break
        message = waiting[0]
        destination_arn = task.destination_arn or _original_source(backend, source, message)
        try:
            destination = _queue_by_arn(backend, destination_arn, "DestinationArn")
        except InvalidParameterValue:
            task.status, task.failure = "FAILED", "AWS.SimpleQueueService.NonExistentQueue"
            return
        try:
            _move(backend, source, destination, message)
        except SQSException as refused:
            task.status, task.failure = "FAILED", _failure_reason(message, refused)
            return
        task.moved += 1
    if not any(m.visible and not m.delayed for m in source._messages) or task.moved >= task.to_move:
        task.status = "COMPLETED"


def _failure_reason(message: Message, refused: SQSException) -> str:
    code = getattr(refused, "code", None) or type(refused).__name__
    text = getattr(refused, "message", None) or str(refused)
    return f"message {message.id} could not be moved: {code}: {text}"


def _original_source(backend: SQSBackend, dlq: Queue, message: Message) -> str:
    recorded = message.system_attributes.get("DeadLetterQueueSourceArn")
    if isinstance(recorded, str):
        return recorded
    return str(_sources(backend, dlq)[0].queue_arn)


def _move(backend: SQSBackend, source: Queue, destination: Queue, message: Message) -> None:
    """Send a copy (a new message id), then delete the original: never lost, never doubled."""
    system = {k: v for k, v in message.system_attributes.items() if k != "DeadLetterQueueSourceArn"}
    copy = backend.send_message(
        destination.name,
        message.body,
        message_attributes=dict(message.message_attributes),
        system_attributes=system or None,
        group_id=message.group_id,
        deduplication_id=message.deduplication_id,
        validate_group_id=False,
    )
    copy.sender_id = message.sender_id
    with source._messages_lock:
        source._messages.remove(message)
    source.pending_messages.discard(message)


def _start_response(self: SQSResponse) -> ActionResult:
    rate = self._get_param("MaxNumberOfMessagesPerSecond")
    handle = start(
        self.sqs_backend,
        self._get_param("SourceArn"),
        self._get_param("DestinationArn"),
        int(rate) if rate is not None else None,
    )
    return ActionResult({"TaskHandle": handle})


def _list_response(self: SQSResponse) -> ActionResult:
    max_results = self._get_param("MaxResults")
    results = list_tasks(
        self.sqs_backend,
        self._get_param("SourceArn"),
        int(max_results) if max_results is not None else 1,
    )
    return ActionResult({"Results": results})


def _cancel_response(self: SQSResponse) -> ActionResult:
    moved = cancel(self.sqs_backend, self._get_param("TaskHandle"))
    return ActionResult({"ApproximateNumberOfMessagesMoved": moved})


def install() -> None:
    """Add the three move-task operations to moto's SQS (idempotent)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return
    SQSResponse.start_message_move_task = _start_response  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = _list_response  # type: ignore[attr-defined]
    SQSResponse.cancel_message_move_task = _cancel_response  # type: ignore[attr-defined]
    _installed = True
