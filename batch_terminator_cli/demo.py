"""`batch-terminator demo`: the whole pipeline on the embedded emulator, checked as it runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.output import add_row, literal, say
from batch_terminator_cli.policies_file import load_policies
from batch_terminator_cli.sandbox import FleetSandbox, Sandbox, fleet_sandbox, sandbox

DEMO_POLICIES = Path(__file__).with_name("demo_policies.yaml")
REASON = "Terminating job."
UNKNOWN_JOB = "0f2d1f8e-5b7a-4c1e-9d3a-000000000000"


@dataclass(frozen=True)
class Expected:
    """What must happen to one job: its outcomes in order, the why of the last, its end status."""

    label: str
    outcomes: tuple[str, ...]
    status_after: str | None
    why: str | None = None


@dataclass
class Scene:
    ids: dict[str, str]
    expected: list[Expected]
    before: dict[str, str]


def seed_jobs(world: BatchWorld) -> dict[str, str]:
    """The demo's jobs: runaway, stuck, finished, protected, in a queue not allowed, and more."""
    return {
        "train-bert-runaway": world.job(
            "train-bert-runaway", "gpu-training", "RUNNING", age=timedelta(days=3)
        ),
        "etl-stuck": world.job(
            "etl-stuck", "spot-cpu", "RUNNABLE", age=timedelta(hours=9), definition="etl"
        ),
        "nightly-report": world.job("nightly-report", "spot-cpu", "SUCCEEDED", definition="etl"),
        "golden-model": world.job(
            "golden-model",
            "gpu-training",
            "RUNNING",
            tags={"batch-terminator:protect": "true"},
            age=timedelta(days=2),
        ),
        "research-sim": world.job("research-sim", "research", "RUNNING", definition="sim"),
        "etl-started": world.job("etl-started", "spot-cpu", "RUNNING", definition="etl"),
        "train-canary": world.job("train-canary", "gpu-training", "RUNNING"),
    }


def build_scene(box: Sandbox) -> Scene:
    world = box.world
    ids = seed_jobs(world)
    before = {name: world.describe(job_id)["status"] for name, job_id in ids.items()}
    before["(unknown id)"] = "-"
    expected = [
        # The same request again, later: the job has stopped meanwhile.
        Expected(
            "train-bert-runaway", ("terminated", "skipped"), "FAILED", "already finished: FAILED"
        ),
        Expected("etl-stuck", ("terminated",), "FAILED"),
        Expected("nightly-report", ("skipped",), "SUCCEEDED", "already finished: SUCCEEDED"),
        Expected("golden-model", ("skipped",), "RUNNING", "protected"),
        Expected("research-sim", ("skipped",), "RUNNING", "queue not allowed"),
        # DescribeJobs may not see a just-submitted job yet: retried, concluded on the last try.
        Expected("(unknown id)", ("failed", "failed", "skipped"), None, "not found"),
        Expected("etl-started", ("skipped",), "RUNNING", "precondition failed"),
        # The misspelt request is rejected (its line names the job); the dry run decides alone.
        Expected("train-canary", ("rejected", "skipped"), "RUNNING", "dry run (request)"),
    ]
    return Scene({**ids, "(unknown id)": UNKNOWN_JOB}, expected, before)


def send_requests(box: Sandbox, ids: dict[str, str]) -> list[tuple[str, dict[str, Any] | str]]:
    """The requests of the demo, by both paths; returns (path, body) for display."""
    sent: list[tuple[str, dict[str, Any] | str]] = []

    def sqs(body: dict[str, Any] | str) -> None:
        box.send(body)
        sent.append(("SQS", body))

    first = {"reason": REASON, "jobId": ids["train-bert-runaway"]}
    sqs(first)
    event = {"reason": REASON, "jobId": ids["etl-stuck"], "requestedBy": "oncall@example.com"}
    box.put_event(event)
    sent.append(("EventBridge", event))
    sqs(
        {
            "jobIds": [
                ids["nightly-report"],
                ids["golden-model"],
                ids["research-sim"],
                UNKNOWN_JOB,
            ],
            "reason": "cleanup after incident INC-4411",
            "requestedBy": "alice",
        }
    )
    sqs(
        {"jobId": ids["etl-started"], "reason": "cancel if still waiting", "ifStatus": ["RUNNABLE"]}
    )
    sqs({"jobId": ids["train-canary"], "reason": "what would happen?", "dryRun": True})
    sqs(json.dumps({"jobId": ids["train-canary"], "reason": "typo", "dryrun": True}))
    return sent


def redeliver(box: Sandbox, ids: dict[str, str]) -> None:
    box.send({"reason": REASON, "jobId": ids["train-bert-runaway"]})


def check(box: Sandbox, scene: Scene) -> list[str]:
    """Every way the run differs from what the demo promises; empty when all is as expected."""
    problems = []
    for want in scene.expected:
        job_id = scene.ids[want.label]
        lines = box.decisions(job_id)
        outcomes = tuple(line["outcome"] for line in lines)
        if outcomes != want.outcomes:
            problems.append(f"{want.label}: outcomes {outcomes}, expected {want.outcomes}")
            continue
        why = lines[-1].get("skip_reason") or ""
        if want.why and not why.startswith(want.why):
            problems.append(f"{want.label}: skipped because {why!r}, expected {want.why!r}")
        status = box.world.final(job_id).get("status") if want.status_after else None
        if status != want.status_after:
            problems.append(f"{want.label}: status {status}, expected {want.status_after}")
    rejected = [line for line in box.audit if line["outcome"] == "rejected"]
    parked = box.dead_letters()
    if (
        len(rejected) != 1
        or len(parked) != 1
        or "dryrun" not in parked[0]["MessageAttributes"]["error"]["StringValue"]
    ):
        problems.append("the misspelt request was not rejected into the DLQ with its error")
    if box.queued():
        problems.append("messages left in the request queue")
    return problems


def render(console: Console, box: Sandbox, scene: Scene, sent: list[tuple[str, Any]]) -> None:
    requests = Table(title="Requests sent", show_lines=False)
    requests.add_column("path")
    requests.add_column("body")
    for path, body in sent:
        add_row(requests, path, body if isinstance(body, str) else json.dumps(body))
    add_row(requests, "SQS", "(the first message again: a second delivery)")
    console.print(requests)

    names = {job_id: label for label, job_id in scene.ids.items()}
    table = Table(title="Decisions, in order (one audit line each)")
    for column in ("job", "queue", "status", "outcome", "why (skipped) / reason (terminated)"):
        table.add_column(column, overflow="fold")
    for line in box.audit:
        if line["outcome"] == "rejected":
            continue
        job_id = line["job_id"]
        name = names.get(job_id, job_id)
        queue = (line.get("job_queue") or "-").rsplit("/", 1)[-1]
        after = box.world.final(job_id).get("status", "-") if job_id != UNKNOWN_JOB else "-"
        style = {"terminated": "bold red", "skipped": "yellow", "failed": "magenta"}.get(
            line["outcome"], ""
        )
        why = line.get("skip_reason") or line.get("error") or line.get("reason") or ""
        add_row(
            table,
            name,
            queue,
            f"{line.get('status_before') or '-'} → {after}",
            literal(line["outcome"], style),
            why,
        )
    console.print(table)
    totals = ", ".join(
        f"{name} {int(value)}" for name, value in sorted(box.metric_totals().items())
    )
    say(console, literal("Metrics", "bold"), f" (EMF, namespace BatchTerminator): {totals}\n")

    console.print(
        "[bold]Dead-letter queue[/bold] (rejected requests keep their body and the error):"
    )
    for message in box.dead_letters():
        say(console, f"  body  {message['Body']}")
        say(console, f"  error {message['MessageAttributes']['error']['StringValue']}")

    console.print(
        "\n[bold]Audit log lines[/bold] (one per decision, as CloudWatch Logs receives them):"
    )
    for line in box.audit:
        console.print_json(json.dumps(_audit_view(line)), indent=None)


def _audit_view(line: dict[str, Any]) -> dict[str, Any]:
    """The audit keys of a log line, without Powertools' own (level, location, function_*)."""
    return {
        "message": line.get("message"),
        **{f.name: line.get(f.name) for f in fields(AuditRecord)},
    }


def demo_policies() -> PoliciesFile:
    return load_policies(DEMO_POLICIES)


@dataclass
class PolicyAct:
    ids: dict[str, str]
    planned: set[str]
    first_sweep: dict[str, Any]
    second_sweep: dict[str, Any]


def seed_policy_jobs(world: BatchWorld) -> dict[str, str]:
    """Jobs for the policies to find: three runaways for a cap of two, one under its limit, a
    stuck array, an array with a running child, a job retried a moment ago, and a notebook past
    the limit its owner tagged it with."""
    hours = timedelta(hours=1)
    ids = {
        f"train-gpt-{letter}": world.job(
            f"train-gpt-{letter}",
            "gpu-training",
            "RUNNING",
            age=age * hours,
            definition="train-gpt",
        )
        for letter, age in (("a", 14), ("b", 15), ("c", 16))
    }
    ids["train-small"] = world.job(
        "train-small", "gpu-training", "RUNNING", age=2 * hours, definition="train-gpt"
    )
    render = world.job(
        "render-frames", "spot-cpu", "RUNNABLE", age=9 * hours, array_size=3, definition="render"
    )
    for index in range(3):
        world.age(f"{render}:{index}", "RUNNABLE", 8 * hours)
    ids["render-frames"] = render
    # An array with one child already running: never terminated as a whole.
    mixed = world.job(
        "render-mixed", "spot-cpu", "RUNNABLE", age=8 * hours, array_size=3, definition="render"
    )
    world.age(f"{mixed}:2", "RUNNING", timedelta(minutes=10))
    ids["render-mixed"] = mixed
    # Created 8 hours ago, reclaimed 5 minutes ago: RUNNABLE again for 5 minutes, not 8 hours.
    ids["etl-retried"] = world.retried_job(
        "etl-retried",
        "spot-cpu",
        created_ago=8 * hours,
        first_attempt_ran=7 * hours,
        reclaimed_ago=timedelta(minutes=5),
        definition="etl",
    )
    ids["adhoc-notebook"] = world.job(
        "adhoc-notebook",
        "spot-cpu",
        "RUNNING",
        age=90 * timedelta(minutes=1),
        definition="etl",
        tags={"batch-terminator:max-runtime": "1h", "owner": "bob"},
    )
    return ids


def act_policies(console: Console, box: Sandbox, names: dict[str, str]) -> PolicyAct:
    from datetime import UTC, datetime

    from batch_terminator_cli.planning import make_plan, render_plan

    ids = seed_policy_jobs(box.world)
    names.update({job_id: name for name, job_id in ids.items()})
    for name in ("render-frames", "render-mixed"):
        names.update({f"{ids[name]}:{i}": f"{name}[{i}]" for i in range(3)})
    console.rule("Policies: plan, then two sweeps")
    plan = make_plan(box.session.client("batch"), box.policies, datetime.now(UTC))
    render_plan(console, plan)
    planned = {s.job.job_id for s in plan.evaluation.selections if not s.dry_run}
    already = len(box.audit)
    first = box.run_sweeper()
    box.run_terminator()
    second = box.run_sweeper()
    box.run_terminator()
    table = Table(title="Sweeps: decisions (one audit line each)")
    for column in ("sweep", "job", "policy", "outcome", "reason"):
        table.add_column(column, overflow="fold")
    for line in box.audit[already:]:
        sweep = "1st" if line["request_id"] == first["run_id"] else "2nd"
        add_row(
            table,
            sweep,
            names.get(line["job_id"], line["job_id"]),
            line["policy"],
            line["outcome"],
            line.get("skip_reason") or line["reason"],
        )
    console.print(table)
    for label, summary in (("1st", first), ("2nd", second)):
        per_policy = ", ".join(
            f"{name}: {c['enqueued']} enqueued" + (f", {c['capped']} capped" if c["capped"] else "")
            for name, c in summary["policies"].items()
        )
        say(
            console,
            f"{label} sweep: {summary['jobs_listed']} listed, "
            f"{summary['jobs_described']} described; {per_policy}",
        )
    return PolicyAct(ids, planned, first, second)


def check_policies(box: Sandbox, act: PolicyAct) -> list[str]:
    ids, problems = act.ids, []
    swept_first = {
        line["job_id"]
        for line in box.audit
        if line["source"] == "sweep"
        and line["outcome"] == "terminated"
        and line["request_id"] == act.first_sweep["run_id"]
    }
    # A whole array is planned as its parent; each child it stopped has its own line too.
    through_parents = {j for j in swept_first if ":" in j and j.split(":")[0] in act.planned}
    if act.planned != swept_first - through_parents:
        problems.append("plan did not list exactly the jobs the sweep terminated")
    mixed = ids["render-mixed"]
    expected_first = {
        ids["train-gpt-b"],
        ids["train-gpt-c"],
        ids["render-frames"],
        ids["adhoc-notebook"],
        f"{mixed}:0",
        f"{mixed}:1",
    }
    if swept_first - through_parents != expected_first:
        problems.append(
            "the first sweep did not terminate the two oldest runaways, the stuck array, the "
            "stuck children of the mixed array and the notebook"
        )
    if act.first_sweep["policies"]["gpu-runtime-cap"]["capped"] != 1:
        problems.append("the gpu-runtime-cap policy did not report its cap")
    if box.outcome(ids["train-gpt-a"]) != "terminated":
        problems.append("the capped job was not terminated by the next sweep")
    for job_id in (ids["train-small"], f"{mixed}:2", ids["etl-retried"]):
        if box.world.final(job_id)["status"] not in ("RUNNING", "RUNNABLE") or box.decisions(
            job_id
        ):
            problems.append(f"{job_id} was touched although no policy selects it")
    if box.decisions(mixed):
        problems.append("the mixed array was terminated through its parent")
    frames = ids["render-frames"]
    children = [box.world.final(f"{frames}:{i}")["status"] for i in range(3)]
    one_line_each = all(len(box.decisions(f"{frames}:{i}")) == 1 for i in range(3))
    if children != ["FAILED"] * 3 or len(box.decisions(frames)) != 1 or not one_line_each:
        problems.append("the stuck array was not terminated once through its parent")
    return problems


def run(console: Console) -> bool:
    policies = demo_policies()
    with sandbox(policies) as box:
        console.rule(
            "batch-terminator demo: requests by SQS and EventBridge, on the embedded emulator"
        )
        scene = build_scene(box)
        sent = send_requests(box, scene.ids)
        box.run_terminator()
        redeliver(box, scene.ids)
        box.run_terminator()
        render(console, box, scene, sent)
        problems = check(box, scene)
        names = {job_id: label for label, job_id in scene.ids.items()}
        act = act_policies(console, box, names)
        problems += check_policies(box, act)
        if box.world.final(scene.ids["golden-model"])["status"] != "RUNNING":
            problems.append("the protected job was touched")
    with sandbox(policies) as box:
        problems += check_events(box, act_events(console, box))
    members = {TEAM_A: policies, TEAM_B: policies, OUTSIDER: policies}
    with fleet_sandbox(members, admitted=[TEAM_A[0], TEAM_B[0]]) as fleet:
        problems += check_fleet(act_fleet(console, fleet))
    if problems:
        say(console, literal("Demo FAILED:", "bold red"))
        for problem in problems:
            say(console, f"  - {problem}")
        return False
    say(
        console,
        literal("Demo passed:", "bold green"),
        " every job ended exactly as expected.",
    )
    return True


# ---- events: deadlines, a blocked queue, the brake ------------------------------------------

BLOCKED_REASON = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) "
    "is higher than that can be met by the CE(s) attached to the job queue."
)


@dataclass
class EventAct:
    ids: dict[str, str]
    brake_outcomes: list[str]
    swept: bool


def act_events(console: Console, box: Sandbox) -> EventAct:
    """No sweep: Batch's events, EventBridge Scheduler and an alarm drive every termination."""
    from datetime import UTC, datetime

    from batch_terminator_cli.emulator import alarms

    world, minute = box.world, timedelta(minutes=1)
    console.rule("Events: a deadline, a blocked queue, the brake (no sweep runs)")
    ids = {
        "quick-experiment": world.job(
            "quick-experiment", "gpu-training", "RUNNING", age=timedelta(seconds=30)
        ),
        "big-mem": world.job("big-mem", "spot-cpu", "RUNNABLE", age=10 * minute),
    }
    now = datetime.now(UTC)
    for i in range(5):
        ids[f"spot-{i}"] = world.job(
            f"spot-{i}", "spot-cpu", "RUNNING", age=(20 - i) * minute, now=now, definition="etl"
        )
    box.run_deadlines()
    box.control.block(ids["big-mem"], BLOCKED_REASON)
    box.run_deadlines()
    _show_schedules(console, box, ids)
    box.advance(timedelta(seconds=95))
    say(console, "The emulator's clock moves 95 s on; due schedules fire into the request queue.")
    box.fire_schedules()
    box.run_terminator()
    box.advance(20 * minute)
    say(console, "20 minutes on: the blocked job's 30 minutes are up.")
    box.fire_schedules()
    box.run_terminator()
    box.control.settle()
    box.run_deadlines()  # the FAILED events confirm the terminations

    at = datetime.now(UTC).replace(microsecond=0)
    say(console, "The spend alarm enters ALARM, delivered by EventBridge, then by its Lambda")
    say(console, "action and by SNS: one transition, one brake, up to the policy's cap of 3.")
    outcomes = []
    for event in (
        alarms.alarm_event("batch-spend-critical", at),
        alarms.alarm_action("batch-spend-critical", at),
        alarms.sns_alarm("batch-spend-critical", at),
    ):
        outcomes += box.run_brake(event)["outcomes"]
    box.run_terminator()
    _show_event_decisions(console, box, ids)
    return EventAct(ids, outcomes, swept=bool(box.sweeper_logs))


def _show_schedules(console: Console, box: Sandbox, ids: dict[str, str]) -> None:
    names = {job_id: label for label, job_id in ids.items()}
    table = Table(title="Deadline function: one EventBridge Scheduler schedule per job deadline")
    for column in ("job", "event", "outcome", "rule", "deadline (UTC)"):
        table.add_column(column, overflow="fold")
    for line in box.trigger_logs:
        if line.get("message") != "deadline event" or line.get("job_id") not in names:
            continue
        add_row(
            table,
            names[line["job_id"]],
            line.get("status", "-"),
            line["outcome"],
            line.get("rule") or "-",
            (line.get("deadline") or "-").replace("+00:00", ""),
        )
    console.print(table)


def _show_event_decisions(console: Console, box: Sandbox, ids: dict[str, str]) -> None:
    names = {job_id: label for label, job_id in ids.items()}
    table = Table(title="Decisions on the event paths (one audit line each)")
    for column in ("job", "source", "policy", "outcome", "reason"):
        table.add_column(column, overflow="fold")
    for line in box.audit:
        if line["job_id"] in names:
            add_row(
                table,
                names[line["job_id"]],
                line["source"],
                line["policy"] or "-",
                literal(line["outcome"], "bold red" if line["outcome"] == "terminated" else ""),
                line.get("skip_reason") or line["reason"] or "",
            )
    console.print(table)
    for line in box.trigger_logs:
        message = line.get("message")
        if message == "termination confirmed" and line["job_id"] in names:
            say(
                console,
                f"termination confirmed: {names[line['job_id']]} stopped "
                f"{line['seconds_to_stop']} s after TerminateJobs accepted it",
            )
        elif message in ("brake applied", "brake already applied"):
            say(console, f"{message}: {line['trigger']} by {line['path']}")


def check_events(box: Sandbox, act: EventAct) -> list[str]:
    ids, problems = act.ids, []

    def last(label: str) -> dict[str, Any]:
        return box.decision(ids[label]) if box.decisions(ids[label]) else {}

    quick = last("quick-experiment")
    if (quick.get("outcome"), quick.get("source")) != ("terminated", "deadline"):
        problems.append("the 2-minute experiment was not terminated by its deadline")
    blocked = last("big-mem")
    if (blocked.get("outcome"), blocked.get("source")) != ("terminated", "blocked"):
        problems.append("the job of the blocked queue was not terminated by its deadline")
    braked = {label for label in ids if label.startswith("spot-") and last(label)}
    if braked != {"spot-2", "spot-3", "spot-4"} or any(
        last(label).get("source") != "alarm" for label in braked
    ):
        problems.append("the brake did not terminate the three newest spot jobs (its cap)")
    if act.brake_outcomes != ["braked", "duplicate", "duplicate"]:
        problems.append(f"the alarm braked {act.brake_outcomes}, expected once")
    for label in ("spot-0", "spot-1"):
        if box.world.final(ids[label])["status"] != "RUNNING":
            problems.append(f"{label} was touched beyond the brake's cap")
    confirmed = {
        line["job_id"]
        for line in box.trigger_logs
        if line.get("message") == "termination confirmed"
    }
    if ids["quick-experiment"] not in confirmed:
        problems.append("the deadline's termination was not confirmed by its FAILED event")
    if act.swept:
        problems.append("a sweep ran in the event act")
    return problems


# ---- the fleet: two accounts, two regions, one central audit -------------------------------------

TEAM_A = ("222222222222", "us-east-1")
TEAM_B = ("333333333333", "eu-west-1")
# A deployment the central bus does not admit: its decisions never reach the central log.
OUTSIDER = ("444444444444", "us-east-1")


@dataclass
class FleetAct:
    rows: list[dict[str, Any]]
    braked: set[str]
    capped: set[str]
    refused: int


def act_fleet(console: Console, fleet: FleetSandbox) -> FleetAct:
    """A brake fires in team A's account, a runtime cap terminates in team B's (another region);
    one query of the central log group shows both, with their account and region."""
    from datetime import UTC, datetime

    from batch_terminator.contract import FLEET_LOG_GROUP
    from batch_terminator_cli import auditing
    from batch_terminator_cli.emulator import alarms, eventbridge

    console.rule("Fleet: two accounts, two regions, one central audit")
    say(
        console,
        f"Central account {fleet.central.account} ({fleet.central_region}): bus "
        f"{fleet.bus_arn.rsplit('/', 1)[-1]}, log group {FLEET_LOG_GROUP}; its resource policy "
        f"admits {TEAM_A[0]} and {TEAM_B[0]} only.",
    )
    minute = timedelta(minutes=1)
    team_a, team_b = fleet.member(*TEAM_A), fleet.member(*TEAM_B)
    with fleet.acting_as(team_a) as box:
        for i in range(4):
            box.world.job(
                f"spot-{i}", "spot-cpu", "RUNNING", age=(20 - i) * minute, definition="etl"
            )
        at = datetime.now(UTC).replace(microsecond=0)
        box.run_brake(
            alarms.alarm_event("batch-spend-critical", at, account=TEAM_A[0], region=TEAM_A[1])
        )
        box.run_terminator()
        braked = {line["job_id"] for line in box.audit if line["outcome"] == "terminated"}
    say(
        console,
        f"{TEAM_A[0]} {TEAM_A[1]}: the spend alarm fires; the brake stops 3 of 4 spot jobs.",
    )
    with fleet.acting_as(team_b) as box:
        for i in range(3):
            box.world.job(
                f"train-gpt-{i}",
                "gpu-training",
                "RUNNING",
                age=timedelta(hours=13 + i),
                definition="train-gpt",
            )
        box.run_sweeper()
        box.run_terminator()
        capped = {line["job_id"] for line in box.audit if line["outcome"] == "terminated"}
    say(
        console,
        f"{TEAM_B[0]} {TEAM_B[1]}: a sweep's runtime cap stops 2 of 3 runaways (maxPerRun 2).",
    )
    outsider = fleet.member(*OUTSIDER)
    before = len(eventbridge.refused)
    with fleet.acting_as(outsider) as box:
        box.world.job(
            "train-gpt-x",
            "gpu-training",
            "RUNNING",
            age=timedelta(hours=20),
            definition="train-gpt",
        )
        box.run_sweeper()
        box.run_terminator()
    refused = len(eventbridge.refused) - before
    say(
        console,
        f"{OUTSIDER[0]} {OUTSIDER[1]} (not in the fleet) terminates too; EventBridge refused its "
        f"decision events ({refused}): the central bus's policy does not admit the account.",
    )
    query = auditing.AuditQuery(timedelta(hours=24), limit=100, central=True)
    result = auditing.read_audit(
        fleet.central_session().client("logs"), FLEET_LOG_GROUP, query, datetime.now(UTC)
    )
    rows = [auditing.fleet_audit_fields(line) for line in result.lines]
    say(
        console,
        "\nWhat was terminated in the last 24 hours, everywhere, and why "
        "(`batch-terminator audit --central`, the central account's log group):",
    )
    auditing.render_fleet_audit(
        console, rows, f"Audit: {len(rows)} decisions, central log group {FLEET_LOG_GROUP}"
    )
    return FleetAct(rows, braked, capped - braked, refused)


def check_fleet(act: FleetAct) -> list[str]:
    problems = []
    terminated = {
        (row["account"], row["region"], row["source"], row["job_id"])
        for row in act.rows
        if row["outcome"] == "terminated"
    }
    want = {(*TEAM_A, "alarm", job) for job in act.braked} | {
        (*TEAM_B, "sweep", job) for job in act.capped
    }
    if len(act.braked) != 3 or len(act.capped) != 2 or terminated != want:
        problems.append(
            "the central audit does not show exactly the brake's 3 terminations in team A's "
            "account and the runtime cap's 2 in team B's, with their account and region"
        )
    caps = {(row["account"], row["policy"]) for row in act.rows if row["outcome"] == "skipped"}
    if caps != {(TEAM_A[0], "spend-brake"), (TEAM_B[0], "gpu-runtime-cap")}:
        problems.append("the central audit does not show each capped run once")
    if any(row["account"] == OUTSIDER[0] for row in act.rows) or not act.refused:
        problems.append("an account the central bus does not admit reached the central log")
    return problems
