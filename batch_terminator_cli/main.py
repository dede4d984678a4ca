"""`batch-terminator`: the command line of the product."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from batch_terminator_cli.output import labelled, literal, say

app = typer.Typer(
    help="Terminate AWS Batch jobs by policy or on request.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

EndpointOption = Annotated[
    str | None, typer.Option(help="AWS endpoint, e.g. the one `batch-terminator local` serves.")
]
RegionOption = Annotated[str | None, typer.Option(help="AWS region.")]

if TYPE_CHECKING:
    from batch_terminator.models.policies import PoliciesFile
    from batch_terminator_cli.aws import Aws


@app.command()
def demo() -> None:
    """Run the whole pipeline on the embedded AWS emulator (no account needed)."""
    from batch_terminator_cli import demo as demo_module

    if not demo_module.run(console):
        raise typer.Exit(1)


@app.command()
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
        ),
    ] = None,
) -> None:
    """Serve the emulator on 127.0.0.1, with demo jobs, the terminator and the sweeper running."""
    import tempfile
    import time

    from batch_terminator_cli import demo as demo_module
    from batch_terminator_cli.local_server import LocalServer

    policies = (
        _load_policies_or_exit(policies_file) if policies_file else demo_module.demo_policies()
    )
    from batch_terminator_cli.local_server import PortInUse

    server = LocalServer(policies, port=port, sweep_seconds=sweep_interval)
    with tempfile.TemporaryDirectory(prefix="batch-terminator-local-") as scratch:
        try:
            deployment = server.start(scratch, on_audit=_print_audit, on_sweep=_print_sweep)
        except PortInUse as error:
            say(console, labelled("cannot serve", error))
            raise typer.Exit(1) from error
        assert server.world is not None
        jobs = {**demo_module.seed_jobs(server.world), **demo_module.seed_policy_jobs(server.world)}
        say(
            console,
            "Emulator listening on ",
            literal(server.endpoint_url, "bold"),
            " (region us-east-1, any credentials)",
        )
        say(console, f"Request queue: {deployment.request_queue_url}")
        say(console, f"Audit log group: {deployment.terminator_log_group}")
        for name, job_id in jobs.items():
            say(console, f"  job {name:<20} {job_id}")
        example = next(iter(jobs.values()))
        console.print("\nTry (any credentials work):")
        console.print(
            "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1"
        )
        console.print(
            literal(
                f"  batch-terminator request {example} --reason 'Terminating job.' "
                f"--endpoint-url {server.endpoint_url} --queue-url {deployment.request_queue_url}",
            ),
            soft_wrap=True,
        )
        console.print(
            literal(
                f"  aws --endpoint-url {server.endpoint_url} batch describe-jobs --jobs {example}",
            ),
            soft_wrap=True,
        )
        console.print(
            literal(
                f"  batch-terminator plan --policies {demo_module.DEMO_POLICIES} "
                f"--endpoint-url {server.endpoint_url}",
            ),
            soft_wrap=True,
        )
        console.print(
            literal(
                f"  batch-terminator audit --log-group {deployment.terminator_log_group} "
                f"--endpoint-url {server.endpoint_url}",
            ),
            soft_wrap=True,
        )
        console.print("Ctrl-C stops.")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


def _print_sweep(summary: dict[str, object]) -> None:
    import json

    say(console, literal("sweep", "bold"), " ", json.dumps(summary.get("policies")))


def _print_audit(line: dict[str, object]) -> None:
    import json

    console.print_json(json.dumps(line), indent=None)


@app.command()
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
    stack_name: Annotated[
        str, typer.Option(help="Stack whose outputs name the queue.")
    ] = "BatchTerminator",
    queue_url: Annotated[
        str | None, typer.Option(help="Request queue URL (instead of reading the stack).")
    ] = None,
    event_bus: Annotated[str, typer.Option(help="Event bus for --via events.")] = "default",
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
) -> None:
    """Send a termination request through the deployed stack and print what was sent."""
    import json

    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from pydantic import ValidationError

    from batch_terminator.models.base import describe_validation_error
    from batch_terminator_cli import requesting

    if via not in ("sqs", "events"):
        raise typer.BadParameter("use sqs or events", param_hint="--via")
    session = _aws(endpoint_url, region)
    try:
        bodies = requesting.build_requests(
            job_ids,
            reason,
            dry_run=dry_run,
            if_status=if_status,
            requested_by=requested_by or requesting.caller(session),
        )
    except ValidationError as error:
        for line in describe_validation_error(error):
            say(console, labelled("invalid request", line))
        raise typer.Exit(2) from error
    try:
        if via == "sqs" and not queue_url:
            queue_url = requesting.stack_output(session, stack_name, "RequestQueueUrl")
        sent = requesting.send(session, bodies, via, queue_url, event_bus)  # type: ignore[arg-type]
    except NoCredentialsError as error:
        console.print(
            "[red]no AWS credentials[/red]: configure a profile or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
        raise typer.Exit(2) from error
    except (BotoCoreError, ClientError, requesting.StackOutputMissing) as error:
        say(console, labelled("could not send", error))
        raise typer.Exit(1) from error
    for item in sent:
        say(console, f"sent via {item.via} to {item.target} (id {item.id}):")
        console.print_json(json.dumps(item.body))


def _aws(endpoint_url: str | None, region: str | None) -> Aws:
    from urllib.parse import urlparse

    from batch_terminator_cli.aws import Aws

    if endpoint_url is not None:
        parsed = urlparse(endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise typer.BadParameter(
                f"{endpoint_url!r} is not a URL: give its scheme, e.g. http://127.0.0.1:5050",
                param_hint="--endpoint-url",
            )
    return Aws.connect(endpoint_url, region)


def _load_policies_or_exit(path: Path) -> PoliciesFile:
    from batch_terminator_cli.policies_file import PoliciesFileError, load_policies

    try:
        return load_policies(path)
    except PoliciesFileError as error:
        for problem in error.problems:
            say(
                console,
                labelled(
                    f"{path}:{problem.line or '?'}",
                    f"{problem.path or '(file)'}: {problem.message}",
                ),
            )
        raise typer.Exit(1) from error


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="The policies file.")] = Path("policies.yaml"),
) -> None:
    """Check a policies file; errors name the line and the key."""
    policies = _load_policies_or_exit(file)
    scheduled = sum(1 for p in policies.policies if p.is_scheduled)
    say(
        console,
        f"{file}: valid, {len(policies.policies)} policies "
        f"({scheduled} scheduled, {len(policies.policies) - scheduled} alarm-triggered)",
    )


@app.command()
def plan(
    policies_file: Annotated[Path, typer.Option("--policies", help="The policies file.")] = Path(
        "policies.yaml"
    ),
    alarm: Annotated[
        str | None,
        typer.Option(help="Preview the policies this alarm triggers instead of a sweep."),
    ] = None,
    output: Annotated[str, typer.Option(help="table or json.")] = "table",
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
) -> None:
    """Read-only: what the policies would terminate now, and why (the next sweep's decisions)."""
    import json
    from datetime import UTC, datetime

    from botocore.exceptions import BotoCoreError, ClientError

    from batch_terminator.batch_api import BatchCallFailed
    from batch_terminator_cli import planning

    if output not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--output")
    policies = _load_policies_or_exit(policies_file)
    try:
        run = planning.make_plan(
            _aws(endpoint_url, region).client("batch"), policies, datetime.now(UTC), alarm
        )
    except (BatchCallFailed, BotoCoreError, ClientError) as error:
        say(console, labelled("could not read Batch", error))
        raise typer.Exit(1) from error
    if output == "json":
        typer.echo(json.dumps(planning.plan_as_json(run), indent=2))
    else:
        planning.render_plan(console, run)


@app.command()
def audit(
    job_id: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="terminated, skipped, failed or rejected.")
    ] = None,
    policy: Annotated[str | None, typer.Option(help="Only decisions of this policy.")] = None,
    source: Annotated[
        str | None, typer.Option(help="request, sweep, deadline, alarm, blocked.")
    ] = None,
    requested_by: Annotated[str | None, typer.Option(help="Only requests by this caller.")] = None,
    since: Annotated[str, typer.Option(help="How far back: 90m, 6h, 2d.")] = "24h",
    limit: Annotated[int, typer.Option(help="At most this many lines, newest first.")] = 50,
    output: Annotated[str, typer.Option(help="table or json.")] = "table",
    log_group: Annotated[
        str | None, typer.Option(help="The terminator's log group (instead of reading the stack).")
    ] = None,
    stack_name: Annotated[str, typer.Option(help="Stack whose outputs name the log group.")] = (
        "BatchTerminator"
    ),
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
) -> None:
    """Query the audit log: one line per job decision, from the terminator's log group."""
    import json
    from datetime import UTC, datetime

    from botocore.exceptions import BotoCoreError, ClientError

    from batch_terminator.logic.durations import parse_duration
    from batch_terminator_cli import auditing, requesting

    if output not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--output")
    try:
        window = parse_duration(since)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from error
    query = auditing.AuditQuery(window, job_id, outcome, policy, source, requested_by, limit)
    aws = _aws(endpoint_url, region)
    try:
        group = log_group or requesting.stack_output(aws, stack_name, "TerminatorLogGroupName")
        lines = auditing.read_audit(aws.client("logs"), group, query, datetime.now(UTC))
    except (BotoCoreError, ClientError, requesting.StackOutputMissing) as error:
        say(console, labelled("could not read the audit log", error))
        raise typer.Exit(1) from error
    if output == "json":
        typer.echo(json.dumps([auditing.audit_fields(line) for line in lines], indent=2))
    else:
        auditing.render_audit(console, lines)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the policies file (committed as policies.schema.json)."""
    from batch_terminator_cli.schema import policies_schema_json

    typer.echo(policies_schema_json(), nl=False)


if __name__ == "__main__":
    app()
