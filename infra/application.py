"""The CDK app as app.py and the tests build it: settings, policies, asset, stack, cdk-nag."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App

from batch_terminator_cli.policies_file import load_policies
from infra.asset import build_lambda_asset
from infra.nag import register_nag_checks
from infra.paths import DEFAULT_ASSET_DIR, project_path
from infra.settings import StackSettings
from infra.stack import BatchTerminatorStack


def build_app(app: App, *, asset_dir: Path = DEFAULT_ASSET_DIR) -> BatchTerminatorStack:
    """Add the stack to `app`. Raises SettingsError or PoliciesFileError on bad input."""
    settings = StackSettings.from_context(app.node)
    policies = load_policies(project_path(settings.policies_file))
    asset = build_lambda_asset(policies, asset_dir)
    stack = BatchTerminatorStack(
        app, settings.stack_name, settings=settings, policies=policies, asset_dir=asset
    )
    register_nag_checks(app)
    return stack
