"""FleetCentralStack: the audit account's side of the fleet, the bus members forward their
decisions to, the log group that stores them, and the fleet dashboard and saved queries."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from batch_terminator_cli.fleet_file import Fleet
from infra.constructs.fleet_bus import FleetBus
from infra.constructs.fleet_dashboard import FleetDashboard
from infra.constructs.fleet_log import FleetLog

CENTRAL_STACK_NAME = "BatchTerminatorFleet"


class FleetCentralStack(Stack):
    """One per fleet, in `fleet.central`'s account and region. Raises ValueError when the fleet
    has no central account."""

    def __init__(self, scope: Construct, construct_id: str, *, fleet: Fleet, **kwargs: Any) -> None:
        if fleet.central is None:
            raise ValueError("the fleet file has no `central` account: there is no central stack")
        super().__init__(
            scope,
            construct_id,
            stack_name=CENTRAL_STACK_NAME,
            description="batch-terminator fleet: every member's decisions, in one audit",
            **kwargs,
        )
        self.bus = FleetBus(
            self, "Bus", accounts=fleet.accounts, organization_id=fleet.organization_id
        )
        self.log = FleetLog(
            self, "Log", bus=self.bus.bus, retention_days=fleet.central.log_retention_days
        )
        self.dashboard = FleetDashboard(self, "Dashboard", log_group=self.log.log_group)
        outputs = {
            "FleetBusArn": self.bus.bus.event_bus_arn,
            "FleetLogGroupName": self.log.log_group.log_group_name,
            "FleetDashboardName": self.dashboard.dashboard.dashboard_name,
        }
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)
