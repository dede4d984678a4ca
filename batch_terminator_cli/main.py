"""`batch-terminator`: the command line of the product.

Every command that talks to AWS follows the AWS CLI's conventions (`conventions.py`): `--profile`,
`--region`, `--endpoint-url`, `--output json|table|text`, `-h`; exit 0 done, 1 an AWS or file
error, 2 a usage error; the output alone on stdout, notes and errors on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from batch_terminator.contract import Outcome, Source
from batch_terminator_cli.conventions import (
    CONTEXT_SETTINGS,
    DEFAULT_STACK,
    DlqUrlOption,
    EndpointOption,
    LogGroupOption,
    Output,
    OutputOption,
    ProfileOption,
    QueueUrlOption,
    RegionOption,
    StackOption,
    TableOption,
    aws_session,
    cli_errors,
    err,
    fail,
    out,
)
from batch_terminator_cli.fleet_cli import FleetOption, ProfilesOption, RegionsOption
from batch_terminator_cli.output import labelled, literal, say

app = typer.Typer(
    help="Terminate AWS Batch jobs by policy or on request.\n\n"
    "Exit codes: 0 done, 1 an AWS or file error, 2 a usage error. Output on stdout; progress, "
    "notes and errors on stderr.",
    no_args_is_help=True,
    add_completion=False,
    context_settings=CONTEXT_SETTINGS,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Kept for callers that print through the module (the demo): the standard output console.
console = out

if TYPE_CHECKING:
    from batch_terminator.models.policies import PoliciesFile
    from batch_terminator_cli.aws import Aws
    from batch_terminator_cli.operating import JobState


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("batch-terminator")
        except PackageNotFoundError:
            number = "unknown"
        typer.echo(f"batch-terminator {number}")
        raise typer.Exit


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Terminate AWS Batch jobs by policy or on request.

    Exit codes: 0 done, 1 an AWS or file error, 2 a usage error."""


def _emit_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _emit_text(text: str) -> None:
    if text:
        typer.echo(text)


def _text_cell(value: object) -> str:
    return "None" if value is None else " ".join(str(value).split())


def _tsv(rows: list[list[object]]) -> str:
    return "\n".join("\t".join(_text_cell(cell) for cell in row) for row in rows)


# ---- demo and local ------------------------------------------------------------------------------


@app.command()
@cli_errors
def demo() -> None:
    """Run the whole pipeline on the embedded AWS emulator (no account needed)."""
    from batch_terminator_cli import demo as demo_module

    if not demo_module.run(out):
        raise typer.Exit(1)


@app.command()
@cli_errors
def local(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 5050,
    policies_file: Annotated[
        Path | None,
        typer.Option("--policies", help="Policies file (default: the demo's policies)."),
    ] = None,
    sweep_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between sweeps (default: the policies' sweepInterval; 0: never).",
            min=0,
            max=366 * 24 * 3600,
        ),
    ] = None,
    fleet: Annotated[
        Path | None,
        typer.Option(
            "--fleet",
            help="Serve this fleet file's members (each account and region) and its central "
            "account, with AWS CLI profiles that reach them.",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Serve the emulator on 127.0.0.1, with demo jobs, the terminator and the sweeper running."""
    import tempfile
    import time

    from batch_terminator_cli import demo as demo_module
    from batch_terminator_cli.local_server import LocalServer, PortInUse

    policies = (
        _load_policies_or_exit(policies_file) if policies_file else demo_module.demo_policies()
    )
    if fleet is not None:
        _local_fleet(fleet, policies, port, sweep_interval)
        return
    server = LocalServer(policies, port=port, sweep_seconds=sweep_interval)
    with tempfile.TemporaryDirectory(prefix="batch-terminator-local-") as scratch:
        try:
            deployment = server.start(scratch, on_audit=_print_audit, on_sweep=_print_sweep)
        except PortInUse as error:
            fail(error, label="cannot serve")
        try:
            assert server.world is not None
            jobs = {
                **demo_module.seed_jobs(server.world),
                **demo_module.seed_policy_jobs(server.world),
            }
            _print_local_help(server.endpoint_url, deployment, jobs, demo_module.DEMO_POLICIES)
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


def _print_local_help(endpoint: str, deployment: Any, jobs: dict[str, str], policies: Path) -> None:
    say(
        out,
        "Emulator listening on ",
        literal(endpoint, "bold"),
        " (region us-east-1, any credentials)",
    )
    say(out, f"Request queue: {deployment.request_queue_url}")
    say(out, f"Audit log group: {deployment.terminator_log_group}")
    for name, job_id in jobs.items():
        say(out, f"  job {name:<20} {job_id}")
    example = next(iter(jobs.values()))
    target = f"--endpoint-url {endpoint} --region us-east-1"
    out.print("\nTry (any credentials work):")
    out.print(
        "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1",
        soft_wrap=True,
    )
    for line in (
        f"  batch-terminator request {example} --reason 'Terminating job.' --wait {target}",
        f"  batch-terminator status {target}",
        f"  batch-terminator audit {target}",
        f"  batch-terminator plan --policies {policies} {target}",
        f"  aws --endpoint-url {endpoint} batch describe-jobs --jobs {example}",
    ):
        out.print(literal(line), soft_wrap=True)
    out.print("Ctrl-C stops.")


def _local_fleet(
    path: Path, policies: PoliciesFile, port: int, sweep_interval: float | None
) -> None:
    import tempfile
    import time

    from batch_terminator_cli import demo as demo_module
    from batch_terminator_cli import fleet_cli
    from batch_terminator_cli.local_server import LocalFleetServer, PortInUse
    from batch_terminator_cli.sandbox import CENTRAL_ACCOUNT

    loaded = fleet_cli.load_fleet_or_exit(path)
    files: dict[Path, PoliciesFile] = {}
    members: dict[tuple[str, str], PoliciesFile] = {}
    names: dict[str, str] = {}
    for member in loaded.members:
        own = Path(member.policies_file) if member.policies_file else None
        if own is not None and not own.is_absolute():
            own = path.parent / own
        if own is not None and own not in files:
            files[own] = _load_policies_or_exit(own)
        members[(member.account, member.region)] = files[own] if own else policies
        names.setdefault(member.account, member.profile or f"member-{member.account}")
    central = loaded.central
    where = (central.account, central.region) if central else (CENTRAL_ACCOUNT, "us-east-1")
    names.setdefault(where[0], (central.profile if central else None) or "central")
    server = LocalFleetServer(
        members,
        central=where,
        organization_id=loaded.organization_id,
        port=port,
        sweep_seconds=sweep_interval,
    )
    with tempfile.TemporaryDirectory(prefix="batch-terminator-local-fleet-") as scratch:
        try:
            deployed = server.start(scratch, on_audit=_print_audit)
        except PortInUse as error:
            fail(error, label="cannot serve")
        try:
            credentials, config = server.write_profiles(Path(scratch), names)
            for member in deployed.members:
                demo_module.seed_jobs(member.box.world)
                demo_module.seed_policy_jobs(member.box.world)
            say(out, "Emulator listening on ", literal(server.endpoint_url, "bold"), " (a fleet)")
            say(out, f"Central account {where[0]} in {where[1]} (profile {names[where[0]]})")
            for member in deployed.members:
                say(
                    out,
                    f"  member {member.account} {member.region} (profile {names[member.account]}):"
                    " the demo's jobs",
                )
            out.print("\nTry:")
            for line in (
                f"  export AWS_SHARED_CREDENTIALS_FILE={credentials} AWS_CONFIG_FILE={config}",
                f"  batch-terminator status --fleet {path}",
                f"  batch-terminator plan --fleet {path} --policies {demo_module.DEMO_POLICIES}",
                f"  batch-terminator audit --fleet {path}",
                f"  batch-terminator audit --central --fleet {path}",
            ):
                out.print(literal(line), soft_wrap=True)
            out.print(
                "Sweeps run at the policies' interval (--sweep-interval S sooner). Ctrl-C stops."
            )
            server.run()
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


def _print_sweep(summary: dict[str, object]) -> None:
    say(out, literal("sweep", "bold"), " ", json.dumps(summary.get("policies")))


def _print_audit(line: dict[str, object]) -> None:
    out.print_json(json.dumps(line), indent=None)


# ---- request -------------------------------------------------------------------------------------


@app.command()
@cli_errors
def request(
    job_ids: Annotated[
        list[str],
        typer.Argument(help="Job ids (or ARNs); more than 100 are split into several requests."),
    ],
    reason: Annotated[
        str, typer.Option(help="Why: recorded as the job's statusReason (max 1024 characters).")
    ],
    via: Annotated[
        str, typer.Option(help="sqs (the request queue) or events (EventBridge).")
    ] = "sqs",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and log, terminate nothing.")
    ] = False,
    if_status: Annotated[
        list[str] | None,
        typer.Option("--if-status", help="Terminate only if still in this status (repeatable)."),
    ] = None,
    requested_by: Annotated[
        str | None, typer.Option(help="Who asks (default: your AWS identity).")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait until each job's outcome is in the audit log, and print it."
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            help="With --wait: give up after this many seconds (exit 1).", min=1, max=86_400
        ),
    ] = 300,
    stack_name: StackOption = DEFAULT_STACK,
    queue_url: Annotated[
        str | None, typer.Option(help="Request queue URL (instead of reading the stack).")
    ] = None,
    event_bus: Annotated[
        str | None, typer.Option(help="Event bus for --via events (default: default).")
    ] = None,
    log_group: Annotated[
        str | None,
        typer.Option(help="With --wait: the terminator's log group (instead of the stack)."),
    ] = None,
    dlq_url: Annotated[
        str | None,
        typer.Option(
            help="With --wait: the DLQ's URL, where a failed request ends (instead of the stack)."
        ),
    ] = None,
    output: OutputOption = Output.TABLE,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
) -> None:
    """Send a termination request through the deployed stack; --wait for each job's outcome."""
    from batch_terminator.models.request import RequestRefused
    from batch_terminator_cli import requesting

    if via not in ("sqs", "events"):
        raise typer.BadParameter("use sqs or events", param_hint="--via")
    if via == "events" and queue_url is not None:
        raise typer.BadParameter(
            "--queue-url names the SQS queue; with --via events the request goes to the event "
            "bus (--event-bus): give one of them",
            param_hint="--queue-url",
        )
    if via == "sqs" and event_bus is not None:
        raise typer.BadParameter(
            "--event-bus is for --via events; with --via sqs give --queue-url",
            param_hint="--event-bus",
        )
    aws = aws_session(endpoint_url, region, profile)
    try:
        bodies = requesting.build_requests(
            job_ids,
            reason,
            dry_run=dry_run,
            if_status=if_status,
            requested_by=requested_by,
        )
    except RequestRefused as error:
        for line in error.problems:
            say(err, labelled("invalid request", line))
        raise typer.Exit(2) from error
    if not requested_by:
        who = requesting.caller(aws)
        for body in bodies:
            body["requestedBy"] = who
    if via == "sqs" and not queue_url:
        queue_url = aws.stack_output(stack_name, "RequestQueueUrl")
    group = None
    if wait:
        group = log_group or aws.stack_output(stack_name, "TerminatorLogGroupName")
    started = datetime.now(UTC)
    sent = requesting.send(aws, bodies, via, queue_url, event_bus or "default")  # type: ignore[arg-type]
    for item in sent:
        say(err, f"sent via {item.via} to {item.target} (id {item.id})")
    if not wait:
        _print_sent(sent, output)
        return
    assert group is not None
    ids = requesting.requested_job_ids(bodies)
    dlq = dlq_url or (lambda: aws.stack_output(stack_name, "DeadLetterQueueUrl"))
    states, done = _wait(aws, group, ids, bodies[0]["requestId"], started, timeout, dlq)
    _print_states(states, output)
    if not done:
        fail(f"timed out after {timeout:g} s: some jobs have no decision yet", label="pending")


def _print_sent(sent: list[Any], output: Output) -> None:
    if output is Output.JSON:
        _emit_json([{"via": s.via, "target": s.target, "id": s.id, "body": s.body} for s in sent])
    elif output is Output.TEXT:
        _emit_text(_tsv([[s.via, s.id, s.target, json.dumps(s.body)] for s in sent]))
    else:
        for item in sent:
            say(out, f"sent via {item.via} (id {item.id}):")
            out.print_json(json.dumps(item.body))


def _wait(
    aws: Aws,
    group: str,
    ids: list[str],
    request_id: str | None,
    started: datetime,
    timeout: float,
    dlq: str | Callable[[], str],
) -> tuple[list[JobState], bool]:
    """Poll the jobs' outcomes; `dlq` is the DLQ's URL, or how to find it (read only when a
    request failed: whether it has a delivery left)."""
    from datetime import timedelta

    from batch_terminator_cli import operating

    logs, batch, sqs = aws.client("logs"), aws.client("batch"), aws.client("sqs")

    def parked() -> frozenset[str]:
        return operating.parked_requests(sqs, dlq if isinstance(dlq, str) else dlq())

    def read() -> list[JobState]:
        since = datetime.now(UTC) - started + timedelta(minutes=5)
        return operating.job_states(
            logs,
            batch,
            group,
            ids,
            since,
            datetime.now(UTC),
            request_id=request_id,
            parked=parked,
        )

    with err.status("waiting for the outcomes…") as status:

        def show(states: list[JobState]) -> None:
            known = sum(1 for s in states if s.known)
            status.update(f"waiting for the outcomes: {known} of {len(states)} known")

        return operating.wait_for_outcomes(read, timeout, show, poll_seconds=_POLL_SECONDS)


# Seconds between polls of the audit log and of SQS's move tasks.
_POLL_SECONDS = 2.0


def _print_states(states: list[JobState], output: Output) -> None:
    if output is Output.JSON:
        _emit_json([s.as_json() for s in states])
    elif output is Output.TEXT:
        _emit_text(_tsv([[s.job_id, s.outcome, s.detail] for s in states]))
    else:
        from rich import box
        from rich.table import Table

        from batch_terminator_cli.output import add_row

        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("job id", no_wrap=True, min_width=36)
        table.add_column("outcome", overflow="fold", max_width=10)
        table.add_column("detail", overflow="fold", ratio=1)
        for s in states:
            add_row(table, s.job_id, s.outcome, s.detail)
        out.print(table)


# ---- validate, plan, schema ------------------------------------------------------------------------


def _load_policies_or_exit(path: Path) -> PoliciesFile:
    from batch_terminator_cli.policies_file import PoliciesFileError, load_policies

    try:
        return load_policies(path)
    except PoliciesFileError as error:
        for problem in error.problems:
            say(
                err,
                labelled(
                    f"{path}:{problem.line or '?'}",
                    f"{problem.path or '(file)'}: {problem.message}",
                ),
            )
        raise typer.Exit(1) from error


@app.command()
@cli_errors
def validate(
    file: Annotated[Path, typer.Argument(help="The policies file.")] = Path("policies.yaml"),
    output: OutputOption = Output.TABLE,
) -> None:
    """Check a policies file; errors name the line and the key (exit 1 when it is not valid)."""
    policies = _load_policies_or_exit(file)
    scheduled = sum(1 for p in policies.policies if p.is_scheduled)
    triggered = len(policies.policies) - scheduled
    if output is Output.JSON:
        _emit_json(
            {
                "file": str(file),
                "valid": True,
                "policies": len(policies.policies),
                "scheduled": scheduled,
                "alarmTriggered": triggered,
            }
        )
    elif output is Output.TEXT:
        _emit_text(_tsv([[file, "valid", len(policies.policies), scheduled, triggered]]))
    else:
        say(
            out,
            f"{file}: valid, {len(policies.policies)} policies "
            f"({scheduled} scheduled, {triggered} alarm-triggered)",
        )


@app.command()
@cli_errors
def plan(
    policies_file: Annotated[Path, typer.Option("--policies", help="The policies file.")] = Path(
        "policies.yaml"
    ),
    alarm: Annotated[
        str | None,
        typer.Option(help="Preview the policies this alarm triggers instead of a sweep."),
    ] = None,
    output: OutputOption = Output.TABLE,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    profiles: ProfilesOption = None,
    regions: RegionsOption = None,
    fleet: FleetOption = None,
) -> None:
    """Read-only: what the policies would terminate now, and why (the next sweep's decisions).
    With --profiles/--regions or --fleet: in every member at once, one table."""
    from batch_terminator.batch_api import BatchCallFailed
    from batch_terminator.logic.rules import AlarmFired, applicable_policies
    from batch_terminator_cli import fleet_cli, planning

    asked = fleet_cli.targets(profiles, regions, fleet, profile=profile, region=region)
    if asked is not None:
        _plan_fleet(asked, policies_file, alarm, output, endpoint_url)
        return
    policies = _load_policies_or_exit(policies_file)
    if alarm is not None and not applicable_policies(policies, AlarmFired(alarm)):
        alarms = sorted({a for p in policies.policies if p.trigger for a in p.trigger.alarms or []})
        known = ", ".join(alarms) if alarms else "none"
        raise typer.BadParameter(
            f"no policy in {policies_file} triggers on alarm {alarm!r} (alarms named: {known})",
            param_hint="--alarm",
        )
    aws = aws_session(endpoint_url, region, profile)
    try:
        run = planning.make_plan(aws.client("batch"), policies, datetime.now(UTC), alarm)
    except BatchCallFailed as error:
        fail(error, label="could not read Batch")
    if output is Output.JSON:
        _emit_json(planning.plan_as_json(run))
    elif output is Output.TEXT:
        _emit_text(planning.plan_as_text(run))
    else:
        planning.render_plan(out, run)


def _plan_fleet(
    asked: list[Any], policies_file: Path, alarm: str | None, output: Output, endpoint: str | None
) -> None:
    from batch_terminator.batch_api import BatchCallFailed
    from batch_terminator.logic.rules import AlarmFired, applicable_policies
    from batch_terminator_cli import fleet_cli, planning

    loaded: dict[Path, PoliciesFile] = {}
    for target in asked:
        path = target.policies_file or policies_file
        if path not in loaded:
            loaded[path] = _load_policies_or_exit(path)
    if alarm is not None and not any(
        applicable_policies(p, AlarmFired(alarm)) for p in loaded.values()
    ):
        raise typer.BadParameter(
            f"no policy in {', '.join(map(str, loaded))} triggers on alarm {alarm!r}",
            param_hint="--alarm",
        )
    now = datetime.now(UTC)

    def work(aws: Aws, target: Any) -> list[dict[str, Any]]:
        try:
            run = planning.make_plan(
                aws.client("batch"), loaded[target.policies_file or policies_file], now, alarm
            )
        except BatchCallFailed as error:
            raise fleet_cli.MemberFailed(f"could not read Batch: {error}") from error
        return list(planning.plan_as_json(run)["selections"])

    answers = fleet_cli.ask(asked, endpoint, work, err, "planning")
    rows = fleet_cli.rows_of(answers)
    if output is Output.JSON:
        _emit_json(rows)
    elif output is Output.TEXT:
        _emit_text(planning.fleet_plan_as_text(rows))
    else:
        planning.render_fleet_plan(out, answers)
    _finish_fleet(answers)


def _finish_fleet(answers: list[Any]) -> None:
    """The summary on stderr; exit 1 when a member could not be asked."""
    from batch_terminator_cli import fleet_cli

    say(err, fleet_cli.summary(answers))
    if fleet_cli.unreachable(answers):
        raise typer.Exit(1)


@app.command()
@cli_errors
def schema() -> None:
    """Print the JSON Schema of the policies file (committed as policies.schema.json)."""
    from batch_terminator_cli.schema import policies_schema_json

    typer.echo(policies_schema_json(), nl=False)


# ---- audit ---------------------------------------------------------------------------------------


def _job_id_option(value: str | None) -> str | None:
    if value is None:
        return None
    from batch_terminator_cli.operating import job_id

    try:
        return job_id(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def _since_option(value: str) -> str:
    from batch_terminator.logic.durations import parse_duration

    try:
        parse_duration(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    return value


@app.command()
@cli_errors
def audit(
    job_id: Annotated[
        str | None,
        typer.Option(help="Only this job (its id or ARN).", callback=_job_id_option),
    ] = None,
    outcome: Annotated[Outcome | None, typer.Option(help="Only this outcome.")] = None,
    policy: Annotated[str | None, typer.Option(help="Only decisions of this policy.")] = None,
    source: Annotated[Source | None, typer.Option(help="Only decisions from this path.")] = None,
    requested_by: Annotated[str | None, typer.Option(help="Only requests by this caller.")] = None,
    since: Annotated[
        str, typer.Option(help="How far back: 90m, 6h, 2d (at most 366d).", callback=_since_option)
    ] = "24h",
    limit: Annotated[
        int,
        typer.Option(help="At most this many lines, newest first (1 to 10000).", min=1, max=10_000),
    ] = 50,
    output: OutputOption = Output.TABLE,
    log_group: LogGroupOption = None,
    stack_name: StackOption = DEFAULT_STACK,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    profiles: ProfilesOption = None,
    regions: RegionsOption = None,
    fleet: FleetOption = None,
    central: Annotated[
        bool,
        typer.Option(
            "--central",
            help="Query the fleet's central log group (every member's decisions) in the audit "
            "account: the fleet file's central profile and region with --fleet, else "
            "--profile and --region.",
        ),
    ] = False,
) -> None:
    """Query the audit log (one line per job decision) with CloudWatch Logs Insights. With
    --profiles/--regions or --fleet: every member's at once, one table; --central: the fleet's
    central log group."""
    from batch_terminator.logic.durations import parse_duration
    from batch_terminator_cli import auditing, fleet_cli

    query = auditing.AuditQuery(
        parse_duration(since),
        job_id,
        outcome.value if outcome else None,
        policy,
        source.value if source else None,
        requested_by,
        limit,
        central=central,
    )
    if central:
        _audit_central(
            query, fleet, profiles, regions, log_group, output, endpoint_url, region, profile
        )
        return
    asked = fleet_cli.targets(profiles, regions, fleet, profile=profile, region=region)
    if asked is not None:
        _audit_fleet(asked, query, log_group, stack_name, output, endpoint_url)
        return
    aws = aws_session(endpoint_url, region, profile)
    group = log_group or aws.stack_output(stack_name, "TerminatorLogGroupName")
    with err.status("Logs Insights: starting the query…") as status:

        def progress(state: str, statistics: dict[str, Any]) -> None:
            scanned = int(statistics.get("recordsScanned", 0))
            matched = int(statistics.get("recordsMatched", 0))
            status.update(
                f"Logs Insights: {state.lower()}, {scanned:,} records scanned, {matched:,} matched"
            )

        try:
            result = auditing.read_audit(
                aws.client("logs"),
                group,
                query,
                datetime.now(UTC),
                on_progress=progress,
                note=lambda text: say(err, labelled("note", text, "yellow")),
            )
        except auditing.InsightsQueryEnded as ended:
            fail(ended)
    if result.records_scanned is not None:
        say(err, f"Logs Insights scanned {result.records_scanned:,} records")
    if result.truncated:
        say(
            err,
            labelled(
                "note",
                f"Logs Insights returns at most {auditing.INSIGHTS_MAX_ROWS:,} rows a query: "
                "older lines may exist; narrow --since or filter",
                "yellow",
            ),
        )
    if output is Output.JSON:
        _emit_json([auditing.audit_fields(line) for line in result.lines])
    elif output is Output.TEXT:
        _emit_text(auditing.render_text(result.lines))
    else:
        auditing.render_audit(out, result)


def _audit_fleet(
    asked: list[Any],
    query: Any,
    log_group: str | None,
    stack_name: str,
    output: Output,
    endpoint: str | None,
) -> None:
    import threading

    from batch_terminator_cli import auditing, fleet_cli

    now = datetime.now(UTC)
    notes: set[str] = set()
    lock = threading.Lock()

    def note(text: str) -> None:
        with lock:
            notes.add(text)

    def work(aws: Aws, _target: Any) -> list[dict[str, Any]]:
        group = log_group or aws.stack_output(stack_name, "TerminatorLogGroupName")
        try:
            result = auditing.read_audit(aws.client("logs"), group, query, now, note=note)
        except auditing.InsightsQueryEnded as ended:
            raise fleet_cli.MemberFailed(str(ended)) from ended
        if result.truncated:
            note("a member's Logs Insights query returned its 10,000 rows: narrow --since")
        return [auditing.audit_fields(line) for line in result.lines]

    answers = fleet_cli.ask(asked, endpoint, work, err, "reading the audit logs of")
    for text in sorted(notes):
        say(err, labelled("note", text, "yellow"))
    decisions = [
        row for row in fleet_cli.rows_of(answers) if "error" not in row or "outcome" in row
    ]
    decisions.sort(key=lambda row: str(row.get("timestamp") or ""), reverse=True)
    errors = [row for row in fleet_cli.rows_of(answers) if "outcome" not in row]
    _print_fleet_audit(decisions[: query.limit] + errors, output, len(answers))
    _finish_fleet(answers)


def _audit_central(
    query: Any,
    fleet: Path | None,
    profiles: list[str] | None,
    regions: list[str] | None,
    log_group: str | None,
    output: Output,
    endpoint: str | None,
    region: str | None,
    profile: str | None,
) -> None:
    from batch_terminator.contract import FLEET_LOG_GROUP
    from batch_terminator_cli import auditing, fleet_cli

    if profiles or regions:
        raise typer.BadParameter(
            "--central reads one log group in the audit account: give its --profile and "
            "--region (or --fleet), not --profiles/--regions",
            param_hint="--central",
        )
    account = None
    if fleet is not None:
        if profile or region:
            raise typer.BadParameter(
                "the fleet file names the central account's profile and region: give --fleet "
                "alone, or --profile and --region without it",
                param_hint="--fleet",
            )
        loaded = fleet_cli.load_fleet_or_exit(fleet)
        if loaded.central is None:
            fail(f"{fleet}: central: the fleet file names no central account to query")
        account, region, profile = (
            loaded.central.account,
            loaded.central.region,
            loaded.central.profile,
        )
    aws = aws_session(endpoint, region, profile)
    if account is not None:
        caller = str(aws.client("sts").get_caller_identity()["Account"])
        if caller != account:
            fail(
                f"profile {profile or '(default)'} reaches account {caller}, not the central "
                f"account {account} the fleet file names"
            )
    group = log_group or FLEET_LOG_GROUP
    with err.status("Logs Insights: querying the fleet's central log group…"):
        try:
            result = auditing.read_audit(
                aws.client("logs"),
                group,
                query,
                datetime.now(UTC),
                note=lambda text: say(err, labelled("note", text, "yellow")),
            )
        except auditing.InsightsQueryEnded as ended:
            fail(ended)
    if result.truncated:
        say(
            err,
            labelled(
                "note",
                f"Logs Insights returns at most {auditing.INSIGHTS_MAX_ROWS:,} rows a query: "
                "older decisions may exist; narrow --since or filter",
                "yellow",
            ),
        )
    rows = [auditing.fleet_audit_fields(line) for line in result.lines]
    members = len({(row["account"], row["region"]) for row in rows})
    _print_fleet_audit(rows, output, members, central=group)


def _print_fleet_audit(
    rows: list[dict[str, Any]], output: Output, members: int, central: str | None = None
) -> None:
    from batch_terminator_cli import auditing

    if output is Output.JSON:
        _emit_json(rows)
    elif output is Output.TEXT:
        _emit_text(auditing.render_fleet_text(rows))
    else:
        decisions = sum(1 for row in rows if "outcome" in row)
        where = f"central log group {central}, " if central else ""
        title = f"Audit: {decisions} decisions, {where}{members} members, newest first"
        auditing.render_fleet_audit(out, rows, title)


# ---- redrive ---------------------------------------------------------------------------------------


@app.command()
@cli_errors
def redrive(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the DLQ's messages; move nothing.")
    ] = False,
    show: Annotated[
        int,
        typer.Option(help="List at most this many messages (all are moved).", min=0, max=10_000),
    ] = 100,
    dlq_url: DlqUrlOption = None,
    queue_url: QueueUrlOption = None,
    stack_name: StackOption = DEFAULT_STACK,
    output: OutputOption = Output.TABLE,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
) -> None:
    """List the DLQ's messages with their errors, then move them back to the request queue
    (SQS's own message move task: nothing is received and re-sent, nothing deleted by hand)."""
    from batch_terminator_cli import operating

    aws = aws_session(endpoint_url, region, profile)
    sqs = aws.client("sqs")
    dlq = dlq_url or aws.stack_output(stack_name, "DeadLetterQueueUrl")
    depth = operating.queue_depth(sqs, dlq)
    letters = operating.peek(sqs, dlq, show)
    total = depth["visible"] + depth["inFlight"] + depth["delayed"]
    task: dict[str, Any] | None = None
    if not dry_run and total:
        target = queue_url or aws.stack_output(stack_name, "RequestQueueUrl")
        source_arn, target_arn = operating.queue_arn(sqs, dlq), operating.queue_arn(sqs, target)
        running = operating.running_move_task(sqs, source_arn)
        if running is not None:
            say(
                err,
                labelled(
                    "note", "a move task of this DLQ is already running: following it", "yellow"
                ),
            )
        else:
            operating.start_move(sqs, source_arn, target_arn)
            say(err, f"moving {total} messages back to {target} (SQS message move task)")
        task = _follow_move(sqs, source_arn)
    _print_redrive(letters, total, task, output)
    if dry_run or not total:
        say(err, "the DLQ is empty: nothing to move" if not total else "dry run: nothing moved")
        return
    assert task is not None
    status = task.get("Status")
    moved = task.get("ApproximateNumberOfMessagesMoved", 0)
    if status != "COMPLETED":
        why = task.get("FailureReason") or status
        fail(
            f"the move task ended {status} after {moved} messages ({why}); the rest stay in the DLQ"
        )
    say(err, f"moved {moved} messages back to the request queue")
    left = operating.queue_depth(sqs, dlq)
    if sum(left.values()):
        say(
            err,
            labelled(
                "note",
                f"{sum(left.values())} messages are in the DLQ now (in flight, or arrived since): "
                "run redrive again to move them",
                "yellow",
            ),
        )


def _follow_move(sqs: Any, source_arn: str) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from batch_terminator_cli import operating

    with Progress(
        TextColumn("moving"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as progress:
        bar = progress.add_task("moving", total=None)

        def update(task: dict[str, Any]) -> None:
            progress.update(
                bar,
                completed=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
                total=int(task.get("ApproximateNumberOfMessagesToMove", 0)) or None,
            )

        try:
            return operating.follow_move(sqs, source_arn, update, poll_seconds=_POLL_SECONDS)
        except KeyboardInterrupt:
            say(
                err,
                "the move task goes on in SQS; `batch-terminator redrive --dry-run` shows what is left",
            )
            raise


def _print_redrive(
    letters: list[Any], total: int, task: dict[str, Any] | None, output: Output
) -> None:
    if output is Output.JSON:
        _emit_json(
            {
                "approximateNumberOfMessages": total,
                "messages": [letter.as_json() for letter in letters],
                "moveTask": task,
            }
        )
        return
    if output is Output.TEXT:
        _emit_text(_tsv([[m.message_id, m.receive_count, m.error, m.excerpt] for m in letters]))
        return
    if not letters:
        return
    from rich import box
    from rich.table import Table

    from batch_terminator_cli.output import add_row

    table = Table(
        title=f"DLQ: {total} messages"
        + (f" (first {len(letters)} shown)" if len(letters) < total else ""),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("message id", no_wrap=True, min_width=36)
    table.add_column("receives", justify="right", max_width=8)
    table.add_column("error / body", overflow="fold", ratio=1)
    for m in letters:
        add_row(
            table,
            m.message_id,
            m.receive_count,
            f"{m.error or '(no error attribute)'}\n{m.excerpt}",
        )
    out.print(table)


# ---- status, pause, resume --------------------------------------------------------------------------


@app.command()
@cli_errors
def status(
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Job ids or ARNs; none: the system's state (paused, queue depths)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until each job's outcome is known.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            help="With --wait: give up after this many seconds (exit 1).", min=1, max=86_400
        ),
    ] = 300,
    since: Annotated[
        str, typer.Option(help="How far back to look for decisions.", callback=_since_option)
    ] = "24h",
    log_group: LogGroupOption = None,
    table_name: TableOption = None,
    queue_url: QueueUrlOption = None,
    dlq_url: DlqUrlOption = None,
    stack_name: StackOption = DEFAULT_STACK,
    output: OutputOption = Output.TABLE,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    profiles: ProfilesOption = None,
    regions: RegionsOption = None,
    fleet: FleetOption = None,
) -> None:
    """Jobs: each one's outcome (terminated, skipped and why, failed, rejected, or pending; exit 1
    while any is pending). No jobs: whether the policies are paused, and the queues' depths;
    with --profiles/--regions or --fleet, of every member, one table."""
    from batch_terminator.logic.durations import parse_duration
    from batch_terminator_cli import fleet_cli, operating

    ids = operating.unique(_job_id_option(j) or "" for j in job_ids or [])
    if wait and not ids:
        raise typer.BadParameter("name the jobs to wait for (job ids or ARNs)", param_hint="--wait")
    asked = fleet_cli.targets(profiles, regions, fleet, profile=profile, region=region)
    if asked is not None:
        if ids:
            raise typer.BadParameter(
                "a job lives in one account and region: give its --profile and --region "
                "(--profiles, --regions and --fleet show the members' state, without job ids)",
                param_hint="JOB_IDS",
            )
        _status_fleet(asked, table_name, queue_url, dlq_url, stack_name, output, endpoint_url)
        return
    aws = aws_session(endpoint_url, region, profile)
    if ids:
        group = log_group or aws.stack_output(stack_name, "TerminatorLogGroupName")
        logs, batch = aws.client("logs"), aws.client("batch")
        window = parse_duration(since)

        sqs = aws.client("sqs")

        def parked() -> frozenset[str]:
            dlq = dlq_url or aws.stack_output(stack_name, "DeadLetterQueueUrl")
            return operating.parked_requests(sqs, dlq)

        def read() -> list[JobState]:
            return operating.job_states(
                logs, batch, group, ids, window, datetime.now(UTC), parked=parked
            )

        if wait:
            with err.status("waiting for the outcomes…"):
                states, done = operating.wait_for_outcomes(
                    read, timeout, lambda _s: None, poll_seconds=_POLL_SECONDS
                )
        else:
            states = read()
            done = all(s.known for s in states)
        _print_states(states, output)
        if not done:
            pending = sum(1 for s in states if not s.known)
            fail(
                f"{pending} of {len(states)} jobs have no decision yet"
                + (f" after {timeout:g} s" if wait else ""),
                label="pending",
            )
        return
    state = _stack_state(aws, table_name, queue_url, dlq_url, stack_name)
    queues = state["queues"]
    if output is Output.JSON:
        _emit_json(state)
    elif output is Output.TEXT:
        rows: list[list[object]] = [
            [
                "PAUSED",
                state["paused"],
                state.get("pausedBy"),
                state.get("pausedAt"),
                state.get("reason"),
                state.get("malformed"),
            ]
        ]
        rows += [
            ["QUEUE", name, d["visible"], d["inFlight"], d["delayed"]] for name, d in queues.items()
        ]
        _emit_text(_tsv(rows))
    else:
        _render_state(out, state)


def _stack_state(
    aws: Aws,
    table_name: str | None,
    queue_url: str | None,
    dlq_url: str | None,
    stack_name: str,
) -> dict[str, Any]:
    """One deployment's state as `status` shows it: the pause switch (`paused`, `pausedBy`...)
    and each queue's depth (`queues`), resources named or else read from the stack's outputs."""
    from batch_terminator_cli import operating

    sqs = aws.client("sqs")
    table = table_name or aws.stack_output(stack_name, "LedgerTableName")
    paused = operating.pause_state(aws.client("dynamodb"), table)
    queues = {
        "requestQueue": operating.queue_depth(
            sqs, queue_url or aws.stack_output(stack_name, "RequestQueueUrl")
        ),
        "deadLetterQueue": operating.queue_depth(
            sqs, dlq_url or aws.stack_output(stack_name, "DeadLetterQueueUrl")
        ),
    }
    return {**operating.pause_as_json(paused), "queues": queues}


def _status_fleet(
    asked: list[Any],
    table_name: str | None,
    queue_url: str | None,
    dlq_url: str | None,
    stack_name: str,
    output: Output,
    endpoint: str | None,
) -> None:
    from batch_terminator_cli import fleet_cli

    def work(aws: Aws, _target: Any) -> list[dict[str, Any]]:
        return [_stack_state(aws, table_name, queue_url, dlq_url, stack_name)]

    answers = fleet_cli.ask(asked, endpoint, work, err, "reading the state of")
    rows = fleet_cli.rows_of(answers)
    if output is Output.JSON:
        _emit_json(rows)
    elif output is Output.TEXT:
        lines: list[list[object]] = []
        for row in rows:
            where: list[object] = [row["account"], row["region"]]
            if "error" in row:
                lines.append([*where, "ERROR", row["profile"], row["error"]])
                continue
            lines.append(
                [
                    *where,
                    "PAUSED",
                    row["paused"],
                    row.get("pausedBy"),
                    row.get("pausedAt"),
                    row.get("reason"),
                ]
            )
            lines += [
                [*where, "QUEUE", name, d["visible"], d["inFlight"], d["delayed"]]
                for name, d in row["queues"].items()
            ]
        _emit_text(_tsv(lines))
    else:
        _render_fleet_state(out, rows)
    _finish_fleet(answers)


def _render_fleet_state(console: Console, rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from batch_terminator_cli.output import add_row

    table = Table(title="Members", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("account", no_wrap=True)
    table.add_column("region", no_wrap=True)
    table.add_column("policies", overflow="fold")
    table.add_column("requests (visible/in flight/delayed)", overflow="fold")
    table.add_column("DLQ", overflow="fold")
    for row in rows:
        if "error" in row:
            add_row(
                table,
                row["account"],
                row["region"],
                Text("unreachable", style="bold red"),
                Text(f"profile {row.get('profile') or '(default)'}: {row['error']}", style="red"),
                "-",
            )
            continue
        if row["paused"]:
            said = f"PAUSED by {row.get('pausedBy')}: {row.get('reason') or '(no reason)'}"
            state = Text(" ".join(said.split()), style="bold yellow")
        else:
            state = Text("running", style="green")
        depth = row["queues"]
        requests, dlq = depth["requestQueue"], depth["deadLetterQueue"]
        add_row(
            table,
            row["account"],
            row["region"],
            state,
            f"{requests['visible']}/{requests['inFlight']}/{requests['delayed']}",
            f"{dlq['visible']}/{dlq['inFlight']}/{dlq['delayed']}",
        )
    console.print(table)


def _render_state(console: Console, state: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    from batch_terminator_cli.output import add_row

    if state["paused"]:
        from rich.text import Text

        # A hand-written item may hold anything: each of these is one line, whatever its
        # strings carry and however narrow the terminal (soft wrap: the terminal folds it).
        since = state["pausedAt"] or "an unreadable time"
        said = f"since {since} by {state['pausedBy']}: {state['reason'] or '(no reason)'}"
        console.print(
            Text.assemble(literal("PAUSED", "bold yellow"), " ", " ".join(said.split())),
            soft_wrap=True,
        )
        if state.get("malformed"):
            console.print(
                Text.assemble(
                    literal("  malformed pause item", "yellow"),
                    " (in force; `pause` rewrites it, `resume` deletes it): ",
                    " ".join(str(state["malformed"]).split()),
                ),
                soft_wrap=True,
            )
        say(console, "  sweeps, deadlines and the brake do not act; requests people send still do")
    else:
        say(console, literal("running", "bold green"), ": every policy path acts (not paused)")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("queue", "visible", "in flight", "delayed"):
        table.add_column(column, overflow="fold")
    names = {"requestQueue": "requests", "deadLetterQueue": "dead letters (DLQ)"}
    for key, depth in state["queues"].items():
        add_row(table, names.get(key, key), depth["visible"], depth["inFlight"], depth["delayed"])
    console.print(table)


def _caller_arn(aws: Aws) -> str:
    return str(aws.client("sts").get_caller_identity()["Arn"])


@app.command()
@cli_errors
def pause(
    reason: Annotated[
        str, typer.Option(help="Why, shown by `status` (at most 1024 characters).")
    ] = "",
    table_name: TableOption = None,
    stack_name: StackOption = DEFAULT_STACK,
    output: OutputOption = Output.TABLE,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
) -> None:
    """Stop every policy path (sweeps, deadlines, the brake) without a deploy; requests people
    send still act. `resume` undoes it."""
    from batch_terminator_cli import operating

    if len(reason) > 1024:
        raise typer.BadParameter("at most 1024 characters", param_hint="--reason")
    aws = aws_session(endpoint_url, region, profile)
    table = table_name or aws.stack_output(stack_name, "LedgerTableName")
    dynamodb = aws.client("dynamodb")
    before = operating.pause_state(dynamodb, table)
    item = operating.pause(dynamodb, table, _caller_arn(aws), reason, datetime.now(UTC))
    if before is not None:
        say(err, f"was already paused by {before.paused_by}: the pause now records this one")
    _print_pause(operating.pause_as_json(item), output)


@app.command()
@cli_errors
def resume(
    table_name: TableOption = None,
    stack_name: StackOption = DEFAULT_STACK,
    output: OutputOption = Output.TABLE,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
) -> None:
    """Let every policy path act again (deletes the pause)."""
    from batch_terminator_cli import operating

    aws = aws_session(endpoint_url, region, profile)
    table = table_name or aws.stack_output(stack_name, "LedgerTableName")
    was_paused = operating.resume(aws.client("dynamodb"), table)
    if not was_paused:
        say(err, "was not paused")
    _print_pause({"paused": False, "wasPaused": was_paused}, output)


def _print_pause(state: dict[str, Any], output: Output) -> None:
    if output is Output.JSON:
        _emit_json(state)
    elif output is Output.TEXT:
        _emit_text(
            _tsv(
                [
                    [
                        "PAUSED",
                        state["paused"],
                        state.get("pausedBy"),
                        state.get("pausedAt"),
                        state.get("reason"),
                    ]
                ]
            )
        )
    elif state["paused"]:
        say(
            out, literal("paused", "bold yellow"), f" by {state['pausedBy']} at {state['pausedAt']}"
        )
    else:
        say(out, literal("running", "bold green"), ": every policy path acts again")


if __name__ == "__main__":
    app()
