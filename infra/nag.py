"""cdk-nag: the rule packs every synthesis runs, and how this code acknowledges a finding."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Stage, Token, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


def register_nag_checks(app: Stage) -> None:
    """Any finding not acknowledged makes synthesis fail (with a validation report)."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one finding on the narrowest construct that raises it.

    `rule_id` is the pack's id, with the finding in brackets where a rule reports several
    (`AwsSolutions-IAM5[Resource::*]`). The acknowledgement covers the construct and its children.
    """
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def region_and_account(scope: IConstruct) -> tuple[str, str]:
    """The stack's region and account as cdk-nag writes them in a finding's resource string:
    `<AWS::Region>` and `<AWS::AccountId>` for a stack without an environment, the literal
    values for a stack with one (a fleet member's)."""
    stack = Stack.of(scope)
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return region, account
