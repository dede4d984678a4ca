"""Operator tools: `redrive` (the DLQ back to the request queue), `status` (the system, or jobs'
outcomes), `pause` / `resume` (every policy path), and `request --wait`.

The functions here take boto3 clients and return plain data; `main.py` prints it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_terminator.contract import ERROR_ATTRIBUTE
from batch_terminator.models.request import Origin, check_job_id
from batch_terminator.pausing import Pause, clear_pause, read_pause, write_pause
from batch_terminator_cli.auditing import AuditQuery, read_audit

EXCERPT_CHARACTERS = 60
# SQS: ReceiveMessage returns at most 10 messages a call; DescribeJobs takes at most 100 ids.
RECEIVE_BATCH = 10
DESCRIBE_BATCH = 100
# How long `redrive` keeps the messages it lists hidden from other readers (seconds).
PEEK_VISIBILITY_SECONDS = 60
PATTERN_JOBS = 15
FINISHED_TASK = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
# How many DLQ messages `status` and `request --wait` read to tell whether a failed request has
# a delivery left; a request parked beyond them is shown pending.
DLQ_SCAN = 1000


def job_id(value: str) -> str:
    """A job id, from a job id or a job ARN (`arn:aws:batch:<region>:<account>:job/<id>`).

    Raises ValueError saying what a job id looks like (the request validator's own check)."""
    return check_job_id(value, Origin())


# ---- redrive ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ message as `redrive` lists it."""

    message_id: str
    error: str | None
    excerpt: str
    receive_count: int
    sent_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "error": self.error,
            "bodyExcerpt": self.excerpt,
            "receiveCount": self.receive_count,
            "sentAt": self.sent_at.isoformat() if self.sent_at else None,
        }


def excerpt(body: str, size: int = EXCERPT_CHARACTERS) -> str:
    """The body on one line, shortened to `size` characters (an ellipsis marks a cut)."""
    flat = " ".join(body.split())
    return flat if len(flat) <= size else flat[: size - 1] + "…"


def queue_arn(sqs: Any, url: str) -> str:
    """A queue's ARN (GetQueueAttributes)."""
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def queue_depth(sqs: Any, url: str) -> dict[str, int]:
    """Approximate message counts: visible, in flight (not visible), delayed."""
    names = {
        "visible": "ApproximateNumberOfMessages",
        "inFlight": "ApproximateNumberOfMessagesNotVisible",
        "delayed": "ApproximateNumberOfMessagesDelayed",
    }
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names.values()))[
        "Attributes"
    ]
    return {key: int(attributes.get(name, 0)) for key, name in names.items()}


def peek(sqs: Any, url: str, limit: int) -> list[DeadLetter]:
    """Up to `limit` messages of a queue, read without consuming them: each is received (hidden
    for a minute), then made visible again at once. Nothing is deleted."""
    return [_dead_letter(m) for m in _receive_and_release(sqs, url, limit)]


def parked_requests(sqs: Any, url: str, limit: int = DLQ_SCAN) -> frozenset[str]:
    """What identifies the requests in the DLQ (up to `limit` messages, read as `peek` reads):
    each message's id, its `originalMessageId` attribute (the terminator parks a request under
    a new id and names the one it came in) and its body's `requestId` (a body of the request
    queue, or an EventBridge event's `detail`). A request found here has no delivery left."""
    keys: set[str] = set()
    for message in _receive_and_release(sqs, url, limit):
        keys.add(str(message["MessageId"]))
        original = message.get("MessageAttributes", {}).get("originalMessageId", {})
        if isinstance(original.get("StringValue"), str):
            keys.add(original["StringValue"])
        request_id = _body_request_id(message.get("Body", ""))
        if request_id is not None:
            keys.add(request_id)
    return frozenset(keys)


def _body_request_id(body: str) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    detail = data.get("detail")
    found = data.get("requestId")
    if found is None and isinstance(detail, dict):
        found = detail.get("requestId")
    return found if isinstance(found, str) else None


def _receive_and_release(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        while len(received) < limit:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(RECEIVE_BATCH, limit - len(received)),
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
            ).get("Messages", [])
            fresh = [m for m in got if m["MessageId"] not in seen]
            if not fresh:
                break
            seen.update(m["MessageId"] for m in fresh)
            received.extend(fresh)
    finally:
        for start in range(0, len(received), RECEIVE_BATCH):
            chunk = received[start : start + RECEIVE_BATCH]
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )
    return received


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    error = message.get("MessageAttributes", {}).get(ERROR_ATTRIBUTE, {}).get("StringValue")
    sent = attributes.get("SentTimestamp")
    return DeadLetter(
        message_id=message["MessageId"],
        error=error,
        excerpt=excerpt(message.get("Body", "")),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
    )


def running_move_task(sqs: Any, source_arn: str) -> dict[str, Any] | None:
    """The message move task running from `source_arn`, if any (ListMessageMoveTasks)."""
    results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
    if results and results[0].get("Status") == "RUNNING":
        return dict(results[0])
    return None


def start_move(sqs: Any, source_arn: str, destination_arn: str) -> str:
    """StartMessageMoveTask from the DLQ to the request queue; returns the task handle. SQS
    moves the messages itself: none is received and sent again here, none deleted."""
    return str(
        sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)[
            "TaskHandle"
        ]
    )


def follow_move(
    sqs: Any,
    source_arn: str,
    on_progress: Callable[[dict[str, Any]], None],
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ListMessageMoveTasks until the source's latest task is COMPLETED, CANCELLED or
    FAILED; `on_progress` sees each answer. Returns the last one."""
    while True:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        if not results:
            return {"Status": "FAILED", "FailureReason": "SQS lists no move task for this queue"}
        task = dict(results[0])
        on_progress(task)
        if task.get("Status") in FINISHED_TASK:
            return task
        sleep(poll_seconds)


# ---- pause ---------------------------------------------------------------------------------------


def pause(dynamodb: Any, table: str, paused_by: str, reason: str, now: datetime) -> Pause:
    """Write the pause item; returns it."""
    item = Pause(paused_by=paused_by, paused_at=int(now.timestamp()), reason=reason)
    write_pause(dynamodb, table, item)
    return item


def resume(dynamodb: Any, table: str) -> bool:
    """Delete the pause item; True if the system was paused."""
    return clear_pause(dynamodb, table)


def pause_state(dynamodb: Any, table: str) -> Pause | None:
    """The pause in force, or None (`read_pause`: a malformed item is a pause, never an error)."""
    return read_pause(dynamodb, table)


def pause_as_json(item: Pause | None) -> dict[str, Any]:
    """`{"paused": False}`, or who paused, since when (ISO 8601, UTC; null when the item's time
    is unreadable), why, and `malformed` (one line; null for a well-formed item)."""
    if item is None:
        return {"paused": False}
    return {
        "paused": True,
        "pausedBy": item.paused_by,
        "pausedAt": (
            datetime.fromtimestamp(item.paused_at, UTC).isoformat()
            if item.paused_at is not None
            else None
        ),
        "reason": item.reason,
        "malformed": item.malformed,
    }


# ---- job outcomes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobState:
    """What is known of one job: its latest audit decision, else its Batch status."""

    job_id: str
    outcome: str  # terminated | skipped | failed | rejected | pending | unknown
    detail: str
    batch_status: str | None = None
    decided_at: str | None = None

    @property
    def known(self) -> bool:
        """A final outcome. A `failed` line whose request has a delivery left is no outcome:
        `job_states` shows it `pending` ("failed, will be retried: <error>")."""
        return self.outcome in ("terminated", "skipped", "failed", "rejected")

    def as_json(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "outcome": self.outcome,
            "detail": self.detail,
            "batchStatus": self.batch_status,
            "decidedAt": self.decided_at,
        }


def _detail(line: dict[str, Any]) -> str:
    outcome = line.get("outcome")
    if outcome == "skipped":
        return f"skipped: {line.get('skip_reason') or 'no reason given'}"
    if outcome in ("failed", "rejected"):
        return f"{outcome}: {line.get('error') or 'no error given'}"
    via = line.get("policy") or line.get("source") or "request"
    return f"terminated ({via}): {line.get('reason') or ''}".rstrip(": ")


def _batch_statuses(batch: Any, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(ids), DESCRIBE_BATCH):
        for job in batch.describe_jobs(jobs=ids[start : start + DESCRIBE_BATCH]).get("jobs", []):
            found[str(job["jobId"])] = str(job["status"])
    return found


def job_states(
    logs: Any,
    batch: Any | None,
    log_group: str,
    ids: list[str],
    since: timedelta,
    now: datetime,
    request_id: str | None = None,
    parked: Callable[[], frozenset[str]] | None = None,
) -> list[JobState]:
    """Each job's latest decision in the audit log (within `since`), else its Batch status
    (DescribeJobs) as `pending`, or `unknown` where Batch does not know the job either.

    A `failed` line is final only when its request has no delivery left: `parked()` (called at
    most once, only when a job's latest line is `failed`; `parked_requests` of the DLQ) names
    its message id or request id. Otherwise SQS delivers the request again and the job is
    `pending`, "failed, will be retried: <error>"; without `parked`, always so.

    Lines of `request_id` count for a job whatever their job_id; reads with FilterLogEvents
    (a short window: the lines of jobs just asked about)."""
    # A filter pattern is at most 1,024 characters: name the jobs when they fit, else read all
    # the lines of the window (or of the request) and pick here.
    named = tuple(ids) if request_id is None and len(ids) <= PATTERN_JOBS else ()
    query = AuditQuery(since, request_id=request_id, limit=100_000, any_job=named)
    wanted = set(ids)
    latest: dict[str, dict[str, Any]] = {}
    for line in reversed(read_audit(logs, log_group, query, now, insights=False).lines):
        key = line.get("job_id")
        if isinstance(key, str) and key in wanted:
            latest[key] = line
        elif request_id is not None and line.get("outcome") == "rejected":
            for job in wanted:  # the request itself was rejected: every job of it is
                latest.setdefault(job, line)
    undecided = [job for job in ids if job not in latest]
    statuses = _batch_statuses(batch, undecided) if batch is not None and undecided else {}
    in_dlq: frozenset[str] | None = None
    states: list[JobState] = []
    for job in ids:
        line = latest.get(job)
        if line is not None and line.get("outcome") == "failed":
            if in_dlq is None:
                in_dlq = parked() if parked is not None else frozenset()
            keys = {line.get("message_id"), line.get("request_id")} - {None}
            if not keys & in_dlq:
                states.append(
                    JobState(
                        job,
                        "pending",
                        f"failed, will be retried: {line.get('error') or 'no error given'}",
                        line.get("status_before"),
                        str(line.get("timestamp") or "") or None,
                    )
                )
                continue
        if line is not None:
            states.append(
                JobState(
                    job,
                    str(line.get("outcome")),
                    _detail(line),
                    line.get("status_before"),
                    str(line.get("timestamp") or "") or None,
                )
            )
        elif job in statuses:
            states.append(
                JobState(
                    job, "pending", f"pending: {statuses[job]}, no decision yet", statuses[job]
                )
            )
        else:
            states.append(
                JobState(job, "unknown", "unknown: no decision, and Batch does not know it")
            )
    return states


def wait_for_outcomes(
    read: Callable[[], list[JobState]],
    timeout_seconds: float,
    on_poll: Callable[[list[JobState]], None],
    poll_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[JobState], bool]:
    """Call `read` until every job's outcome is known or `timeout_seconds` passed; returns the
    last states and whether all are known."""
    deadline = clock() + timeout_seconds
    while True:
        states = read()
        on_poll(states)
        if all(state.known for state in states):
            return states, True
        left = deadline - clock()
        if left <= 0:
            return states, False
        sleep(min(poll_seconds, left))


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
