"""`batch-terminator`: the command line of the product."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="Terminate AWS Batch jobs by policy or on request: demo, plan, request, validate, audit.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.command()
def demo() -> None:
    """Run the whole pipeline on the embedded AWS emulator (no account needed)."""
    from batch_terminator_cli import demo as demo_module

    if not demo_module.run(console):
        raise typer.Exit(1)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="The policies file.")] = Path("policies.yaml"),
) -> None:
    """Check a policies file; errors name the line and the key."""
    from batch_terminator_cli.policies_file import PoliciesFileError, load_policies

    try:
        policies = load_policies(file)
    except PoliciesFileError as error:
        for problem in error.problems:
            console.print(f"[red]{file}:{problem.line or '?'}[/red] {problem.path or '(file)'}: {problem.message}", highlight=False)
        raise typer.Exit(1) from error
    scheduled = sum(1 for p in policies.policies if p.is_scheduled)
    console.print(
        f"{file}: valid, {len(policies.policies)} policies "
        f"({scheduled} scheduled, {len(policies.policies) - scheduled} alarm-triggered)"
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the policies file (committed as policies.schema.json)."""
    from batch_terminator_cli.schema import policies_schema_json

    typer.echo(policies_schema_json())


if __name__ == "__main__":
    app()
