"""The fleet: one stage per member account and region, each publishing its decisions on its own
default bus and forwarding them to the central bus; the central stack's bus admits exactly the
fleet's accounts (or its organization) and stores every decision in the fleet log group."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, Environment, Stage, Validations
from aws_cdk.assertions import Match, Template
from cfnlint.api import lint_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_terminator.contract import (
    FLEET_BUS_NAME,
    FLEET_LOG_GROUP,
    PUBLISH_DECISIONS_ENV,
    decision_event_pattern,
)
from batch_terminator_cli.fleet_file import FLEET_QUERIES, Fleet, load_fleet, parse_fleet
from infra.application import CENTRAL_STAGE, build_fleet, member_stage_id
from infra.central_stack import FleetCentralStack
from infra.paths import PROJECT_ROOT
from tests.infra.support import SynthesizedFleet, statements_of, synthesize, synthesize_fleet
from tests.infra.test_cdk_nag import findings

EXAMPLE = load_fleet(PROJECT_ROOT / "fleet.example.yaml")
CENTRAL_BUS = "arn:aws:events:us-east-1:111111111111:event-bus/batch-terminator-fleet"


def partitioned(text: str) -> dict[str, Any]:
    """`arn:<partition>...` as CDK writes an ARN of a stack with an environment."""
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, text]]}


def member_paths(fleet: SynthesizedFleet) -> list[str]:
    return [stack.node.path for stack in fleet.fleet_app.members.values()]


def roles(template: Template) -> dict[str, Any]:
    return dict(template.find_resources("AWS::IAM::Role"))


# --- stages --------------------------------------------------------------------------------------


def test_one_stage_per_member_and_a_central_one(fleet: SynthesizedFleet) -> None:
    stages = {
        (stack.node.scope.node.id if stack.node.scope else "", stack.account, stack.region)
        for stack in fleet.fleet_app.stacks
    }
    assert stages == {
        (CENTRAL_STAGE, "111111111111", "us-east-1"),
        *((member_stage_id(member), member.account, member.region) for member in EXAMPLE.members),
    }
    assert len(EXAMPLE.members) == 6
    assert member_stage_id(EXAMPLE.members[0]) == "Member-222222222222-us-east-1"


# --- each member ---------------------------------------------------------------------------------


def test_every_member_publishes_on_its_own_default_bus_only(fleet: SynthesizedFleet) -> None:
    for member, stack in fleet.fleet_app.members.items():
        template = fleet.templates[stack.node.path]
        own_bus = partitioned(f":events:{member.region}:{member.account}:event-bus/default")
        functions = template.find_resources("AWS::Lambda::Function")
        assert len(functions) == 4
        publishing = []
        for role_id, role in roles(template).items():
            for statement in statements_of(role):
                actions = statement["Action"]
                if "events:PutEvents" in (actions if isinstance(actions, list) else [actions]):
                    publishing.append((role_id, statement))
        function_roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()}
        forwarding = {r for r, _ in publishing if "DecisionForwarding" in r}
        assert {r for r, _ in publishing} == function_roles | forwarding
        for role_id, statement in publishing:
            if role_id in forwarding:
                continue
            assert statement == {
                "Sid": "PublishDecisions",
                "Action": "events:PutEvents",
                "Effect": "Allow",
                "Resource": own_bus,
                "Condition": {"StringEquals": {"events:source": "batch-terminator"}},
            }, (member, role_id)
        for function in functions.values():
            variables = function["Properties"]["Environment"]["Variables"]
            assert variables[PUBLISH_DECISIONS_ENV] == "true"


def test_every_member_forwards_decisions_to_exactly_the_central_bus(
    fleet: SynthesizedFleet,
) -> None:
    for path in member_paths(fleet):
        template = fleet.templates[path]
        rules = template.find_resources(
            "AWS::Events::Rule",
            {"Properties": {"EventPattern": decision_event_pattern()}},
        )
        assert len(rules) == 1, path
        [rule] = rules.values()
        assert "EventBusName" not in rule["Properties"]  # the default bus
        [target] = rule["Properties"]["Targets"]
        assert target["Arn"] == CENTRAL_BUS
        [role_id] = [r for r in roles(template) if "DecisionForwardingRole" in r]
        assert target["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
        role = roles(template)[role_id]
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
            }
        ]
        assert statements_of(role) == [
            {
                "Sid": "ForwardDecisions",
                "Action": "events:PutEvents",
                "Effect": "Allow",
                "Resource": CENTRAL_BUS,
            }
        ]
        assert "ManagedPolicyArns" not in role["Properties"]
        # What cannot be forwarded is kept, encrypted, and alarmed.
        [queue_id] = [
            q for q in template.find_resources("AWS::SQS::Queue") if "DecisionForwarding" in q
        ]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        queue = template.find_resources("AWS::SQS::Queue")[queue_id]
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmDescription": Match.string_like_regexp("could not forward"),
                "Dimensions": [
                    {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
                ],
            },
        )


def test_a_single_stack_opts_out_of_publishing_and_forwards_to_a_named_bus(
    tmp_path: Path,
) -> None:
    """publishDecisions false: no function may publish and each says so. centralBusArn without
    a fleet file: the stack forwards to that bus (cdk-nag clean, since synthesize runs it)."""
    other_bus = "arn:aws:events:eu-west-1:555555555555:event-bus/audit"
    synthesized = synthesize(tmp_path, {"publishDecisions": "false", "centralBusArn": other_bus})
    template = synthesized.template
    for role in roles(template).values():
        for statement in statements_of(role):
            assert statement.get("Sid") != "PublishDecisions"
    functions = template.find_resources("AWS::Lambda::Function").values()
    published = [
        f["Properties"]["Environment"]["Variables"][PUBLISH_DECISIONS_ENV] for f in functions
    ]
    assert published == ["false"] * 4
    rules = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"EventPattern": decision_event_pattern()}}
    )
    [rule] = rules.values()
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [other_bus]


def test_members_with_their_own_policies_file_get_their_own_asset(tmp_path: Path) -> None:
    own = tmp_path / "team-b.yaml"
    own.write_text(
        "version: 1\npolicies:\n  - name: stuck\n    when: {status: RUNNABLE, olderThan: 3h}\n",
        encoding="utf-8",
    )
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        "version: 1\nmembers:\n"
        '  - {account: "222222222222", regions: [us-east-1, eu-west-1]}\n'
        '  - {account: "333333333333", regions: [us-east-1], policiesFile: team-b.yaml}\n',
        encoding="utf-8",
    )
    app = App(outdir=str(tmp_path / "cdk.out"))
    built = build_fleet(app, fleet_file, asset_root=tmp_path / "assets")
    assert built.central is None
    assets = sorted(p.name for p in (tmp_path / "assets").iterdir() if not p.name.startswith("."))
    assert len(assets) == 2
    policies = {
        json.loads((tmp_path / "assets" / name / "batch_terminator" / "policies.json").read_text())[
            "policies"
        ][0]["name"]
        for name in assets
    }
    assert "stuck" in policies
    assert len(policies) == 2
    # No central account: the members forward nowhere.
    for stack in built.members.values():
        assert stack.forwarding is None


# --- the central stack ---------------------------------------------------------------------------


def bus_statement(template: Template) -> dict[str, Any]:
    [policy] = template.find_resources("AWS::Events::EventBusPolicy").values()
    statement: dict[str, Any] = policy["Properties"]["Statement"]
    return statement


def admitted_accounts(statement: dict[str, Any]) -> set[str]:
    principals = statement["Principal"]["AWS"]
    principals = principals if isinstance(principals, list) else [principals]
    found = set()
    for principal in principals:
        text = json.dumps(principal)
        match = re.search(r":iam::(\d{12}):root", text)
        assert match, principal
        found.add(match.group(1))
    return found


def central_template(fleet: Fleet) -> Template:
    app = App()
    assert fleet.central is not None
    stage = Stage(
        app, "Central", env=Environment(account=fleet.central.account, region=fleet.central.region)
    )
    return Template.from_stack(FleetCentralStack(stage, "Fleet", fleet=fleet))


def fleet_of(accounts: list[str], organization: str | None = None) -> Fleet:
    members = ", ".join(f'{{account: "{a}", regions: [us-east-1]}}' for a in accounts)
    org = f"organizationId: {organization}\n" if organization else ""
    return parse_fleet(
        f'version: 1\n{org}central: {{account: "111111111111", region: us-east-1}}\n'
        f"members: [{members}]\n"
    )


def test_the_central_bus_admits_exactly_the_example_accounts(fleet: SynthesizedFleet) -> None:
    template = fleet.templates[fleet.central.node.path]
    template.has_resource_properties("AWS::Events::EventBus", {"Name": FLEET_BUS_NAME})
    [bus_id] = template.find_resources("AWS::Events::EventBus")
    statement = bus_statement(template)
    assert statement["Action"] == "events:PutEvents"
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert "Condition" not in statement
    assert admitted_accounts(statement) == set(EXAMPLE.accounts)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.from_regex(r"\A[0-9]{12}\Z"), min_size=1, max_size=5, unique=True))
def test_the_central_bus_admits_exactly_the_fleet_accounts(accounts: list[str]) -> None:
    template = central_template(fleet_of(accounts))
    assert len(template.find_resources("AWS::Events::EventBusPolicy")) == 1
    statement = bus_statement(template)
    assert admitted_accounts(statement) == set(accounts)
    assert "Condition" not in statement


def test_with_an_organization_the_bus_admits_that_organization_only() -> None:
    template = central_template(fleet_of(["222222222222"], "o-a1b2c3d4e5"))
    statement = bus_statement(template)
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    assert statement["Action"] == "events:PutEvents"


def test_decisions_are_stored_in_the_fleet_log_group(fleet: SynthesizedFleet) -> None:
    template = fleet.templates[fleet.central.node.path]
    assert EXAMPLE.central is not None
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": FLEET_LOG_GROUP, "RetentionInDays": EXAMPLE.central.log_retention_days},
    )
    [group_id] = template.find_resources("AWS::Logs::LogGroup")
    [bus_id] = template.find_resources("AWS::Events::EventBus")
    [rule] = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["EventBusName"] == {"Ref": bus_id}
    assert rule["Properties"]["EventPattern"] == decision_event_pattern()
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":logs:us-east-1:111111111111:log-group:",
                {"Ref": group_id},
            ],
        ]
    }
    assert "RoleArn" not in target  # CloudWatch Logs targets use the resource policy
    [queue_id] = template.find_resources("AWS::SQS::Queue")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmDescription": Match.string_like_regexp("could not store"),
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            "Threshold": 1,
        },
    )
    # The log group's resource policy, written out: EventBridge may write to this group only.
    [policy] = template.find_resources("AWS::Logs::ResourcePolicy").values()
    parts = policy["Properties"]["PolicyDocument"]["Fn::Join"][1]
    assert {"Fn::GetAtt": [group_id, "Arn"]} in parts
    document = json.loads("".join(part if isinstance(part, str) else "GROUP-ARN" for part in parts))
    assert document["Statement"] == [
        {
            "Sid": "EventBridgeWritesDecisions",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
            "Resource": "GROUP-ARN",
        }
    ]
    # No custom resource (and so no Lambda function) puts that policy.
    assert template.find_resources("AWS::Lambda::Function") == {}
    assert template.find_resources("Custom::CloudwatchLogResourcePolicy") == {}


def test_the_fleet_dashboard_and_saved_queries(fleet: SynthesizedFleet) -> None:
    template = fleet.templates[fleet.central.node.path]
    [dashboard] = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in (
        "Decisions by account, region, policy and outcome",
        "Failed terminations",
        "Policy caps reached",
        "Brakes fired",
        "Terminated, everywhere, and why",
    ):
        assert title in body
    queries = template.find_resources("AWS::Logs::QueryDefinition")
    assert sorted(q["Properties"]["Name"] for q in queries.values()) == sorted(
        query.name for query in FLEET_QUERIES
    )
    [group_id] = template.find_resources("AWS::Logs::LogGroup")
    for query in queries.values():
        assert query["Properties"]["LogGroupNames"] == [{"Ref": group_id}]


# --- clean under cfn-lint and cdk-nag, every stage -----------------------------------------------


def test_every_stage_is_cfn_lint_clean(fleet: SynthesizedFleet) -> None:
    assert len(fleet.template_paths) == 7
    for path, template_path in fleet.template_paths.items():
        assert [str(match) for match in lint_file(template_path)] == [], path


def test_every_stage_is_cdk_nag_clean(fleet: SynthesizedFleet) -> None:
    # The synthesis ran both packs in every stage and did not fail; run them again directly.
    report = json.loads((fleet.outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert [r for r in report["pluginReports"] if r.get("violations")] == []
    for stack in fleet.fleet_app.stacks:
        assert findings(stack) == set(), stack.node.path


@pytest.mark.parametrize("rule_id", ["AwsSolutions-SQS3"])
def test_a_fleet_finding_fails_synth(
    rule_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Validations.acknowledge

    def acknowledge(self: Validations, *rules: Acknowledgment) -> None:
        kept = [r for r in rules if r.id != rule_id]
        if kept:
            original(self, *kept)

    monkeypatch.setattr(Validations, "acknowledge", acknowledge)
    one = tmp_path / "fleet.yaml"
    one.write_text(
        'version: 1\ncentral: {account: "111111111111", region: us-east-1}\n'
        'members: [{account: "222222222222", regions: [eu-west-1]}]\n',
        encoding="utf-8",
    )
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize_fleet(tmp_path, one)
    report = json.loads((tmp_path / "cdk.out" / "validation-report.json").read_text("utf-8"))
    violations = [v for r in report["pluginReports"] for v in r.get("violations", [])]
    assert {v["ruleName"] for v in violations} == {rule_id}
    paths = {c["constructPath"] for v in violations for c in v["violatingConstructs"]}
    assert paths == {
        "Central/Fleet/Log/DeadLetterQueue/Resource",
        "Member-222222222222-eu-west-1/BatchTerminator/DecisionForwarding/DeadLetterQueue/Resource",
        "Member-222222222222-eu-west-1/BatchTerminator/Deadlines/ScheduleDeadLetterQueue/Resource",
    }
