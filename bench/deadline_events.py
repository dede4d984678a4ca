"""The deadline path at scale: N Batch Job State Change events through the deadline function,
then how late the requests it scheduled reach the request queue.

Part 1, calls per event. Jobs across three queues, RUNNABLE and RUNNING, are staged in chunks of
one event-source batch (100 events); most are under a policy's limit (a schedule is created),
some are past it (the deadline function enqueues them at once), and one queue has no limit at
all. Then some of them move on: RUNNABLE jobs start (their RUNNABLE schedule is deleted, a
RUNNING one created where a RUNNING limit applies), RUNNING jobs finish (their schedules are
deleted), and RUNNABLE jobs are found blocking their queue (a Batch Job Queue Blocked event:
the tighter `statusReasons` policy gets a schedule of its own, or a request at once when its
limit has passed). Counted: events (SQS messages) and the function's invocations; schedules
created / updated / deleted and its Scheduler and Batch calls, from its own summary lines;
Scheduler calls by operation, on its client. DescribeJobs reads 100 jobs a call.

Part 2, lateness on the emulator's clock. The emulator's clock lets time pass without anyone
sleeping: `advance(10 s)` moves every job timestamp and every one-time schedule 10 s into the
past, so for everything that reads the real clock 10 s have gone by (`emulator/clock.py`).
"Emulator time" is the real time plus everything advanced so far; every figure below is a
difference of two emulator times. While the events come in, the emulator's Scheduler driver
fires every schedule due after each batch of events (as `batch-terminator local` does every
few seconds); then the bench advances the clock in 10 s steps, the driver fires what is due
after each step, and the terminator drains the request queue. For each job the terminator
terminated on a deadline:

- limit → at(): the product's own share. A deadline is the first whole minute past the moment
  the job's age in its status exceeds the limit (Scheduler may invoke anywhere in the minute
  at() names, so only a whole minute never fires early), so at most 60 s;
- at() → request queued: when the driver fired the schedule, against its at() time. Here that
  is how often the bench's driver runs (a 10 s step, or a batch of events), not a property of
  the product;
- limit → request queued: the sum (the product's share plus the bench driver's step);
- for deadlines already past when the event arrived (a policy deployed later, a late event):
  event queued → request queued, from the SQS timestamps of the event in the events queue and
  of the request in the request queue (the deadline function enqueues at once, 10 a call).

Not measured: EventBridge's delivery of Batch's events to the events queue, Lambda's polling of
it, and EventBridge Scheduler's own invocation latency in AWS. Scheduler documents: "All
schedule types on EventBridge Scheduler invoke their targets with 60 second precision. This means
that if you set your schedule to run at 1:00, it will invoke the target API between 1:00:00 and
1:00:59, assuming that a flexible time window is not set" (EventBridge Scheduler user guide,
"Schedule types", https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html);
the product's schedules set the flexible time window OFF ("Configuring flexible time windows",
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-flexible-time-windows.html).
In AWS the at() → queued row is Scheduler's share (within the minute), not the driver step
measured here: limit → queued is then the product's rounding (at most 60 s) plus Scheduler's
invocation within at()'s minute.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from batch_terminator.handlers import deadline
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import scheduler
from batch_terminator_cli.emulator.lambda_runtime import Invocation
from batch_terminator_cli.sandbox import Sandbox, sandbox

GPU, CPU, INTERACTIVE = "gpu-training", "cpu-batch", "interactive"
QUEUES: Final = (GPU, CPU, INTERACTIVE)
QUEUE_WEIGHTS: Final = (0.4, 0.4, 0.2)
DEFINITION: Final = "train-bert"
BLOCKED_REASON: Final = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement is too high."
)
# Limits of minutes, so that every schedule comes due within the stepped window.
LIMITS: Final = {
    (GPU, "RUNNING"): timedelta(minutes=10),
    (GPU, "RUNNABLE"): timedelta(minutes=8),
    (CPU, "RUNNABLE"): timedelta(minutes=8),
}
POLICY_LIMITS: Final = {
    "gpu-runtime-cap": timedelta(minutes=10),
    "stuck-runnable": timedelta(minutes=8),
    "misconfigured": timedelta(minutes=4),
}
# The event source mapping's batch size for the events queue (as `Sandbox.run_deadlines`).
CHUNK: Final = 100
STEP: Final = timedelta(seconds=10)
GOAL_SECONDS: Final = 60.0
# Of the events: staged jobs, jobs that start, jobs that finish, jobs found blocking a queue.
SHARES: Final = {"staged": 0.6, "started": 0.12, "finished": 0.24, "blocked": 0.04}
PAST_SHARE: Final = 0.1  # staged jobs already past their limit when their event arrives
# The deadline path counts its terminations against maxPerRun per sweep interval: no cap here.
CAP: Final = 10_000


def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(
        {
            "version": 1,
            "settings": {"jobQueues": list(QUEUES)},
            "policies": [
                {
                    "name": "gpu-runtime-cap",
                    "match": {"jobQueues": [GPU]},
                    "when": {"status": "RUNNING", "olderThan": "10m"},
                    "maxPerRun": CAP,
                },
                {
                    "name": "stuck-runnable",
                    "match": {"jobQueues": [GPU, CPU]},
                    "when": {"status": "RUNNABLE", "olderThan": "8m"},
                    "maxPerRun": CAP,
                },
                {
                    "name": "misconfigured",
                    "match": {"jobQueues": [GPU, CPU]},
                    "when": {
                        "status": "RUNNABLE",
                        "statusReasons": ["MISCONFIGURATION:*"],
                        "olderThan": "4m",
                    },
                    "maxPerRun": CAP,
                },
            ],
        }
    )


@dataclass
class Phase:
    """What the deadline function reported over one phase: its summary lines summed."""

    name: str
    invocations: int = 0
    events: int = 0  # distinct events (SQS messages)
    deliveries: int = 0  # records handed to the function, redeliveries included
    created: int = 0
    updated: int = 0
    deleted: int = 0
    enqueued: int = 0
    retried: int = 0
    scheduler_calls: int = 0
    scheduler_ops: Counter[str] = field(default_factory=Counter)
    batch_calls: Counter[str] = field(default_factory=Counter)

    def add(self, summary: dict[str, Any]) -> None:
        self.created += int(summary["schedules_created"])
        self.updated += int(summary["schedules_updated"])
        self.deleted += int(summary["schedules_deleted"])
        self.enqueued += int(summary["enqueued"])
        self.retried += int(summary["retried"])
        self.scheduler_calls += int(summary["scheduler_calls"])
        self.batch_calls.update(summary["batch_calls"])

    def merge(self, other: Phase) -> None:
        self.invocations += other.invocations
        self.events += other.events
        self.deliveries += other.deliveries
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.enqueued += other.enqueued
        self.retried += other.retried
        self.scheduler_calls += other.scheduler_calls
        self.scheduler_ops.update(other.scheduler_ops)
        self.batch_calls.update(other.batch_calls)


@dataclass(frozen=True)
class Spread:
    """min / median / p99 / max of a sample, in seconds."""

    count: int
    low: float
    median: float
    p99: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
        return cls(len(ordered), ordered[0], statistics.median(ordered), p99, ordered[-1])


@dataclass
class Result:
    events: int
    phases: list[Phase]
    staged: Counter[tuple[str, str]]
    steps: int
    fired: int
    terminated_on_schedule: int
    terminated_at_once: int
    pending_after: int
    limit_to_at: Spread | None
    at_to_queued: Spread | None
    limit_to_queued: Spread | None
    event_to_queued: Spread | None
    terminator_calls: dict[str, int]
    seconds: float


@dataclass
class _Ledger:
    """What the bench keeps across phases to join firings, requests and terminations."""

    # deadline-event lines of the `due now` outcome: (job id, the event's message id)
    due_now: list[tuple[str, str]] = field(default_factory=list)
    # SQS SentTimestamp (ms) of every message of the events queue, by message id
    event_sent: dict[str, int] = field(default_factory=dict)
    # SQS SentTimestamp (ms) and job of every request the terminator received, by message id
    request_sent: dict[str, tuple[int, str]] = field(default_factory=dict)
    # per firing, by the message it sent: at() → fired in seconds, and when (emulator time)
    fired: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    # how far the emulator's clock has been advanced
    advanced: timedelta = timedelta(0)
    # schedules fired
    firings: int = 0
    # the deadline function's Scheduler calls, by operation
    scheduler_ops: Counter[str] = field(default_factory=Counter)


def _job_of(record: dict[str, Any]) -> str | None:
    try:
        body = json.loads(record["body"])
    except (KeyError, json.JSONDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    job = body.get("jobId") or (body.get("detail") or {}).get("jobId")
    return str(job) if job else None


def _records(invocations: Sequence[Invocation]) -> Iterator[dict[str, Any]]:
    for invocation in invocations:
        yield from invocation.event["Records"]


def _deadlines(box: Sandbox, phase: Phase, ledger: _Ledger) -> None:
    """Drain the events queue into the deadline function; add what it reported to `phase`."""
    seen = len(box.trigger_logs)
    before = Counter(ledger.scheduler_ops)
    invocations = box.run_deadlines(max_invocations=10_000)
    phase.scheduler_ops.update(ledger.scheduler_ops - before)
    phase.invocations += len(invocations)
    messages: set[str] = set()
    for record in _records(invocations):
        phase.deliveries += 1
        messages.add(record["messageId"])
        ledger.event_sent[record["messageId"]] = int(record["attributes"]["SentTimestamp"])
    phase.events += len(messages)
    for line in box.trigger_logs[seen:]:
        if line.get("message") == "deadline batch":
            phase.add(line)
        elif line.get("message") == "deadline event" and line.get("outcome") == "due now":
            ledger.due_now.append((str(line["job_id"]), str(line["message_id"])))


def _count_calls(client: Any, into: Counter[str]) -> None:
    def before_call(model: Any, **_: Any) -> None:
        into[str(model.name)] += 1

    client.meta.events.register("before-call.scheduler", before_call)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stage(
    box: Sandbox, count: int, rng: random.Random, phase: Phase, ledger: _Ledger
) -> tuple[dict[str, tuple[str, str]], set[str], Counter[tuple[str, str]]]:
    """Stage `count` jobs, a chunk at a time, each chunk's events drained into the function.
    Returns each job's (queue, status), the jobs already past their limit, and the mix."""
    specs: list[tuple[str, str, str, timedelta, bool]] = []
    for i in range(count):
        queue = rng.choices(QUEUES, weights=QUEUE_WEIGHTS)[0]
        status = "RUNNING" if rng.random() < 0.5 else "RUNNABLE"
        limit = LIMITS.get((queue, status))
        past = limit is not None and rng.random() < PAST_SHARE
        if limit is None:
            age = timedelta(seconds=rng.uniform(5, 1800))
        elif past:
            age = limit + timedelta(seconds=rng.uniform(1, 1800))
        else:  # its deadline falls within the next `limit`
            age = timedelta(seconds=rng.uniform(0, limit.total_seconds() - 5))
        specs.append((f"job-{i}", queue, status, age, past))
    where: dict[str, tuple[str, str]] = {}
    past_ids: set[str] = set()
    mix: Counter[tuple[str, str]] = Counter()
    for chunk in _chunks(specs, CHUNK):
        now = datetime.now(UTC)
        by_queue: dict[str, list[tuple[str, str, datetime, dict[str, str] | None]]] = {}
        flags: dict[str, list[tuple[str, bool]]] = {}
        for name, queue, status, age, past in chunk:
            by_queue.setdefault(queue, []).append((name, status, now - age, None))
            flags.setdefault(queue, []).append((status, past))
        for queue, items in by_queue.items():
            ids = box.control.add_jobs(queue, DEFINITION, items)
            for job_id, (status, past) in zip(ids, flags[queue], strict=True):
                where[job_id] = (queue, status)
                mix[(queue, status)] += 1
                if past:
                    past_ids.add(job_id)
        _deadlines(box, phase, ledger)
        _fire(box, ledger)
    return where, past_ids, mix


def _move(
    box: Sandbox,
    where: dict[str, tuple[str, str]],
    past: set[str],
    counts: dict[str, int],
    rng: random.Random,
    phase: Phase,
    ledger: _Ledger,
) -> None:
    """Jobs that are not past their limit move on: some RUNNABLE start, some RUNNING finish,
    some RUNNABLE are found blocking their queue; a chunk of events at a time."""
    runnable = [j for j, (q, s) in where.items() if s == "RUNNABLE" and q != INTERACTIVE]
    running = [j for j, (_, s) in where.items() if s == "RUNNING"]
    runnable = [j for j in runnable if j not in past]
    running = [j for j in running if j not in past]
    rng.shuffle(runnable)
    rng.shuffle(running)
    started = runnable[: counts["started"]]
    blocked = runnable[counts["started"] : counts["started"] + counts["blocked"]]
    finished = running[: counts["finished"]]
    moves = (
        [("start", j) for j in started]
        + [("finish", j) for j in finished]
        + [("block", j) for j in blocked]
    )
    rng.shuffle(moves)
    control = box.control
    for chunk in _chunks(moves, CHUNK):
        now = datetime.now(UTC)
        with control.staging():
            for kind, job_id in chunk:
                if kind == "start":
                    control.set_state(job_id, "STARTING", entered_at=now - timedelta(seconds=20))
                    control.set_state(job_id, "RUNNING", entered_at=now)
                elif kind == "finish":
                    control.set_state(job_id, "SUCCEEDED", entered_at=now)
        for kind, job_id in chunk:
            if kind == "block":
                control.block(job_id, BLOCKED_REASON, at=now)
        _deadlines(box, phase, ledger)
        _fire(box, ledger)


def _terminate(box: Sandbox, ledger: _Ledger) -> None:
    for record in _records(box.run_terminator(max_invocations=10_000)):
        job = _job_of(record)
        if job is not None:
            ledger.request_sent[record["messageId"]] = (
                int(record["attributes"]["SentTimestamp"]),
                job,
            )


def _fire(box: Sandbox, ledger: _Ledger) -> None:
    """The Scheduler driver's turn: fire every schedule due now, remember when."""
    for firing in box.fire_schedules():
        ledger.firings += 1
        if firing.message_id is not None:
            ledger.fired[firing.message_id] = (
                (firing.fired_at - firing.scheduled_time).total_seconds(),
                firing.fired_at + ledger.advanced,
            )


def _step_until_done(box: Sandbox, ledger: _Ledger, window: timedelta) -> int:
    """Advance in steps, firing what is due and draining the request queue after each; until
    no schedule is pending or `window` has passed. Returns the number of steps."""
    steps = 0
    _terminate(box, ledger)  # what was enqueued at once, or fired, while events came in
    while steps * STEP < window and scheduler.next_due(box.session) is not None:
        box.advance(STEP)
        ledger.advanced += STEP
        steps += 1
        _fire(box, ledger)
        _terminate(box, ledger)
    return steps


def _entered(box: Sandbox, job_id: str, status: str, advanced: timedelta) -> datetime | None:
    """When (emulator time) the job last entered `status`."""
    entries = [e for e in box.control.history(job_id) if e.status == status]
    return entries[-1].entered_at + advanced if entries else None


def measure(events: int, seed: int = 11) -> Result:
    rng = random.Random(seed)
    counts = {kind: round(share * events) for kind, share in SHARES.items()}
    counts["staged"] = events - counts["started"] - counts["finished"] - counts["blocked"]
    ledger = _Ledger()
    started_at = time.perf_counter()
    with sandbox(policies()) as box:
        _count_calls(deadline.dependencies().scheduler_client, ledger.scheduler_ops)
        for queue in QUEUES:
            box.world.queue(queue)
        box.world.definition(DEFINITION)
        staged = Phase("staged")
        where, past, mix = _stage(box, counts["staged"], rng, staged, ledger)
        moved = Phase("moved on")
        _move(box, where, past, counts, rng, moved, ledger)
        box.control.reset_calls()
        steps = _step_until_done(box, ledger, window=timedelta(minutes=30))
        terminator_calls = box.control.calls()
        pending = _pending(box)
        terminated = [
            line
            for line in box.audit
            if line["outcome"] == "terminated" and line["source"] in ("deadline", "blocked")
        ]
        entered = {
            str(line["job_id"]): _entered(
                box, str(line["job_id"]), str(line["status_before"]), ledger.advanced
            )
            for line in terminated
        }
    total = Phase("total")
    total.merge(staged)
    total.merge(moved)
    due_event = dict(ledger.due_now)
    on_schedule: list[tuple[float, float, float]] = []
    at_once: list[float] = []
    for line in terminated:
        message, job = str(line["message_id"]), str(line["job_id"])
        if message in ledger.fired:
            late, fired_at = ledger.fired[message]
            since = entered[job]
            if since is None:
                continue
            over = (fired_at - since - POLICY_LIMITS[str(line["policy"])]).total_seconds()
            on_schedule.append((over - late, late, over))
        elif message in ledger.request_sent:
            sent, _ = ledger.request_sent[message]
            event = due_event.get(job)
            if event is not None and event in ledger.event_sent:
                at_once.append((sent - ledger.event_sent[event]) / 1000)
    return Result(
        events=total.events,
        phases=[staged, moved, total],
        staged=mix,
        steps=steps,
        fired=ledger.firings,
        terminated_on_schedule=len(on_schedule),
        terminated_at_once=len(at_once),
        pending_after=pending,
        limit_to_at=Spread.of([a for a, _, _ in on_schedule]),
        at_to_queued=Spread.of([b for _, b, _ in on_schedule]),
        limit_to_queued=Spread.of([c for _, _, c in on_schedule]),
        event_to_queued=Spread.of(at_once),
        terminator_calls=terminator_calls,
        seconds=time.perf_counter() - started_at,
    )


def _pending(box: Sandbox) -> int:
    client = box.session.client("scheduler")
    pages = client.get_paginator("list_schedules").paginate(GroupName=box.deployment.schedule_group)
    return sum(len(page["Schedules"]) for page in pages)


def _per(count: float, events: int) -> str:
    return f"{count / max(events, 1):.3f}"


def run(console: Console, events: int = 10_000) -> Result:
    with contextlib.redirect_stdout(io.StringIO()):  # EMF lines
        result = measure(events)
    table = Table(
        title=f"Deadline function: {result.events:,} Batch events, 3 queues, batches of {CHUNK}"
    )
    for column in (
        "phase",
        "events",
        "invocations",
        "schedules created",
        "updated",
        "deleted",
        "enqueued at once",
        "Scheduler calls",
        "Scheduler calls/event",
        "DescribeJobs",
        "Batch calls/event",
    ):
        table.add_column(column, justify="right")
    for phase in result.phases:
        batch = sum(phase.batch_calls.values())
        table.add_row(
            phase.name,
            f"{phase.events:,}",
            str(phase.invocations),
            f"{phase.created:,}",
            f"{phase.updated:,}",
            f"{phase.deleted:,}",
            f"{phase.enqueued:,}",
            f"{phase.scheduler_calls:,}",
            _per(phase.scheduler_calls, phase.events),
            f"{phase.batch_calls.get('DescribeJobs', 0):,}",
            _per(batch, phase.events),
        )
    console.print(table)
    total = result.phases[-1]
    staged = ", ".join(f"{q} {s} {n:,}" for (q, s), n in sorted(result.staged.items()))
    console.print(
        f"staged: {staged} (one event each; {PAST_SHARE:.0%} of the limited ones already past "
        f"their limit); moved on: {SHARES['started']:.0%} of the events start, "
        f"{SHARES['finished']:.0%} finish, {SHARES['blocked']:.0%} are found blocking a queue.\n"
        f"Scheduler calls by operation: {_ops(total.scheduler_ops)}. Batch calls: "
        f"{sum(total.batch_calls.values())} for {total.events:,} events (one DescribeJobs per "
        f"event would be {total.events:,}); deliveries: {total.deliveries:,} (events delivered "
        "again: DescribeJobs does not show a job created seconds ago yet)\n"
    )
    lateness = Table(
        title=f"Deadline lateness on the emulator clock (steps of {STEP.seconds} s, "
        f"{result.steps} steps, {result.fired:,} schedules fired; goal: at most "
        f"{GOAL_SECONDS:.0f} s of the product's own lateness)"
    )
    for column in ("measure", "jobs", "min s", "median s", "p99 s", "max s", "goal"):
        lateness.add_column(column, justify="right")
    rows = (
        ("limit → at() (the product's rounding)", result.limit_to_at, f"≤ {GOAL_SECONDS:.0f} s"),
        ("at() → request queued (the bench's driver)", result.at_to_queued, ""),
        ("limit → request queued", result.limit_to_queued, f"+ {STEP.seconds} s step"),
        (
            "past on arrival: event queued → request queued",
            result.event_to_queued,
            f"≤ {GOAL_SECONDS:.0f} s",
        ),
    )
    for name, spread, goal in rows:
        if spread is None:
            lateness.add_row(name, "0", "-", "-", "-", "-", goal)
            continue
        lateness.add_row(
            name,
            f"{spread.count:,}",
            f"{spread.low:.1f}",
            f"{spread.median:.1f}",
            f"{spread.p99:.1f}",
            f"{spread.high:.1f}",
            goal,
        )
    console.print(lateness)
    worst = max(
        (s.high for s in (result.limit_to_at, result.event_to_queued) if s is not None),
        default=0.0,
    )
    verdict = "within" if worst <= GOAL_SECONDS else "OVER"
    calls = result.terminator_calls
    terminated = result.terminated_on_schedule + result.terminated_at_once
    console.print(
        f"terminated on a deadline: {terminated:,} ({result.terminated_on_schedule:,} by their "
        f"schedule, {result.terminated_at_once:,} at once); the product's worst {worst:.1f} s, "
        f"{verdict} the "
        f"goal; schedules left pending: {result.pending_after}; terminator Batch calls while "
        f"stepping: {sum(calls.values())} ({_ops(calls)}); bench took {result.seconds:.0f} s. "
        "Not measured: EventBridge and Lambda delivery, and Scheduler's own precision in AWS "
        "(documented: within the minute of at())\n"
    )
    return result


def _ops(calls: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(calls.items())) or "none"
