"""Properties over generated worlds, on the emulator, through the real sweeper and terminator.

A world holds plain jobs, arrays, multi-node jobs and retried jobs in three queues (one not
allowed), some protected, some already being terminated (lingering), some hidden from
DescribeJobs, with random policies and requests (by id, by selector with a limit, claiming a
policy, with `ifStatus`, dry runs), and faults (a throttled call, `errors[]` entries, a timeout
after Batch acted). The oracles read the emulator's truth (`BatchControl.truth`,
`BatchControl.terminations`), never what Batch showed the product.

Examples are derandomized so CI replays the same worlds; `make bench` runs the chaos at scale.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_terminator.contract import JobStatus
from batch_terminator.models.policies import PoliciesFile, Policy
from batch_terminator_cli.emulator import Behaviour, JobTruth, TerminationEvent
from batch_terminator_cli.sandbox import Sandbox, sandbox
from tests.integration.test_never_the_wrong_job import flaky_ledger, redrive

PROTECT = "batch-terminator:protect"
ALLOWED = ("gpu-training", "spot-cpu")
QUEUES = (*ALLOWED, "research")
EXTERNAL = "stopped by someone else"
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


@dataclass(frozen=True)
class JobSpec:
    kind: str  # plain | array | multinode | retried
    queue: str
    status: str
    age_minutes: int
    name: str
    protected: bool
    size: int = 0
    child_statuses: tuple[tuple[str, int], ...] = ()
    lingering: bool = False
    hidden: int = 0
    bulk_error: bool = False


@dataclass
class World:
    specs: list[JobSpec]
    policies: dict[str, Any]
    requests: list[dict[str, Any]]
    throttle: bool
    timeout_after: int | None
    # A ledger read or write that fails once, and a redrive of the DLQ at the end.
    ledger_hiccup: str | None = None
    redrive: bool = False
    ids: list[str] = field(default_factory=list)


statuses = st.sampled_from(ACTIVE)
minutes = st.integers(min_value=0, max_value=20 * 60)


@st.composite
def job_specs(draw: st.DrawFn, n: int) -> JobSpec:
    kind = draw(st.sampled_from(["plain", "plain", "array", "multinode", "retried"]))
    size = draw(st.integers(2, 4)) if kind == "array" else 0
    return JobSpec(
        kind=kind,
        queue=draw(st.sampled_from(QUEUES)),
        status=draw(st.sampled_from(("RUNNABLE", "RUNNING", "STARTING")))
        if kind != "array"
        else "RUNNABLE",
        age_minutes=draw(minutes),
        name=draw(st.sampled_from(["nightly-train", "adhoc"])) + f"-{n}",
        protected=draw(st.booleans()) and draw(st.booleans()),
        size=size,
        child_statuses=tuple((draw(statuses), draw(minutes)) for _ in range(size)),
        lingering=kind == "plain" and draw(st.booleans()) and draw(st.booleans()),
        hidden=draw(st.sampled_from([0, 0, 0, 1, 5])),
        bulk_error=draw(st.booleans()) and draw(st.booleans()),
    )


policy_dicts = st.lists(
    st.fixed_dictionaries(
        {
            "when": st.fixed_dictionaries(
                {
                    "status": st.sampled_from(
                        [
                            ["RUNNING"],
                            ["RUNNABLE", "STARTING"],
                            ["RUNNABLE"],
                            ["PENDING", "RUNNING"],
                        ]
                    ),
                    "olderThan": st.sampled_from(["30m", "2h", "6h"]),
                }
            ),
            "maxPerRun": st.integers(1, 6),
            "match": st.sampled_from(
                [{}, {"jobQueues": ["gpu-*"]}, {"jobNames": ["nightly-*"]}, {"jobQueues": ["*"]}]
            ),
        }
    ),
    max_size=3,
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    specs = [draw(job_specs(i)) for i in range(draw(st.integers(1, 8)))]
    policies = [{**p, "name": f"p{i}"} for i, p in enumerate(draw(policy_dicts))]
    requests: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["ids", "selector", "claim"]))
        reason = f"request {i}"
        extra: dict[str, Any] = {}
        if draw(st.booleans()) and draw(st.booleans()):
            extra["dryRun"] = True
        if draw(st.booleans()) and draw(st.booleans()):
            extra["ifStatus"] = draw(st.sampled_from([["RUNNABLE"], ["RUNNING"]]))
        if kind == "selector":
            requests.append(
                {
                    "selector": {
                        "jobQueues": list(draw(st.sets(st.sampled_from(QUEUES), min_size=1)))
                    },
                    "reason": reason,
                    "limit": draw(st.integers(1, 4)),
                    **extra,
                }
            )
        else:
            picks = draw(st.lists(st.integers(0, 40), min_size=1, max_size=4))
            body = {"jobIds": picks, "reason": reason, **extra}  # indices, resolved later
            if kind == "claim" and policies:
                body["policy"] = draw(st.sampled_from([p["name"] for p in policies]))
            requests.append(body)
    return World(
        specs,
        {"version": 1, "settings": {"jobQueues": list(ALLOWED)}, "policies": policies},
        requests,
        throttle=draw(st.booleans()),
        timeout_after=draw(st.sampled_from([None, None, 0, 1])),
        ledger_hiccup=draw(st.sampled_from([None, None, "batch_get_item", "update_item"])),
        redrive=draw(st.booleans()),
    )


def build(box: Sandbox, world: World) -> list[str]:
    """Create the jobs; return every id a request may name (jobs, children, nodes)."""
    w, control = box.world, box.control
    names: list[str] = []
    for spec in world.specs:
        tags = {PROTECT: "1"} if spec.protected else None
        age = timedelta(minutes=spec.age_minutes)
        if spec.kind == "array":
            job = w.job(spec.name, spec.queue, "RUNNABLE", age=age, array_size=spec.size, tags=tags)
            for index, (status, child_age) in enumerate(spec.child_statuses):
                w.age(f"{job}:{index}", status, timedelta(minutes=child_age))
            names += [job, *(f"{job}:{i}" for i in range(spec.size))]
        elif spec.kind == "multinode":
            job = w.multinode_job(spec.name, spec.queue, "RUNNING", age=age, tags=tags)
            names += [job, f"{job}#1"]
        elif spec.kind == "retried":
            job = w.retried_job(
                spec.name,
                spec.queue,
                created_ago=age + timedelta(hours=8),
                first_attempt_ran=timedelta(hours=7),
                reclaimed_ago=age,
                tags=tags,
            )
            names.append(job)
        else:
            job = w.job(spec.name, spec.queue, spec.status, age=age, tags=tags)
            names.append(job)
            if spec.lingering:
                w.batch.terminate_job(jobId=job, reason=EXTERNAL)
        if spec.hidden:
            control.hide_from_describe(job, times=spec.hidden)
        if spec.bulk_error:
            control.fail_in_bulk(job, times=1)
    return names


def resolve(world: World, names: list[str]) -> list[dict[str, Any]]:
    return [
        {**r, "jobIds": [names[i % len(names)] for i in r["jobIds"]]} if "jobIds" in r else r
        for r in world.requests
    ]


def age_by_the_rule(truth: JobTruth, at: datetime) -> timedelta | None:
    """The README's age rule, read off the truth."""
    if truth.status in ("SUBMITTED", "PENDING"):
        return at - truth.created_at
    if truth.status in ("RUNNABLE", "STARTING"):
        return None if truth.runnable_since is None else at - truth.runnable_since
    if truth.status == "RUNNING":
        return at - truth.entered_at
    return None


def policy_selects(policy: Policy, truth: JobTruth, at: datetime) -> bool:
    match, when = policy.match, policy.when
    if JobStatus(truth.status) not in when.status:
        return False
    if match.job_queues and not any(fnmatchcase(truth.queue_name, p) for p in match.job_queues):
        return False
    if match.job_names and not any(fnmatchcase(truth.job_name, p) for p in match.job_names):
        return False
    age = age_by_the_rule(truth, at)
    return when.older_than is None or (age is not None and age > when.older_than)


def check_stops(ours: list[TerminationEvent], file: PoliciesFile) -> None:
    """Rules 1 and 2, and policy-attributed terminations (the sweeper's requests)."""
    for event in ours:
        truth = event.before
        # protected jobs, and children and nodes of protected jobs, are never stopped
        assert PROTECT not in truth.tags, event
        # nothing outside the allowed queues is touched
        assert truth.queue_name in ALLOWED, event
        # never a job that was already being stopped
        assert not truth.stopping, event
        if event.reason.startswith("batch-terminator: policy "):
            policy = file.policy(event.reason.split(" ")[2].rstrip(":"))
            assert policy is not None
            assert policy_selects(policy, truth, event.at), event


def check_requests(
    by_reason: dict[str, list[TerminationEvent]], requests: list[dict[str, Any]], file: PoliciesFile
) -> None:
    """Each request's preconditions held for every job it stopped; limits held."""
    for request in requests:
        stopped = by_reason.get(request["reason"], [])
        if request.get("dryRun"):
            assert stopped == [], request
        policy = file.policy(request["policy"]) if "policy" in request else None
        for event in stopped:
            if policy is not None:
                assert policy_selects(policy, event.before, event.at), (request, event)
            if "ifStatus" in request:
                assert event.before.status in request["ifStatus"], (request, event)
        # a selector's limit holds across deliveries (a multi-node job is one job, however
        # many nodes it runs; an array's children are jobs each)
        if "selector" in request:
            jobs = {e.before.main_node_job_id or e.job_id for e in stopped}
            assert len(jobs) <= request["limit"], request


def in_the_dlq(box: Sandbox) -> set[str]:
    """Messages that ended in the DLQ (moved by SQS, or parked by the terminator)."""
    ids = set()
    for message in box.dead_letters():
        ids.add(message["MessageId"])
        original = message.get("MessageAttributes", {}).get("originalMessageId")
        if original:
            ids.add(original["StringValue"])
    return ids


def check_lines(
    box: Sandbox, ours: list[TerminationEvent], dead: set[str], ledger_failed: bool
) -> None:
    """Per request and job: failed lines, then exactly one final line, unless the request
    went to the DLQ (`dead`: message ids); nothing silent.

    When the ledger failed (`ledger_failed`), the README's degradation applies: a redelivery
    may add a `skipped` line for a job already settled, and after a lost reply report our own
    stop as `skipped`; never a second `terminated`, never a job left without a final line."""
    lines: dict[tuple[str, str], list[str]] = defaultdict(list)
    for line in box.audit:
        if line["job_id"] and line["outcome"] != "rejected":
            lines[(line["message_id"], line["job_id"])].append(line["outcome"])
    for (message_id, job_id), outcomes in lines.items():
        finals = [o for o in outcomes if o != "failed"]
        assert outcomes.count("terminated") <= 1, (job_id, outcomes)
        assert finals or message_id in dead, ("no final outcome", job_id, outcomes)
        if not ledger_failed:
            assert len(finals) <= 1, (job_id, outcomes)
            assert not finals or outcomes[-1] == finals[0], (job_id, outcomes)
    if ledger_failed:
        return
    terminated = {line["job_id"] for line in box.audit if line["outcome"] == "terminated"}
    # A call whose answer was lost on a request's last delivery cannot be confirmed by that
    # delivery: the request is parked in the DLQ with its ledger key, and a redrive confirms it
    # (README: failed outcomes). Every other stop must have its `terminated` line.
    parked = in_the_dlq(box)
    unconfirmed = {
        line["job_id"]
        for line in box.audit
        if line["outcome"] == "failed" and line["message_id"] in parked
    }
    for event in ours:
        if event.job_id in unconfirmed or event.named_id in unconfirmed:
            continue
        assert event.job_id in terminated or event.named_id in terminated, event


def check(
    box: Sandbox,
    requests: list[dict[str, Any]],
    file: PoliciesFile,
    dead: set[str],
    ledger_failed: bool = False,
) -> None:
    ours = [e for e in box.control.terminations() if e.reason != EXTERNAL]
    by_reason: dict[str, list[TerminationEvent]] = defaultdict(list)
    for event in ours:
        by_reason[event.reason].append(event)
    check_stops(ours, file)
    check_requests(by_reason, requests, file)
    check_lines(box, ours, dead | in_the_dlq(box), ledger_failed)
    assert box.queued() == 0


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(worlds())
def test_every_path_keeps_the_safety_rules_in_generated_worlds(world: World) -> None:
    file = PoliciesFile.model_validate(world.policies)
    with sandbox(file) as box:
        box.control.configure(Behaviour(linger_reads=3))
        names = build(box, world)
        requests = resolve(world, names)
        if world.throttle:
            box.control.throttle("TerminateJobs", times=1)
        if world.timeout_after is not None:
            box.control.timeout("TerminateJobs", after=world.timeout_after, applied=True)
        if world.ledger_hiccup:
            flaky_ledger(world.ledger_hiccup, 1)
        box.run_sweeper()
        for request in requests:
            box.send(json.dumps(request))
        box.run_terminator()
        box.run_sweeper()  # a second run sees lingering jobs and the first run's effects
        box.run_terminator()
        dead = in_the_dlq(box)
        if world.redrive and redrive(box):  # the operator sends the DLQ back: limits still hold
            box.run_terminator()
        check(box, requests, file, dead, ledger_failed=world.ledger_hiccup is not None)
        now = datetime.now(UTC)
        assert all(e.at <= now for e in box.control.terminations())
