"""The CDK app as app.py and the tests build it: settings, policies, asset, stack, cdk-nag.

Without the `fleetFile` context key: one stack, in whatever account and region the CLI's
credentials name. With it: one stage per member account and region (`Member-<account>-<region>`)
holding the member stack, and a `Central` stage with the fleet's central stack.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import App, Environment, Stage

from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.fleet_file import Fleet, Member, load_fleet
from batch_terminator_cli.policies_file import load_policies
from infra.asset import build_lambda_asset
from infra.central_stack import FleetCentralStack
from infra.nag import register_nag_checks
from infra.paths import DEFAULT_ASSET_DIR, PROJECT_ROOT, project_path
from infra.settings import FLEET_FILE, SettingsError, StackSettings
from infra.stack import BatchTerminatorStack

# One asset directory per distinct policies file of a fleet, below this one.
FLEET_ASSET_ROOT: Final = PROJECT_ROOT / "build" / "fleet-assets"
CENTRAL_STAGE: Final = "Central"


def member_stage_id(member: Member) -> str:
    """`Member-222222222222-us-east-1`: the stage of one member account and region."""
    return f"Member-{member.account}-{member.region}"


@dataclass(frozen=True)
class FleetApp:
    """What build_fleet added: each member's stack (by member), and the central stack (None
    when the fleet file names no central account)."""

    fleet: Fleet
    members: dict[Member, BatchTerminatorStack]
    central: FleetCentralStack | None

    @property
    def stacks(self) -> list[BatchTerminatorStack | FleetCentralStack]:
        central: list[BatchTerminatorStack | FleetCentralStack] = (
            [self.central] if self.central else []
        )
        return [*central, *self.members.values()]


def build(app: App) -> BatchTerminatorStack | FleetApp:
    """app.py's entry: the fleet when the `fleetFile` context key names one, else one stack.
    Raises SettingsError, PoliciesFileError or FleetFileError on bad input."""
    fleet_file = app.node.try_get_context(FLEET_FILE)
    if fleet_file is None or (isinstance(fleet_file, str) and not fleet_file.strip()):
        return build_app(app)
    if not isinstance(fleet_file, str):
        raise SettingsError(f"{FLEET_FILE}: expected a file name, got {fleet_file!r}")
    return build_fleet(app, project_path(fleet_file.strip()))


def build_app(app: App, *, asset_dir: Path = DEFAULT_ASSET_DIR) -> BatchTerminatorStack:
    """Add the stack to `app`. Raises SettingsError or PoliciesFileError on bad input."""
    settings = StackSettings.from_context(app.node)
    policies = load_policies(project_path(settings.policies_file))
    asset = build_lambda_asset(policies, asset_dir, settings.python_runtime)
    stack = BatchTerminatorStack(
        app, settings.stack_name, settings=settings, policies=policies, asset_dir=asset
    )
    register_nag_checks(app)
    return stack


def build_fleet(app: App, fleet_path: Path, *, asset_root: Path = FLEET_ASSET_ROOT) -> FleetApp:
    """Add the fleet of `fleet_path` to `app`: a `Central` stage (when the file names a central
    account) and one stage per member, each with the cdk.json settings, its own policies file
    (`policiesFile`, relative to the fleet file; else cdk.json's, relative to the project) and
    decisions forwarded to the central bus. Each distinct policies file gets its own asset
    directory below `asset_root`. Raises FleetFileError, PoliciesFileError or SettingsError."""
    fleet = load_fleet(fleet_path)
    settings = StackSettings.from_context(app.node)
    central_bus_arn = fleet.central_bus_arn() or settings.central_bus_arn
    loaded: dict[Path, tuple[PoliciesFile, Path]] = {}

    def policies_for(member: Member) -> tuple[PoliciesFile, Path]:
        path = (
            (fleet_path.parent / member.policies_file)
            if member.policies_file
            else project_path(settings.policies_file)
        ).resolve()
        if path not in loaded:
            policies = load_policies(path)
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
            loaded[path] = (
                policies,
                build_lambda_asset(policies, asset_root / digest, settings.python_runtime),
            )
        return loaded[path]

    central = None
    if fleet.central is not None:
        stage = Stage(
            app,
            CENTRAL_STAGE,
            env=Environment(account=fleet.central.account, region=fleet.central.region),
        )
        central = FleetCentralStack(stage, "Fleet", fleet=fleet)
        register_nag_checks(stage)

    members: dict[Member, BatchTerminatorStack] = {}
    for member in fleet.members:
        policies, asset = policies_for(member)
        stage = Stage(
            app,
            member_stage_id(member),
            env=Environment(account=member.account, region=member.region),
        )
        members[member] = BatchTerminatorStack(
            stage,
            settings.stack_name,
            settings=dataclasses.replace(settings, central_bus_arn=central_bus_arn),
            policies=policies,
            asset_dir=asset,
        )
        register_nag_checks(stage)
    return FleetApp(fleet=fleet, members=members, central=central)
