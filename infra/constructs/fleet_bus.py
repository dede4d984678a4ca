"""The fleet bus: the central bus member accounts forward their decisions to, and its policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from batch_terminator.contract import FLEET_BUS_NAME

PUT_EVENTS_SID: Final = "MembersPutDecisions"


def admission_statement(
    bus_arn: str, accounts: Sequence[str], organization_id: str | None
) -> iam.PolicyStatement:
    """events:PutEvents on the bus for exactly `accounts` (12-digit ids), or, with an
    organization id, for any principal of that organization (aws:PrincipalOrgID, "Permissions
    for Amazon EventBridge event buses": the organization condition) and nobody else.
    Raises ValueError when there is neither an account nor an organization."""
    if organization_id:
        return iam.PolicyStatement(
            sid=PUT_EVENTS_SID,
            actions=["events:PutEvents"],
            resources=[bus_arn],
            principals=[iam.StarPrincipal()],
            conditions={"StringEquals": {"aws:PrincipalOrgID": organization_id}},
        )
    if not accounts:
        raise ValueError("the fleet bus admits no account: give members or an organization id")
    return iam.PolicyStatement(
        sid=PUT_EVENTS_SID,
        actions=["events:PutEvents"],
        resources=[bus_arn],
        principals=[iam.AccountPrincipal(account) for account in dict.fromkeys(accounts)],
    )


class FleetBus(Construct):
    """The bus FLEET_BUS_NAME with one resource policy statement: the member accounts (or the
    organization) may put events on it. Cross-account PutEvents needs both that statement and
    the sender's own permission (each member's forwarding role)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        accounts: Sequence[str],
        organization_id: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=FLEET_BUS_NAME)
        self.bus.add_to_resource_policy(
            admission_statement(self.bus.event_bus_arn, accounts, organization_id)
        )
