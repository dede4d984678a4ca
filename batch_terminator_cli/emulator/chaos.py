"""The chaos run: thousands of termination requests through the real functions while Batch,
SQS delivery and Lambda misbehave, and an account of every request and every job at the end.

What is sent (`ChaosSettings.requests` in all): requests by id, by list and by selector, a few
malformed bodies, and the policy paths' own requests: a sweep, deadlines fired by their
schedules, and a brake. What goes wrong meanwhile:

- Batch: every call of DescribeJobs, ListJobs and TerminateJob(s), from every function, is
  throttled (429), fails with ServerException, or times out on the network (before or after it
  took effect) at seeded random rates; TerminateJobs reports some jobs in `errors[]`
  (`faults.RandomFaults`). The functions make one attempt per call (the sandbox's
  AWS_MAX_ATTEMPTS=1), so every injected fault reaches the product: harsher than Lambda,
  whose clients retry.
- SQS: the event source mapping is driven here (`Deliveries`) as Lambda's is, with
  ReportBatchItemFailures: a message not reported as a failure is deleted, a failed one comes
  back after its visibility timeout, and SQS's redrive policy moves it to the DLQ once received
  more than maxReceiveCount times. Several invocations run at once, in threads. A share of the
  messages is delivered twice (SQS standard queues deliver at least once): half of those to two
  invocations running at once, half again in a later round, after the first copy was deleted
  ("Amazon SQS at-least-once delivery", SQS developer guide).
- Lambda: some invocations time out in the middle of their batch (after some of their Batch
  calls, before or after a call took effect): nothing they received is deleted, and it all comes
  back after the visibility timeout.

Every request ends as one of: done (its message deleted after the terminator reported it
handled), rejected (in the DLQ with the terminator's `error`), or failed (in the DLQ after its
retries, with an `error` when the terminator parked it, without when SQS's redrive moved it).
Every job that a request named, or that a line or a termination mentions, ends terminated,
skipped (with why), rejected or failed; the oracle is the emulator's truth
(`BatchControl.truth`, `BatchControl.terminations`) and the TerminateJob(s) calls Batch
accepted, never what Batch showed the product.

Seeded: the same seed builds the same jobs and requests and draws the same faults per
invocation (each invocation draws from its own stream); threads may still interleave
differently, so a replay is the same run up to the order of concurrent calls.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from batch_terminator.handlers import terminator
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import alarms
from batch_terminator_cli.emulator.batch import EmulatedBatchBackend
from batch_terminator_cli.emulator.faults import RandomFaults
from batch_terminator_cli.emulator.lambda_runtime import (
    LambdaContext,
    capture_logs,
    receive_batch,
    sqs_event,
)
from batch_terminator_cli.sandbox import Sandbox, sandbox

PROTECT: Final = "batch-terminator:protect"
GPU, CPU, RESEARCH = "gpu-training", "spot-cpu", "research"
ALLOWED: Final = (GPU, CPU)
DEFINITION: Final = "train-bert"
ALARM: Final = "chaos-cost-alarm"
SWEEP_POLICY, DEADLINE_POLICY, BRAKE_POLICY = "chaos-sweep", "chaos-deadline", "chaos-brake"
# Policy requests carry up to 50 jobs (one TerminateJobs call each).
JOBS_PER_POLICY_REQUEST: Final = 50
SELECTOR_GROUP: Final = 5
SELECTOR_LIMIT: Final = 3
MALFORMED_BODIES: Final = (
    "{not json",
    "",
    "[]",
    '{"jobId": 42, "reason": "wrong type"}',
    '{"reason": "no target"}',
    '{"jobId": "not-a-job-id", "reason": "chaos"}',
    '{"jobId": "arn:aws:batch:eu-west-1:999999999999:job/'
    '0f0e0d0c-0b0a-4909-8807-060504030201", "reason": "foreign ARN"}',
    '{"selector": {"jobQueues": ["q*"]}, "reason": "pattern"}',
    '{"jobIds": [], "reason": "empty"}',
    '{"jobId": "0f0e0d0c-0b0a-4909-8807-060504030201", "reason": "\\u0007bell"}',
)
# Operators reuse a few reasons; TerminateJobs takes one reason a call.
REASONS: Final = (
    "cost overrun",
    "stuck in RUNNABLE",
    "superseded by a newer run",
    "wrong input data",
    "queue drained for maintenance",
)
DIRECT_KINDS: Final = ("by id", "by list", "by selector", "malformed")
POLICY_KINDS: Final = {"sweep": "sweep", "deadline": "deadline", "alarm": "brake"}


class InvocationTimedOut(BaseException):
    """Lambda stopped the invocation at its timeout: raised from inside a Batch call, a
    BaseException so that no `except Exception` in the function can carry on."""


@dataclass(frozen=True)
class ChaosSettings:
    """One chaos run. Rates are probabilities: per Batch call (throttle, server error,
    timeout), per job named in a TerminateJobs call (bulk error), per request (malformed,
    duplicate delivery) and per terminator invocation (Lambda timeout; at least one
    invocation times out in every run). `requests`: messages in all, the policy paths' own
    included (about 1%: one per deadline job, one per 50 jobs of the sweep and the brake)."""

    seed: int
    requests: int = 10_000
    throttle_rate: float = 0.20
    server_error_rate: float = 0.05
    timeout_rate: float = 0.02
    bulk_error_rate: float = 0.05
    malformed_rate: float = 0.01
    duplicate_rate: float = 0.10
    lambda_timeout_rate: float = 0.03
    concurrency: int = 3
    batch_size: int = 100
    max_rounds: int = 10_000

    def __post_init__(self) -> None:
        if self.requests < 50:
            raise ValueError(f"a chaos run sends at least 50 requests, not {self.requests}")
        if self.concurrency < 2:
            raise ValueError("concurrent duplicates need at least 2 invocations at once")


@dataclass(frozen=True)
class Scene:
    """The jobs and requests a seed makes. Job ids by role; `protected`: jobs no call may
    name (protect tag, a queue the settings do not allow, finished before the run)."""

    policies: PoliciesFile
    protected: frozenset[str]
    sweep_jobs: tuple[str, ...]
    deadline_jobs: tuple[str, ...]
    brake_jobs: tuple[str, ...]
    # (kind, body) of every request the driver sends itself.
    direct: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AcceptedCall:
    """A TerminateJob(s) call Batch accepted: the ids it named that Batch took (not those it
    put in `errors[]`), in which delivery round and invocation, and whether its answer was
    lost on the way back (a timeout after it took effect)."""

    operation: str
    jobs: tuple[str, ...]
    round: int
    invocation: str
    answer_lost: bool


@dataclass
class Violation:
    prop: str
    detail: str


@dataclass
class Accounting:
    """The end of a chaos run: every request and every job with its final outcome, the
    properties checked and what broke them."""

    settings: ChaosSettings
    requests: dict[str, dict[str, int]]  # kind -> outcome -> count
    jobs: dict[str, int]  # final outcome (skips by reason) -> jobs
    faults: dict[str, int]
    deliveries: dict[str, int]
    checks: dict[str, int]  # property -> violations
    violations: list[Violation]
    seconds: float

    @property
    def lost(self) -> int:
        return sum(o.get("lost", 0) for o in self.requests.values()) + self.jobs.get("lost", 0)

    @property
    def ok(self) -> bool:
        return not self.violations


# -- moto, made to behave as AWS does under concurrent callers -------------------------------
_installed = False
_recording: list[AcceptedCall] | None = None
_where = threading.local()


def install() -> None:
    """Record every TerminateJob(s) call Batch accepts (idempotent). moto's DynamoDB writes are
    atomic across threads already, as DynamoDB's are (`dynamodb.py`, installed with the
    emulator)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return
    terminate_jobs, terminate_job = (
        EmulatedBatchBackend.terminate_jobs,
        EmulatedBatchBackend.terminate_job,
    )

    def recorded_terminate_jobs(
        self: EmulatedBatchBackend, job_ids: list[str], reason: str
    ) -> tuple[list[str], list[dict[str, str]]]:
        successful, errors = terminate_jobs(self, job_ids, reason)
        _record(self, "TerminateJobs", successful)
        return successful, errors

    def recorded_terminate_job(self: EmulatedBatchBackend, job_id: str, reason: str) -> None:
        terminate_job(self, job_id, reason)
        _record(self, "TerminateJob", [job_id])

    EmulatedBatchBackend.terminate_jobs = recorded_terminate_jobs  # type: ignore[method-assign]
    EmulatedBatchBackend.terminate_job = recorded_terminate_job  # type: ignore[method-assign]
    _installed = True


def _record(backend: EmulatedBatchBackend, operation: str, jobs: list[str]) -> None:
    recording = _recording
    if recording is not None and jobs:
        where = getattr(_where, "value", (0, "driver"))
        drawn = backend.faults.random
        lost = drawn is not None and drawn.answer_lost()
        recording.append(AcceptedCall(operation, tuple(jobs), where[0], where[1], lost))


class _ModelledSleep:
    """botocore's retry back-off, modelled instead of slept (`botocore/endpoint.py` sleeps
    through its module's `time`): the seconds are added up, not waited."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def _backoff_modelled() -> Iterator[_ModelledSleep]:
    import botocore.endpoint

    modelled = _ModelledSleep()
    botocore.endpoint.time = modelled
    try:
        yield modelled
    finally:
        botocore.endpoint.time = time


# -- the scene -------------------------------------------------------------------------------
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(
        {
            "version": 1,
            "settings": {"jobQueues": list(ALLOWED), "protectTag": PROTECT},
            "policies": [
                {
                    "name": SWEEP_POLICY,
                    "match": {"jobQueues": [CPU], "jobNames": ["sweep-*"]},
                    "when": {"status": "RUNNING", "olderThan": "12h"},
                    "maxPerRun": 10_000,
                },
                {
                    "name": DEADLINE_POLICY,
                    "match": {"jobQueues": [GPU], "jobNames": ["deadline-*"]},
                    "when": {"status": "RUNNING", "olderThan": "10m"},
                    "maxPerRun": 10_000,
                },
                {
                    "name": BRAKE_POLICY,
                    "trigger": {"alarms": [ALARM]},
                    "match": {"jobQueues": [GPU], "jobNames": ["brake-*"]},
                    "when": {"status": "RUNNING"},
                    "maxPerRun": 10_000,
                },
            ],
        }
    )


def _sizes(requests: int) -> tuple[int, int, int, int]:
    """(sweep jobs, deadline jobs, brake jobs, direct requests) for `requests` in all."""
    sweep = max(10, requests // 20)
    brake = max(10, requests // 20)
    deadline = max(5, requests // 100)
    policy_messages = (
        math.ceil(sweep * 0.9 / JOBS_PER_POLICY_REQUEST)
        + math.ceil(brake * 0.9 / JOBS_PER_POLICY_REQUEST)
        + deadline
    )
    return sweep, deadline, brake, requests - policy_messages


class _Builder:
    """Seeds jobs straight into the emulator (`BatchControl.add_jobs`) and remembers which
    ones no call may name."""

    def __init__(self, box: Sandbox, rng: random.Random) -> None:
        self.control = box.control
        self.rng = rng
        self.now = datetime.now(UTC)
        self.protected: set[str] = set()

    def add(self, queue: str, specs: Sequence[tuple[str, str, timedelta, bool]]) -> list[str]:
        """Jobs (name, status, age, protect-tagged) in `queue`; those tagged, those of a queue
        not allowed and those finished are protected."""
        ids = self.control.add_jobs(
            queue,
            DEFINITION,
            [
                (name, status, self.now - age, {PROTECT: "true"} if tagged else None)
                for name, status, age, tagged in specs
            ],
        )
        for job_id, (_, status, _, tagged) in zip(ids, specs, strict=True):
            if tagged or queue not in ALLOWED or status in ("SUCCEEDED", "FAILED"):
                self.protected.add(job_id)
        return ids

    def age(self) -> timedelta:
        return timedelta(minutes=self.rng.randint(1, 600))

    def pool(self, size: int) -> list[str]:
        """Jobs for the direct requests: mostly live jobs of the allowed queues; one in twenty
        protected by tag, one in twenty in a queue not allowed, one in twenty finished."""
        rng = self.rng
        specs: dict[str, list[tuple[str, str, timedelta, bool]]] = defaultdict(list)
        for i in range(size):
            draw = rng.random()
            if draw < 0.05:
                specs[GPU].append((f"req-protected-{i}", "RUNNING", self.age(), True))
            elif draw < 0.10:
                specs[RESEARCH].append((f"req-research-{i}", "RUNNING", self.age(), False))
            elif draw < 0.15:
                status = rng.choice(("SUCCEEDED", "FAILED"))
                specs[GPU].append((f"req-done-{i}", status, self.age(), False))
            else:
                status = rng.choice(("RUNNING", "RUNNING", "RUNNABLE", "STARTING", "SUBMITTED"))
                specs[rng.choice(ALLOWED)].append((f"req-{i}", status, self.age(), False))
        pool = [job for queue, items in specs.items() for job in self.add(queue, items)]
        rng.shuffle(pool)
        return pool


def build(box: Sandbox, settings: ChaosSettings) -> Scene:
    """Seed the jobs (straight into the emulator) and write the direct requests."""
    rng = random.Random(settings.seed)  # noqa: S311 - a reproducible scene, not a secret
    for queue in (GPU, CPU, RESEARCH):
        box.world.queue(queue)
    box.world.definition(DEFINITION)
    box.control.publish_events(False)
    seeds = _Builder(box, rng)
    n_sweep, n_deadline, n_brake, n_direct = _sizes(settings.requests)
    # Policy paths: one job in ten of the sweep's and the brake's is protected.
    sweep_ids = seeds.add(
        CPU,
        [
            (f"sweep-{i}", "RUNNING", timedelta(hours=12, minutes=rng.randint(5, 600)), i % 10 == 9)
            for i in range(n_sweep)
        ],
    )
    brake_ids = seeds.add(
        GPU, [(f"brake-{i}", "RUNNING", seeds.age(), i % 10 == 9) for i in range(n_brake)]
    )
    # Deadline jobs: under their 10-minute limit when their Batch events arrive.
    box.control.publish_events(True)
    deadline_ids = seeds.add(
        GPU,
        [
            (f"deadline-{i}", "RUNNING", timedelta(minutes=rng.randint(1, 8)), False)
            for i in range(n_deadline)
        ],
    )
    box.control.publish_events(False)
    kinds = [_direct_kind(rng, settings) for _ in range(n_direct)]
    named = kinds.count("by id") + 4 * kinds.count("by list")
    direct = _requests(seeds, kinds, seeds.pool(named))
    return Scene(
        policies=box.policies,
        protected=frozenset(seeds.protected),
        sweep_jobs=tuple(sweep_ids),
        deadline_jobs=tuple(deadline_ids),
        brake_jobs=tuple(brake_ids),
        direct=tuple(direct),
    )


def _requests(seeds: _Builder, kinds: Sequence[str], pool: list[str]) -> list[tuple[str, str]]:
    """(kind, body) of each direct request. One job in ten named was named before."""
    rng = seeds.rng
    fresh = iter(pool)
    used: list[str] = []

    def pick() -> str:
        if used and rng.random() < 0.10:
            return rng.choice(used)
        job = next(fresh, None) or rng.choice(used)
        used.append(job)
        return job

    direct: list[tuple[str, str]] = []
    for n, kind in enumerate(kinds):
        reason = rng.choice(REASONS)
        if kind == "malformed":
            body = rng.choice(MALFORMED_BODIES)
        elif kind == "by id":
            body = json.dumps({"jobId": pick(), "reason": reason})
        elif kind == "by list":
            ids = list(dict.fromkeys(pick() for _ in range(rng.randint(2, 6))))
            body = json.dumps({"jobIds": ids, "reason": reason})
        else:  # a selector over its own group of 5 jobs, one protected, limit 3
            seeds.add(
                CPU,
                [
                    (f"sel-{n}-{i}", "RUNNING", seeds.age(), i == SELECTOR_GROUP - 1)
                    for i in range(SELECTOR_GROUP)
                ],
            )
            selector = {"jobQueues": [CPU], "jobNamePrefix": f"sel-{n}-"}
            body = json.dumps({"selector": selector, "limit": SELECTOR_LIMIT, "reason": reason})
        direct.append((kind, body))
    return direct


def _direct_kind(rng: random.Random, settings: ChaosSettings) -> str:
    draw = rng.random()
    if draw < settings.malformed_rate:
        return "malformed"
    if draw < settings.malformed_rate + 0.04:
        return "by selector"
    if draw < settings.malformed_rate + 0.29:
        return "by list"
    return "by id"


# -- SQS and Lambda, driven ------------------------------------------------------------------
@dataclass
class Deliveries:
    """What the driver saw of the request queue: every message, how its deliveries went."""

    kinds: dict[str, str] = field(default_factory=dict)  # message id -> request kind
    bodies: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)

    def see(self, message: dict[str, Any]) -> None:
        message_id = message["MessageId"]
        self.bodies.setdefault(message_id, message["Body"])
        if message_id not in self.kinds:
            source = message.get("MessageAttributes", {}).get("source", {}).get("StringValue")
            self.kinds[message_id] = POLICY_KINDS.get(str(source), "unknown")


@dataclass
class _Invocation:
    name: str
    records: list[dict[str, Any]]
    die_at: tuple[int, bool] | None  # (the Nth Batch call, after it took effect?)
    failed: set[str] = field(default_factory=set)
    died: bool = False
    error: str | None = None

    def handled(self) -> set[str]:
        """The messages this invocation reported handled: none if it died or failed."""
        if self.died or self.error is not None:
            return set()
        return {m["MessageId"] for m in self.records} - self.failed


class _Driver:
    """The event source mapping of the request queue, with concurrency and duplicates."""

    def __init__(self, box: Sandbox, settings: ChaosSettings, deliveries: Deliveries) -> None:
        self.box = box
        self.settings = settings
        self.deliveries = deliveries
        self.rng = random.Random(settings.seed * 7919 + 1)  # noqa: S311 - reproducible draws
        self.sqs = box.sqs
        self.url = box.deployment.request_queue_url
        self.arn = box.deployment.request_queue_arn
        self.ghosts: list[dict[str, Any]] = []  # copies delivered again in a later round
        self.round = 0
        self.timed_out = 0
        self.forced_timeout = False
        self.stats: Counter[str] = Counter()
        self._calls = threading.local()
        client = terminator.dependencies().batch_client
        client.meta.events.register("before-call.batch", self._before_call)
        client.meta.events.register("after-call.batch", self._after_call)

    # Lambda's timeout, from inside a Batch call of a doomed invocation.
    def _before_call(self, **_: Any) -> None:
        self._tick(after=False)

    def _after_call(self, **_: Any) -> None:
        self._tick(after=True)

    def _tick(self, *, after: bool) -> None:
        plan: tuple[int, bool] | None = getattr(self._calls, "die_at", None)
        if plan is None:
            return
        if not after:
            self._calls.count = getattr(self._calls, "count", 0) + 1
        nth, effect = plan
        if self._calls.count == nth and after == effect:
            raise InvocationTimedOut(f"call {nth}, {'after' if effect else 'before'} it acted")

    def drain(self) -> None:
        """Deliver until the request queue is empty and every copy has been delivered."""
        for _ in range(self.settings.max_rounds):
            messages = receive_batch(
                self.sqs, self.url, self.settings.batch_size * self.settings.concurrency
            )
            if not messages and not self.ghosts:
                return
            self.round += 1
            self._round(messages)
        raise RuntimeError(f"the request queue did not drain in {self.settings.max_rounds} rounds")

    def _round(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.deliveries.see(message)
            self.deliveries.counts[message["MessageId"]] += 1
        invocations = self._plan(messages)
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            list(pool.map(self._invoke, invocations))
        # The visibility timeout passes before anything failed comes back: Batch has stopped
        # what it was stopping by then (the sandbox's run_terminator does the same).
        self.box.control.settle()
        handled = {message_id for inv in invocations for message_id in inv.handled()}
        for message in messages:
            message_id = message["MessageId"]
            if message_id in handled:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                self.deliveries.deleted.add(message_id)
            else:
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        self.forced_timeout = self.forced_timeout or any(inv.died for inv in invocations)
        for inv in invocations:
            self.stats["invocations"] += 1
            self.stats["invocations timed out"] += inv.died
            self.stats["invocations failed"] += inv.error is not None

    def _plan(self, messages: list[dict[str, Any]]) -> list[_Invocation]:
        """Split a round's messages over the invocations running at once; add the copies
        delivered twice (to another invocation now, or in a later round) and the copies due
        from earlier rounds; pick the invocations that time out."""
        size, lanes, rng = self.settings.batch_size, self.settings.concurrency, self.rng
        batches: list[list[dict[str, Any]]] = [[] for _ in range(lanes)]
        for n, message in enumerate(messages):
            lane = min(n // size, lanes - 1)
            batches[lane].append(message)
            if rng.random() >= self.settings.duplicate_rate:
                continue
            if rng.random() < 0.5:  # to another invocation running now
                batches[(lane + 1 + rng.randrange(lanes - 1)) % lanes].append(message)
                self.stats["delivered twice at once"] += 1
            else:
                self.ghosts.append({**message, "_ghost": True})
        ghosts, self.ghosts = self.ghosts, []
        for ghost in ghosts:
            # Never next to another copy of itself: one receive returns a message once.
            lanes_free = [
                b for b in batches if all(m["MessageId"] != ghost["MessageId"] for m in b)
            ]
            if not lanes_free:
                self.ghosts.append(ghost)
                continue
            rng.choice(lanes_free).append(ghost)
            self.stats["delivered again later"] += 1
        invocations = []
        doomed = not self.forced_timeout  # until one has timed out, one per round is doomed
        for index, batch in enumerate(batches):
            if not batch:
                continue
            die_at: tuple[int, bool] | None = None
            if doomed or rng.random() < self.settings.lambda_timeout_rate:
                doomed = False
                die_at = (rng.randint(1, 3), rng.random() < 0.5)
            invocations.append(_Invocation(f"r{self.round}i{index}", batch, die_at))
        return invocations

    def _invoke(self, invocation: _Invocation) -> None:
        _where.value = (self.round, invocation.name)
        self._calls.die_at, self._calls.count = invocation.die_at, 0
        streams = self.box.control.backend.faults.random
        if streams is not None:
            streams.stream(invocation.name)
        event = sqs_event(
            [{k: v for k, v in m.items() if k != "_ghost"} for m in invocation.records],
            self.arn,
            self.box.deployment.region,
        )
        # One record per message: Lambda hands a duplicate copy to the other invocation.
        try:
            response = terminator.handler(event, LambdaContext()) or {}
            invocation.failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except InvocationTimedOut:
            invocation.died = True
        except Exception as exc:  # the function failed: Lambda retries the whole batch
            invocation.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._calls.die_at = None
            _where.value = (self.round, "driver")
            if streams is not None:
                streams.stream(None)


# -- the run ---------------------------------------------------------------------------------
def _send(box: Sandbox, direct: Sequence[tuple[str, str]], deliveries: Deliveries) -> None:
    sqs, url = box.sqs, box.deployment.request_queue_url
    for start in range(0, len(direct), 10):
        chunk = direct[start : start + 10]
        answer = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": body or "<empty>"}
                for i, (_, body) in enumerate(chunk)
            ],
        )
        if answer.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed: {answer['Failed']}")
        for entry in answer["Successful"]:
            kind, body = chunk[int(entry["Id"])]
            deliveries.kinds[entry["MessageId"]] = kind
            deliveries.bodies[entry["MessageId"]] = body or "<empty>"


def _triggers(box: Sandbox, notes: Counter[str]) -> None:
    """The policy paths under the same faults: a sweep (run again on its next schedule if it
    fails), the brake (Lambda's asynchronous retries), deadlines (the events queue's own
    redelivery), then time passes and their schedules fire."""
    for _ in range(5):
        try:
            box.run_sweeper()
        except Exception:  # the next scheduled run tries again
            notes["sweep runs failed"] += 1
        else:
            notes["sweep runs"] += 1
            break
    event = alarms.alarm_event(
        ALARM, datetime.now(UTC), account=box.deployment.account_id, region=box.deployment.region
    )
    results = box.run_brake_async(event)
    notes["brake attempts"] += len(results)
    notes["brake attempts failed"] += sum(1 for r in results if isinstance(r, str))
    box.run_deadlines(max_invocations=1_000)
    box.advance(timedelta(minutes=11))
    firings = box.fire_schedules()
    notes["schedules fired"] += len(firings)
    notes["schedules dead-lettered"] += sum(1 for f in firings if f.outcome != "delivered")
    notes["events in the events DLQ"] += len(box.queue_bodies(box.deployment.events_dlq_url))


def run(settings: ChaosSettings) -> Accounting:
    """Build the scene, send and deliver every request under the faults, and account for
    every request and job. Raises RuntimeError when the request queue does not drain."""
    global _recording  # noqa: PLW0603 - the backends record for this run only
    install()
    started = time.perf_counter()
    calls: list[AcceptedCall] = []
    deliveries = Deliveries()
    notes: Counter[str] = Counter()
    printed = io.StringIO()
    with (
        contextlib.redirect_stdout(printed),
        sandbox(policies()) as box,
        # The stack leaves the functions' clients at botocore's standard retry mode (3
        # attempts): their back-off is modelled, not slept.
        _deployed_retries(),
        _backoff_modelled() as backoff,
    ):
        scene = build(box, settings)
        drawn = RandomFaults(
            seed=settings.seed,
            throttle_rate=settings.throttle_rate,
            server_error_rate=settings.server_error_rate,
            timeout_rate=settings.timeout_rate,
            bulk_error_rate=settings.bulk_error_rate,
        )
        faults = box.control.backend.faults
        faults.random = drawn
        _recording = calls
        try:
            _send(box, scene.direct, deliveries)
            _triggers(box, notes)
            driver = _Driver(box, settings, deliveries)
            with capture_logs(terminator.logger) as logs:
                driver.drain()
        finally:
            _recording = None
            faults.random = None
        box.control.settle()
        notes.update(driver.stats)
        notes["rounds"] = driver.round
        notes["retry back-off modelled (s)"] = round(backoff.seconds)
        return account(
            settings,
            box,
            scene,
            deliveries,
            logs.audit(),
            calls,
            dict(drawn.injected),
            notes,
            time.perf_counter() - started,
        )


@contextlib.contextmanager
def _deployed_retries() -> Iterator[None]:
    """The functions' clients as deployed: no AWS_MAX_ATTEMPTS (the sandbox sets 1), so
    botocore's standard mode makes 3 attempts. botocore writes the attempts it resolved into
    the `retries` dict of the Config a client was made with (botocore/args.py
    `_compute_retry_max_attempts`), and the functions share one module-level Config: that
    entry is cleared for the run, as a new Lambda container starts without it, and put back.
    The functions' botocore session (one per container) is new for the run too."""
    from batch_terminator import clients

    retries: dict[str, Any] = clients._CONFIG.retries or {}
    saved = dict(retries)
    previous = os.environ.pop("AWS_MAX_ATTEMPTS", None)
    retries.pop("total_max_attempts", None)
    clients._session.cache_clear()
    try:
        yield
    finally:
        clients._session.cache_clear()
        retries.clear()
        retries.update(saved)
        if previous is not None:
            os.environ["AWS_MAX_ATTEMPTS"] = previous


# -- the accounting --------------------------------------------------------------------------
def _dead_letters(box: Sandbox) -> dict[str, str | None]:
    """Message id -> the `error` attribute (None: moved by SQS's redrive, no error), for
    every message in the request queue's DLQ (parked ones under their original id)."""
    found: dict[str, str | None] = {}
    for message in box.dead_letters():
        attributes = message.get("MessageAttributes", {})
        original = attributes.get("originalMessageId", {}).get("StringValue")
        error = attributes.get("error", {}).get("StringValue")
        key = original or message["MessageId"]
        if found.get(key) is None:
            found[key] = error
    return found


def account(
    settings: ChaosSettings,
    box: Sandbox,
    scene: Scene,
    deliveries: Deliveries,
    audit: list[dict[str, Any]],
    calls: list[AcceptedCall],
    faults: dict[str, int],
    notes: Counter[str],
    seconds: float,
) -> Accounting:
    """Every request's and every job's final outcome, and the properties:

    - lost: every request is done, rejected or failed (in the DLQ); every job a done by-id
      request named has a final line (terminated or skipped) for that request;
    - terminated once: no job has two `terminated` lines;
    - one call per job: no job is named by two TerminateJob(s) calls Batch accepted;
    - protected: no call names, and no termination stops, a protected job (protect tag, a
      queue not allowed, finished before the run);
    - truth: every job reported terminated was stopped by a call (the truth's termination
      log) and is stopping or FAILED;
    - reported: every job a call stopped has a `terminated` line, unless its request is in the
      DLQ (a redrive then confirms it).
    """
    found = _Findings(box, scene, deliveries, audit)
    queued = box.queued()
    if queued:
        found.violate("lost", f"{queued} messages still in the request queue")
    requests = found.requests()
    jobs = found.jobs()
    found.properties(calls, notes)
    notes["messages received more than once"] = sum(1 for c in deliveries.counts.values() if c > 1)
    checks = dict.fromkeys(
        ("lost", "terminated once", "one call per job", "protected", "truth", "reported"), 0
    )
    for violation in found.violations:
        checks[violation.prop] += 1
    return Accounting(
        settings=settings,
        requests=requests,
        jobs=jobs,
        faults=faults,
        deliveries=dict(notes),
        checks=checks,
        violations=found.violations,
        seconds=seconds,
    )


def _named(body: str) -> list[str]:
    """The job ids a by-id or by-list body names (none if it is not one)."""
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        payload = json.loads(body)
        if isinstance(payload.get("jobId"), str):
            return [payload["jobId"]]
        if isinstance(payload.get("jobIds"), list):
            return [j for j in payload["jobIds"] if isinstance(j, str)]
    return []


class _Findings:
    def __init__(
        self, box: Sandbox, scene: Scene, deliveries: Deliveries, audit: list[dict[str, Any]]
    ) -> None:
        self.box, self.scene, self.deliveries, self.audit = box, scene, deliveries, audit
        self.violations: list[Violation] = []
        self.dead = _dead_letters(box)
        self.by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in audit:
            if line.get("message_id"):
                self.by_message[line["message_id"]].append(line)
            if line.get("job_id"):
                self.by_job[line["job_id"]].append(line)
        self.outcomes: dict[str, str] = {}
        self.truth_log = box.control.terminations()
        self.stopped = {e.job_id for e in self.truth_log} | {e.named_id for e in self.truth_log}
        self.terminated: Counter[str] = Counter(
            line["job_id"] for line in audit if line["outcome"] == "terminated" and line["job_id"]
        )

    def violate(self, prop: str, detail: str) -> None:
        self.violations.append(Violation(prop, detail))

    def requests(self) -> dict[str, dict[str, int]]:
        """Request kind -> final outcome -> count."""
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for message_id, kind in self.deliveries.kinds.items():
            outcome = self._request(message_id, kind)
            self.outcomes[message_id] = outcome
            table[kind][outcome] += 1
        return {kind: dict(row) for kind, row in table.items()}

    def _request(self, message_id: str, kind: str) -> str:
        lines = self.by_message.get(message_id, [])
        if message_id in self.dead:
            if any(line["outcome"] == "rejected" for line in lines):
                if not self.dead[message_id]:
                    self.violate("lost", f"rejected {message_id}: no error in the DLQ")
                return "rejected (DLQ)"
            return "failed (DLQ)"
        if message_id not in self.deliveries.deleted:
            self.violate("lost", f"{kind} request {message_id} has no outcome")
            return "lost"
        finals = {line["job_id"] for line in lines if line["outcome"] in ("terminated", "skipped")}
        for job in _named(self.deliveries.bodies[message_id]):
            if job not in finals:
                self.violate("lost", f"{job} of done request {message_id}: no final line")
        return "done"

    def jobs(self) -> dict[str, int]:
        """Final outcome (a skip by its reason) -> jobs, over every job a request named, a
        line or a termination mentions, and every job of the policy paths."""
        universe = set(self.by_job) | {e.job_id for e in self.truth_log}
        for body in self.deliveries.bodies.values():
            universe.update(_named(body))
        scene = self.scene
        policy_jobs = {*scene.sweep_jobs, *scene.brake_jobs, *scene.deadline_jobs}
        universe |= policy_jobs
        table: Counter[str] = Counter()
        unreported = 0
        for job in universe:
            table[self._job(job, job in policy_jobs)] += 1
            unreported += job in self.stopped and not self.terminated[job]
        table["stopped per the truth without a terminated line"] = unreported
        return dict(table)

    def _job(self, job: str, by_policy: bool) -> str:
        lines = self.by_job.get(job, [])
        if self.terminated[job]:
            return "terminated"
        skips = [line["skip_reason"] or "?" for line in lines if line["outcome"] == "skipped"]
        if skips:
            return f"skipped: {skips[-1].split(':')[0]}"
        failed = {line["message_id"] for line in lines if line["outcome"] == "failed"}
        if failed:
            if failed & set(self.dead):
                return "failed (its request in the DLQ)"
            self.violate("lost", f"{job}: failed, and its request is not in the DLQ")
            return "lost"
        if by_policy:
            return "not requested (protected, or not selected)"
        return "no line (its request rejected or failed: DLQ)"

    def properties(self, calls: list[AcceptedCall], notes: Counter[str]) -> None:
        control = self.box.control
        for job, count in self.terminated.items():
            if count > 1:
                self.violate("terminated once", f"{job}: {count} terminated lines")
            truth = control.truth(job)
            if job not in self.stopped or not (truth.stopping or truth.status == "FAILED"):
                self.violate("truth", f"{job} reported terminated; truth: {truth.status}")
        named_by: dict[str, list[AcceptedCall]] = defaultdict(list)
        for call in calls:
            for job in call.jobs:
                named_by[job].append(call)
        for job, accepted in named_by.items():
            if len(accepted) < 2:
                continue
            first = accepted[0]
            if first.answer_lost:
                why = "after a lost answer"
            elif any(c.round == first.round and c.invocation != first.invocation for c in accepted):
                why = "concurrent duplicates"
            else:
                why = "a later delivery"
            notes[f"jobs named by 2+ accepted calls: {why}"] += 1
            self.violate("one call per job", f"{job}: {len(accepted)} accepted calls ({why})")
        for job in sorted(self.scene.protected):
            if job in named_by or job in self.stopped:
                self.violate("protected", f"protected job {job} was named or stopped")
        self._reported()

    def _reported(self) -> None:
        """Every job a call stopped has a `terminated` line, unless its request is in the DLQ."""
        for job in sorted(self.stopped):
            if self.terminated[job] or job in self.scene.protected:
                continue
            lines = self.by_job.get(job, [])
            if any(line["message_id"] in self.dead for line in lines):
                continue  # its request is in the DLQ: a redrive reports it
            last = f"{lines[-1]['outcome']}: {lines[-1]['skip_reason']}" if lines else "none"
            self.violate(
                "reported", f"{job} stopped by our call, no terminated line (last: {last})"
            )


# -- the tables ------------------------------------------------------------------------------
REQUEST_OUTCOMES: Final = ("done", "rejected (DLQ)", "failed (DLQ)", "lost")


def tables(result: Accounting) -> list[Table]:
    """The accounting tables: requests by kind and outcome, jobs by final outcome, the faults
    injected and what delivery did, the properties."""
    s = result.settings
    requests = Table(
        title=f"Chaos accounting, seed {s.seed}: {sum(sum(o.values()) for o in result.requests.values()):,} "
        "requests"
    )
    requests.add_column("request")
    for outcome in (*REQUEST_OUTCOMES, "total"):
        requests.add_column(outcome, justify="right")
    order = [*DIRECT_KINDS, "sweep", "deadline", "brake", "unknown"]
    for kind in sorted(result.requests, key=lambda k: order.index(k) if k in order else 99):
        row = result.requests[kind]
        requests.add_row(
            escape(kind),
            *(f"{row.get(o, 0):,}" for o in REQUEST_OUTCOMES),
            f"{sum(row.values()):,}",
        )
    jobs = Table(title="Every job a request named, a line or a termination mentions")
    jobs.add_column("final outcome")
    jobs.add_column("jobs", justify="right")
    for outcome, count in sorted(result.jobs.items(), key=lambda item: (-item[1], item[0])):
        jobs.add_row(escape(outcome), f"{count:,}")
    faults = Table(title="Faults injected and deliveries")
    faults.add_column("what")
    faults.add_column("count", justify="right")
    for what, count in sorted(result.faults.items()):
        faults.add_row(escape(what), f"{count:,}")
    for what, count in result.deliveries.items():
        faults.add_row(escape(what), f"{count:,}")
    checks = Table(title="Properties (violations)")
    checks.add_column("property")
    checks.add_column("violations", justify="right")
    for prop, count in result.checks.items():
        checks.add_row(prop, f"[red]{count}[/red]" if count else "0")
    return [requests, jobs, faults, checks]


def report(console: Console, result: Accounting) -> None:
    """Print the tables, the first violations, and how to replay the run."""
    for table in tables(result):
        console.print(table)
    for violation in result.violations[:10]:
        console.print(f"[red]{escape(violation.prop)}[/red]: {escape(violation.detail)}")
    if len(result.violations) > 10:
        console.print(f"... and {len(result.violations) - 10} more")
    s = result.settings
    console.print(
        f"seed {s.seed}, {s.requests:,} requests, {s.concurrency} invocations at once, "
        f"{result.seconds:.0f} s; replay: python -m batch_terminator_cli.emulator.chaos "
        f"--seed {s.seed} --requests {s.requests}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m batch_terminator_cli.emulator.chaos [--seed N] [--requests N]`: one run,
    its tables; exit 1 when a property is broken."""
    import argparse

    parser = argparse.ArgumentParser(description="A seeded chaos run on the emulator.")
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=3)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    console = Console(width=120)
    console.print(f"chaos run, seed {seed}")
    result = run(ChaosSettings(seed=seed, requests=args.requests, concurrency=args.concurrency))
    report(console, result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
