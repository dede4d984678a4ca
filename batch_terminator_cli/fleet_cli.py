"""The fan-out: `plan`, `audit` and `status` across several profiles and regions at once.

`--profiles` and `--regions` (each comma separated, repeatable, or both) name every
profile x region to ask; `--fleet FILE` names the fleet file's members (each member's profile and
region). Every member is asked in parallel, in a thread pool, with a progress indicator on stderr;
the answers make one table whose first columns are `account` and `region` (json and text output:
the same rows, with those keys first). The account is what STS GetCallerIdentity says for the
profile. A member that cannot be asked (an unknown profile, no credentials, no region, an
endpoint down, the stack not deployed there, a profile that reaches another account than the
fleet file says, a region the CLI refuses) gets a row with its error; the others still answer,
and the command exits 1 after printing everything.

A member is an (account, region) pair, as STS says: two profiles that reach one account (a `dev`
and a `dev-admin` profile) in one region are one member, asked once, through the first profile
named; a note on stderr names the profile that was not asked and the one that was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import click
import typer
from rich.console import Console
from rich.text import Text
from typer.exceptions import TyperException

from batch_terminator_cli.conventions import (
    _REGION,
    aws_session,
    error_line,
    internal_error_line,
)
from batch_terminator_cli.output import labelled, say

if TYPE_CHECKING:
    from batch_terminator_cli.aws import Aws

# At most this many members are asked at once (each a few HTTPS calls, mostly waiting).
MAX_PARALLEL: Final = 16
UNKNOWN_ACCOUNT: Final = "?"

ProfilesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--profiles",
        help="Ask every one of these AWS profiles (comma separated and/or repeated), in each "
        "--regions region.",
        metavar="NAMES",
    ),
]
RegionsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--regions",
        help="Ask in every one of these regions (comma separated and/or repeated).",
        metavar="REGIONS",
    ),
]
FleetOption = Annotated[
    Path | None,
    typer.Option(
        "--fleet",
        help="Ask every member (profile and region) of this fleet file.",
        metavar="FILE",
    ),
]


class MemberFailed(Exception):
    """Raised by a member's work: str() is the one line its row shows."""


@dataclass(frozen=True)
class Target:
    """One member to ask: an AWS profile (None: the default credentials) and a region (None: the
    profile's). From a fleet file, also the account it must be (`account`) and its own policies
    file (`policies_file`, None: the command's --policies)."""

    profile: str | None
    region: str | None
    account: str | None = None
    policies_file: Path | None = None


@dataclass(frozen=True)
class Answer:
    """What one member said: `rows` (dicts, without account and region), or `error` (one line).
    `account` is STS's answer (UNKNOWN_ACCOUNT when it could not be asked); `region` the region
    asked."""

    target: Target
    account: str
    region: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def keyed_rows(self) -> list[dict[str, Any]]:
        """The rows with `account` and `region` first; an unreachable member's one row has
        `profile` and `error`."""
        if self.error is not None:
            return [
                {
                    "account": self.account,
                    "region": self.region,
                    "profile": self.target.profile,
                    "error": self.error,
                }
            ]
        return [{"account": self.account, "region": self.region, **row} for row in self.rows]


def split_values(values: Iterable[str] | None) -> list[str]:
    """`a,b` and repeated options alike, in order, each once, blanks dropped."""
    found: list[str] = []
    for value in values or []:
        for raw in value.split(","):
            part = raw.strip()
            if part and part not in found:
                found.append(part)
    return found


def targets(
    profiles: list[str] | None,
    regions: list[str] | None,
    fleet: Path | None,
    *,
    profile: str | None,
    region: str | None,
) -> list[Target] | None:
    """The members the options name, in order (profiles outer, regions inner); None when none of
    --profiles, --regions, --fleet is given (the command asks one member, as before).

    Raises typer.BadParameter (exit 2) for a malformed region, options that contradict, and a
    --profiles or --regions that was given but names nothing (`--profiles "$EMPTY"` must not
    quietly ask the default credentials), and typer.Exit(1) after one line for a fleet file that
    cannot be used."""
    names, places = split_values(profiles), split_values(regions)
    for given, found, hint, what in (
        (profiles, names, "--profiles", "profile"),
        (regions, places, "--regions", "region"),
    ):
        if given and not found:
            raise typer.BadParameter(
                f"names no {what} (only commas and blanks): give at least one, or leave {hint} out",
                param_hint=hint,
            )
    if fleet is None and not names and not places:
        return None
    for place in places:
        if not _REGION.fullmatch(place):
            raise typer.BadParameter(
                f"{place[:40]!r} is not a region name (e.g. us-east-1)", param_hint="--regions"
            )
    if fleet is not None:
        if names or places or profile or region:
            raise typer.BadParameter(
                "the fleet file names the profiles and regions: give --fleet alone, or "
                "--profiles/--regions without it",
                param_hint="--fleet",
            )
        return _fleet_targets(fleet)
    if names and profile:
        raise typer.BadParameter("give --profile or --profiles, not both", param_hint="--profiles")
    if places and region:
        raise typer.BadParameter("give --region or --regions, not both", param_hint="--regions")
    asked_profiles: list[str | None] = list(names) or [profile]
    asked_regions: list[str | None] = list(places) or [region]
    return [Target(p, r) for p in asked_profiles for r in asked_regions]


def load_fleet_or_exit(path: Path) -> Any:
    """The fleet file (`fleet_file.load_fleet`); one line and exit 1 when it cannot be used."""
    from batch_terminator_cli.conventions import fail
    from batch_terminator_cli.fleet_file import FleetFileError, load_fleet

    try:
        return load_fleet(path)
    except FleetFileError as error:
        fail(error)


def _fleet_targets(path: Path) -> list[Target]:
    fleet = load_fleet_or_exit(path)
    base = path.parent
    found = []
    for member in fleet.members:
        policies = Path(member.policies_file) if member.policies_file else None
        if policies is not None and not policies.is_absolute():
            policies = base / policies
        found.append(Target(member.profile, member.region, member.account, policies))
    return found


Work = Callable[["Aws", Target], list[dict[str, Any]]]


@dataclass(frozen=True)
class _Reached:
    """Who a target reaches (STS's account, the session's region), or the answer that ends it
    there (an error row)."""

    target: Target
    account: str
    region: str
    aws: Aws | None = None
    ended: Answer | None = None


def ask(
    asked: Sequence[Target],
    endpoint_url: str | None,
    work: Work,
    console: Console,
    what: str = "asking",
) -> list[Answer]:
    """Run `work(aws, target)` once for every member the targets reach, in parallel (at most
    MAX_PARALLEL at once), with a progress bar on `console`; one answer per member, in the
    targets' order.

    A member is the (account, region) STS and the session report: a target reaching a member an
    earlier target reaches is not asked, and a note on `console` names both profiles. Never
    raises for a member: whatever goes wrong there becomes its `error` (one line): the errors
    of AWS, the network and files (`conventions.error_line`), a usage error (typer.BadParameter
    or another typer/click usage error, e.g. a region the CLI refuses), and MemberFailed, which `work`
    raises to say why."""

    from concurrent.futures import Future, ThreadPoolExecutor

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    notes: list[Text] = []
    with (
        Progress(
            TextColumn(what),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("members"),
            console=console,
            transient=True,
        ) as progress,
        ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(asked)))) as pool,
    ):
        bar = progress.add_task(what, total=len(asked))
        reaching = [pool.submit(_reach, endpoint_url, target) for target in asked]
        pending: list[Answer | Future[Answer]] = []
        first: dict[tuple[str, str], Target] = {}
        try:
            # In the targets' order, so that the first profile named for a member is the one
            # asked, whichever STS answers first; each member's work starts as soon as it is
            # known to be new.
            for future in reaching:
                reached = future.result()
                if reached.ended is not None:
                    pending.append(reached.ended)
                    progress.advance(bar)
                    continue
                member = (reached.account, reached.region)
                if member in first:
                    notes.append(_same_member_note(reached, first[member]))
                    progress.advance(bar)
                    continue
                first[member] = reached.target
                pending.append(pool.submit(_answer, work, reached))
            answers = []
            for item in pending:
                if isinstance(item, Answer):
                    answers.append(item)
                    continue
                answers.append(item.result())
                progress.advance(bar)
        except KeyboardInterrupt:
            # Ctrl-C: members not yet asked are not asked; those in flight finish unread.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    for note in notes:
        say(console, note)
    return answers


def _failed(target: Target, account: str, region: str, error: Exception) -> Answer:
    if isinstance(error, MemberFailed):
        return Answer(target, account, region, error=str(error))
    if isinstance(error, TyperException | click.ClickException):
        return Answer(target, account, region, error=_usage_line(error))
    line = error_line(error)
    if line is None and os.environ.get("BATCH_TERMINATOR_DEBUG"):
        raise error
    return Answer(target, account, region, error=line or internal_error_line(error))


def _reach(endpoint_url: str | None, target: Target) -> _Reached:
    region = target.region or "?"
    account = UNKNOWN_ACCOUNT
    try:
        aws = aws_session(endpoint_url, target.region, target.profile)
        region = str(aws.session.region_name or region)
        account = str(aws.client("sts").get_caller_identity()["Account"])
    except typer.Exit:
        raise
    except Exception as error:  # every member's failure is its row, never the command's
        return _Reached(target, account, region, ended=_failed(target, account, region, error))
    if target.account and account != target.account:
        error_text = (
            f"profile {target.profile or '(default)'} reaches account {account}, "
            f"not {target.account} as the fleet file says"
        )
        return _Reached(
            target, account, region, ended=Answer(target, account, region, error=error_text)
        )
    return _Reached(target, account, region, aws=aws)


def _answer(work: Work, reached: _Reached) -> Answer:
    target, account, region = reached.target, reached.account, reached.region
    assert reached.aws is not None
    try:
        return Answer(target, account, region, rows=work(reached.aws, target))
    except typer.Exit:
        raise
    except Exception as error:  # every member's failure is its row, never the command's
        return _failed(target, account, region, error)


def _usage_line(error: TyperException | click.ClickException) -> str:
    """A usage error raised for one member (e.g. `--region` refusing the fleet file's region),
    as one line: `Invalid value for --region: 'eu-west-1\\n' is not a region name`."""
    text = " ".join(error.format_message().split())
    return text or type(error).__name__


def _same_member_note(reached: _Reached, asked: Target) -> Text:
    return labelled(
        "note",
        f"profile {reached.target.profile or '(default)'} reaches account {reached.account} in "
        f"{reached.region}, already asked through profile {asked.profile or '(default)'}: "
        "asked once",
        "yellow",
    )


def rows_of(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """Every member's rows, in the members' order, `account` and `region` first."""
    return [row for answer in answers for row in answer.keyed_rows()]


def unreachable(answers: Sequence[Answer]) -> list[Answer]:
    return [answer for answer in answers if answer.error is not None]


def summary(answers: Sequence[Answer]) -> str:
    """`3 members answered; 1 could not be asked` (stderr)."""
    failed = len(unreachable(answers))
    text = f"{len(answers) - failed} of {len(answers)} members answered"
    if failed:
        text += f"; {failed} could not be asked (see the error rows)"
    return text
