"""The fleet dashboard and saved queries: Logs Insights over the fleet log group, every member's
decisions in one place (the queries live in batch_terminator_cli.fleet_file, shared with the
CLI's `audit --central`)."""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from constructs import Construct

from batch_terminator.contract import FLEET_BUS_NAME, FLEET_LOG_GROUP
from batch_terminator_cli.fleet_file import (
    BRAKES_FIRED,
    CAPS_HIT,
    DECISIONS_BY_OUTCOME,
    FAILURES,
    FLEET_QUERIES,
    TERMINATED_EVERYWHERE,
    FleetQuery,
)

DASHBOARD_NAME: Final = "batch-terminator-fleet"
FULL: Final = 24
HALF: Final = 12
HEIGHT: Final = 8

_INTRO: Final = f"""\
## batch-terminator fleet
Every member account's and region's decisions, forwarded to the `{FLEET_BUS_NAME}` bus and stored
in `{FLEET_LOG_GROUP}`. Each row names its `account` and `region`. The same queries are saved
under CloudWatch Logs Insights → Saved queries → `batch-terminator/fleet/`."""


def _widget(query: FleetQuery, title: str, width: int) -> cloudwatch.LogQueryWidget:
    return cloudwatch.LogQueryWidget(
        title=title,
        log_group_names=[FLEET_LOG_GROUP],
        query_string=query.query,
        view=cloudwatch.LogQueryVisualizationType.TABLE,
        width=width,
        height=HEIGHT,
    )


class FleetDashboard(Construct):
    """The dashboard DASHBOARD_NAME (terminations by account, region, policy and outcome;
    failures; caps hit; brakes fired; the latest terminations) and one saved Logs Insights query
    per FLEET_QUERIES entry. `log_group` is the fleet log group (the queries depend on it)."""

    def __init__(self, scope: Construct, construct_id: str, *, log_group: logs.ILogGroup) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=DASHBOARD_NAME,
            widgets=[
                [cloudwatch.TextWidget(markdown=_INTRO, width=FULL, height=3)],
                [
                    _widget(
                        DECISIONS_BY_OUTCOME,
                        "Decisions by account, region, policy and outcome",
                        FULL,
                    )
                ],
                [
                    _widget(FAILURES, "Failed terminations", HALF),
                    _widget(CAPS_HIT, "Policy caps reached", HALF),
                ],
                [
                    _widget(BRAKES_FIRED, "Brakes fired (alarm-triggered runs)", HALF),
                    _widget(TERMINATED_EVERYWHERE, "Terminated, everywhere, and why", HALF),
                ],
            ],
        )
        self.dashboard.node.add_dependency(log_group)
        self.queries = [
            logs.CfnQueryDefinition(
                self,
                f"Query{index}",
                name=query.name,
                query_string=query.query,
                log_group_names=[log_group.log_group_name],
            )
            for index, query in enumerate(FLEET_QUERIES)
        ]
