"""One termination call and one `terminated` line per job, whatever the interleaving of
concurrent terminator invocations: duplicate deliveries of one message (SQS standard queues may
deliver a message twice, even at once) and different requests for the same jobs (a person's, the
sweep's, a brake's). On the emulator, through the terminator's real code path, in threads.

Batch's own truth (`BatchControl.terminations()`) lists only calls that stopped a job; a second
call on a job already stopping is a no-op there, so the calls are also counted as they are made.
"""

from __future__ import annotations

import copy
import io
import json
import threading
import uuid
from collections import Counter
from contextlib import redirect_stdout, suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_terminator.handlers import terminator
from batch_terminator.ledger import Ledger
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.lambda_runtime import LambdaContext, capture_logs
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox
from tests.integration.test_event_triggers import POLICIES as BRAKE_POLICIES
from tests.integration.test_event_triggers import _alarm_shapes, _brake_world

POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"]},
    "policies": [
        *BRAKE_POLICIES["policies"],
        {
            "name": "runaway",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "1h"},
        },
    ],
}


@pytest.fixture
def policies() -> PoliciesFile:
    return PoliciesFile.model_validate(POLICIES)


# How long an invocation waits for the others before it goes on alone. Every invocation of a
# round that reads jobs reaches the barrier within a second; one that reads none (its jobs were
# claimed or settled) never does, and the others then wait this long for nothing.
BARRIER_SECONDS = 3


class CountingBatch:
    """The Batch client, counting each job every TerminateJob(s) call names. With `together`,
    every invocation reads its jobs (DescribeJobs) before any of them goes on: each sees the
    jobs RUNNING and unmarked, the worst interleaving for a double termination."""

    def __init__(self, client: Any, together: threading.Barrier | None = None) -> None:
        self._client = client
        self._together = together
        self._lock = threading.Lock()
        self.named: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def describe_jobs(self, **kwargs: Any) -> Any:
        response = self._client.describe_jobs(**kwargs)
        if self._together is not None:
            with suppress(threading.BrokenBarrierError):
                self._together.wait(timeout=BARRIER_SECONDS)
        return response

    def terminate_jobs(self, **kwargs: Any) -> Any:
        with self._lock:
            self.named.update(kwargs["jobs"])
        return self._client.terminate_jobs(**kwargs)

    def terminate_job(self, **kwargs: Any) -> Any:
        with self._lock:
            self.named[kwargs["jobId"]] += 1
        return self._client.terminate_job(**kwargs)


@dataclass(frozen=True)
class Delivery:
    """One SQS delivery of a message to one invocation."""

    message_id: str
    body: dict[str, Any]
    source: str | None = None
    receive_count: int = 1

    def event(self) -> dict[str, Any]:
        attributes = (
            {"source": {"stringValue": self.source, "dataType": "String"}} if self.source else {}
        )
        return {
            "Records": [
                {
                    "messageId": self.message_id,
                    "receiptHandle": str(uuid.uuid4()),
                    "body": json.dumps(self.body),
                    "attributes": {
                        "ApproximateReceiveCount": str(self.receive_count),
                        "SenderId": "AROAEXAMPLE:tester",
                    },
                    "messageAttributes": attributes,
                    "eventSource": "aws:sqs",
                }
            ]
        }


def invoke_concurrently(
    box: Sandbox, deliveries: list[Delivery], *, together: bool
) -> tuple[CountingBatch, list[Delivery]]:
    """Run one terminator invocation per delivery, all at once, in threads; then deliver each
    message its invocation reported failed again, one invocation at a time, until none fails
    (as SQS would after the visibility timeout; at most 5 rounds). Returns the counting client
    and every delivery made. Audit lines go to `box.audit`."""
    deps = terminator.dependencies()
    barrier = threading.Barrier(len(deliveries)) if together else None
    counting = CountingBatch(deps.batch_client, barrier)
    deps = replace(deps, batch_client=counting)
    failures: list[BaseException] = []
    made = list(deliveries)

    def run(delivery: Delivery) -> list[str]:
        response = terminator.process_event(delivery.event(), deps, LambdaContext())
        return [f["itemIdentifier"] for f in response["batchItemFailures"]]

    results: dict[int, list[str]] = {}

    def thread(index: int, delivery: Delivery) -> None:
        try:
            results[index] = run(delivery)
        except BaseException as exc:  # reported below, never lost in a thread
            failures.append(exc)
            if barrier is not None:
                barrier.abort()

    with capture_logs(terminator.logger) as logs, redirect_stdout(io.StringIO()):
        threads = [threading.Thread(target=thread, args=(i, d)) for i, d in enumerate(deliveries)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not failures, failures
        again = [d for i, d in enumerate(deliveries) if results.get(i)]
        for _ in range(5):
            if not again:
                break
            retried = []
            for delivery in again:
                later = replace(delivery, receive_count=delivery.receive_count + 1)
                made.append(later)
                if run(later):
                    retried.append(later)
            again = retried
        assert not again, "requests still failing after 5 redeliveries"
    box.audit.extend(logs.audit())
    terminator.metrics.clear_metrics()
    return counting, made


def terminated_lines(box: Sandbox) -> Counter[str]:
    return Counter(line["job_id"] for line in box.audit if line["outcome"] == "terminated")


def assert_every_job_accounted(box: Sandbox, made: list[Delivery]) -> None:
    """Every job each message names has a final line (terminated or skipped) for that message,
    in one of its deliveries: a `failed` line is always followed by a delivery that settles it
    (or the message's item already holds it settled, from a duplicate delivery)."""
    named = {
        (d.message_id, job)
        for d in made
        for job in d.body.get("jobIds", [d.body.get("jobId")])
        if job
    }
    final = {
        (line["message_id"], line["job_id"])
        for line in box.audit
        if line["outcome"] in ("terminated", "skipped")
    }
    assert named <= final


def assert_once_per_job(
    box: Sandbox, control: BatchControl, counting: CountingBatch, jobs: list[str]
) -> None:
    assert {job: counting.named[job] for job in jobs} == dict.fromkeys(jobs, 1)
    assert terminated_lines(box) == Counter(dict.fromkeys(jobs, 1))
    stopped = Counter(event.job_id for event in control.terminations())
    assert {job: stopped[job] for job in jobs} == dict.fromkeys(jobs, 1)


def running(world: BatchWorld, count: int) -> list[str]:
    return [
        world.job(f"train-{i}", "gpu-training", "RUNNING", age=timedelta(hours=3))
        for i in range(count)
    ]


def test_concurrent_duplicate_deliveries_of_one_message_call_once_per_job(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = running(world, 3)
    message = Delivery(str(uuid.uuid4()), {"jobIds": jobs, "reason": "stop them"})

    counting, made = invoke_concurrently(pipeline, [message] * 4, together=True)

    assert_once_per_job(pipeline, control, counting, jobs)
    assert_every_job_accounted(pipeline, made)
    # The other deliveries name the one that terminated (the same message) or Batch's mark.
    for line in pipeline.audit:
        if line["outcome"] == "skipped":
            assert line["skip_reason"] in (
                f"already terminated by request message {message.message_id}",
                "already terminating: RUNNING and marked terminated",
                "already finished: FAILED",
            )


def test_different_requests_for_the_same_jobs_call_once_per_job(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    jobs = running(world, 3)
    person = Delivery(str(uuid.uuid4()), {"jobIds": jobs, "reason": "by hand", "requestId": "r1"})
    sweep = Delivery(
        str(uuid.uuid4()),
        {"jobIds": jobs, "reason": "runaway: running over 1h", "policy": "runaway"},
        source="sweep",
    )
    second = Delivery(str(uuid.uuid4()), {"jobIds": jobs[:1], "reason": "again, by hand"})

    counting, made = invoke_concurrently(pipeline, [person, sweep, second], together=True)

    assert_once_per_job(pipeline, control, counting, jobs)
    assert_every_job_accounted(pipeline, made)
    skipped = [line for line in pipeline.audit if line["outcome"] == "skipped"]
    assert skipped
    # Each job stopped with the reason of the one request whose call terminated it.
    winners = {
        line["job_id"]: line["reason"] for line in pipeline.audit if line["outcome"] == "terminated"
    }
    for job in jobs:
        assert world.final(job)["statusReason"] == winners[job]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    jobs_count=st.integers(1, 4),
    duplicates=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    together=st.booleans(),
)
def test_any_interleaving_of_duplicates_and_requests_calls_once_per_job(
    pipeline: Sandbox,
    world: BatchWorld,
    control: BatchControl,
    jobs_count: int,
    duplicates: list[int],
    together: bool,
) -> None:
    """Several requests for the same jobs (each naming all of them, with its own reason), each
    delivered `duplicates[i]` times, all invocations at once."""
    pipeline.audit.clear()
    jobs = running(world, jobs_count)
    deliveries = [
        Delivery(str(uuid.uuid4()), {"jobIds": jobs, "reason": f"request {i}"})
        for i in range(len(duplicates))
    ]
    spread = [d for d, times in zip(deliveries, duplicates, strict=True) for _ in range(times)]

    counting, made = invoke_concurrently(pipeline, spread, together=together)

    assert_once_per_job(pipeline, control, counting, jobs)
    assert_every_job_accounted(pipeline, made)


def test_a_call_that_failed_for_sure_gives_its_claim_back(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """A throttled call is not a termination: the next delivery (or another request) claims
    the job again and terminates it, once."""
    [job] = running(world, 1)
    control.throttle("TerminateJobs", times=1)
    control.throttle("TerminateJob", times=1)
    message = Delivery(str(uuid.uuid4()), {"jobId": job, "reason": "stop"})

    _, made = invoke_concurrently(pipeline, [message], together=False)

    assert terminated_lines(pipeline) == Counter({job: 1})
    assert Counter(event.job_id for event in control.terminations()) == Counter({job: 1})
    assert len(made) == 2


def test_the_three_alarm_paths_of_one_transition_end_in_one_call_per_job(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """EventBridge, the alarm action and SNS deliver one transition at the same time: one
    brake, and its requests terminate each job once, even delivered twice each at once."""
    jobs = _brake_world(world)
    shapes = _alarm_shapes("2026-11-29T08:10:00.000+0000")
    errors: list[BaseException] = []

    def brake(shape: Any) -> None:
        try:
            pipeline.run_brake(copy.deepcopy(shape))
        except BaseException as exc:  # a busy claim raises: Lambda retries it
            errors.append(exc)

    threads = [threading.Thread(target=brake, args=(shape,)) for shape in shapes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for _ in errors:  # Lambda's retries of the invocations that found the claim busy
        pipeline.run_brake(copy.deepcopy(shapes[0]))
    bodies = pipeline.queue_bodies(pipeline.deployment.request_queue_url)
    assert bodies
    # Drain the queue ourselves so every message is delivered twice, at once.
    pipeline.sqs.purge_queue(QueueUrl=pipeline.deployment.request_queue_url)
    deliveries = [Delivery(str(uuid.uuid4()), json.loads(body), source="alarm") for body in bodies]

    counting, _ = invoke_concurrently(pipeline, deliveries * 2, together=True)

    braked = sorted(jobs[2:])
    assert sorted(counting.named) == braked
    assert_once_per_job(pipeline, control, counting, braked)


def test_a_call_that_acted_unseen_is_confirmed_once_against_other_requests(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """A TerminateJobs whose answer was lost (it acted): its request fails and is delivered
    again while another request names the same job; the job has one call and one
    `terminated` line."""
    [job] = running(world, 1)
    control.timeout("TerminateJobs", applied=True)
    first = Delivery(str(uuid.uuid4()), {"jobId": job, "reason": "first"})
    counting, _ = invoke_concurrently(pipeline, [first], together=False)
    other = Delivery(str(uuid.uuid4()), {"jobId": job, "reason": "second", "requestId": "r2"})

    again, made = invoke_concurrently(
        pipeline, [replace(first, receive_count=2), other], together=True
    )

    assert counting.named[job] + again.named[job] == 1
    assert terminated_lines(pipeline) == Counter({job: 1})
    assert world.final(job)["statusReason"] == "first"
    assert_every_job_accounted(pipeline, made)


class LedgerDown:
    """A DynamoDB client that cannot reach the table."""

    def __getattr__(self, name: str) -> Any:
        def fail(**_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

        return fail


def test_without_the_ledger_a_by_id_request_still_terminates(
    pipeline: Sandbox, world: BatchWorld, control: BatchControl
) -> None:
    """As documented for the request ledger: a by-id request goes on (no claims then)."""
    jobs = running(world, 2)
    deps = terminator.dependencies()
    down = replace(deps, ledger=Ledger(LedgerDown(), deps.ledger_table, 60))
    event = Delivery(str(uuid.uuid4()), {"jobIds": jobs, "reason": "ledger down"}).event()

    with capture_logs(terminator.logger) as logs, redirect_stdout(io.StringIO()):
        response = terminator.process_event(event, down, LambdaContext())

    assert response["batchItemFailures"] == []
    assert Counter(line["outcome"] for line in logs.audit()) == Counter(terminated=2)
    assert {event.job_id for event in control.terminations()} == set(jobs)
    # The load and the best-effort termination record: no claim is tried once the load failed.
    assert down.ledger.calls == 2
