"""Helpers for the infrastructure tests: synthesize the app as app.py does, find resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Stage, Validations
from aws_cdk.assertions import Template
from constructs import IConstruct

from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.policies_file import load_policies
from infra.application import FleetApp, build_app, build_fleet
from infra.central_stack import FleetCentralStack
from infra.paths import project_path
from infra.settings import StackSettings
from infra.stack import BatchTerminatorStack


@dataclass(frozen=True)
class Synthesized:
    stack: BatchTerminatorStack
    template: Template
    template_path: Path
    outdir: Path


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synthesized:
    """Build and synthesize a whole app; cdk-nag runs, so any unacknowledged finding raises."""
    app = App(outdir=str(outdir / "cdk.out"), context=context or {})
    stack = build_app(app, asset_dir=outdir / "asset")
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    return Synthesized(
        stack=stack,
        template=Template.from_stack(stack),
        template_path=Path(artifact.template_full_path),
        outdir=outdir / "cdk.out",
    )


@dataclass(frozen=True)
class SynthesizedFleet:
    """A fleet synthesized as app.py does (cdk-nag in every stage): each stack's template and
    the path of its template file, by the stack's construct path (`Central/Fleet`,
    `Member-222222222222-us-east-1/BatchTerminator`)."""

    fleet_app: FleetApp
    templates: dict[str, Template]
    template_paths: dict[str, Path]
    outdir: Path

    @property
    def central(self) -> FleetCentralStack:
        assert self.fleet_app.central is not None
        return self.fleet_app.central


def synthesize_fleet(
    outdir: Path, fleet_file: Path, context: dict[str, Any] | None = None
) -> SynthesizedFleet:
    """Build and synthesize a fleet; any unacknowledged cdk-nag finding raises."""
    app = App(outdir=str(outdir / "cdk.out"), context=context or {})
    fleet_app = build_fleet(app, fleet_file, asset_root=outdir / "assets")
    assembly = app.synth()
    templates: dict[str, Template] = {}
    paths: dict[str, Path] = {}
    for stack in fleet_app.stacks:
        stage = Stage.of(stack)
        assert stage is not None
        artifact = assembly.get_nested_assembly(stage.artifact_id).get_stack_artifact(
            stack.artifact_id
        )
        paths[stack.node.path] = Path(artifact.template_full_path)
        templates[stack.node.path] = Template.from_json(artifact.template)
    return SynthesizedFleet(
        fleet_app=fleet_app, templates=templates, template_paths=paths, outdir=outdir / "cdk.out"
    )


ACKNOWLEDGED = Validations.ACKNOWLEDGED_RULES_METADATA_KEY

# The default bus of the stack's own account and region, where every function publishes its
# decisions (a stack without an environment: pseudo parameters).
DEFAULT_BUS_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":events:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":event-bus/default",
        ],
    ]
}


def acknowledgements(root: IConstruct) -> dict[tuple[str, str], str]:
    """(construct path, rule id) -> reason, for every cdk-nag acknowledgement below `root`."""
    found: dict[tuple[str, str], str] = {}
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACKNOWLEDGED:
                for key, reason in entry.data.items():
                    rule_id = (
                        key.split("::", 1)[1] if key.lower().startswith("annotation::") else key
                    )
                    found[(construct.node.path, rule_id)] = reason
    return found


# No policy names an alarm (a budgets-only brake), and the queues can be filtered by a rule.
OVERRIDE_POLICIES = """\
version: 1
settings:
  sweepInterval: 2h
  jobQueues: ["gpu-*", "arn:aws:batch:eu-west-1:123456789012:job-queue/spot-cpu"]
policies:
  - name: stuck-starting
    when: {status: [RUNNABLE, STARTING], olderThan: 2h}
  - name: budget-brake
    trigger: {budgets: [batch-monthly]}
    when: {status: RUNNING}
"""

# Several alarm names, one of them a glob, one named by two policies.
BRAKING_POLICIES = """\
version: 1
policies:
  - name: spend-brake
    trigger: {alarms: [batch-spend-critical, "team-*-cost"]}
    when: {status: [RUNNABLE, RUNNING]}
  - name: gpu-brake
    trigger: {alarms: [gpu-spend, batch-spend-critical], budgets: [gpu-monthly]}
    match: {jobQueues: [gpu-training]}
    when: {status: RUNNING}
"""

# Every key given as `-c key=value` gives it: strings, not JSON numbers.
OVERRIDE_CONTEXT = {
    "stackName": "BatchTerminatorTest",
    "powertoolsLayerVersion": "31",
    "pythonRuntime": "python3.12",
    "architecture": "x86_64",
    "terminatorReservedConcurrency": "7",
    "terminatorBatchSize": "10",
    "terminatorBatchingWindowSeconds": "0",
    "terminatorTimeoutSeconds": "60",
    "terminatorMemoryMB": "1024",
    "maxReceiveCount": "5",
    "logRetentionDays": "30",
    "alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:batch-terminator-alarms",
    "brakeTopicArn": "arn:aws:sns:eu-west-1:123456789012:batch-spend-alerts",
    "tracing": "off",
    "terminateOnlyTagged": "team=ml-platform",
}


def resources_of(template: Template, resource_type: str) -> Mapping[str, Mapping[str, Any]]:
    return template.find_resources(resource_type)


def only_resource(template: Template, resource_type: str, path_part: str) -> Mapping[str, Any]:
    """The one resource of this type whose logical id contains `path_part`."""
    matches = {
        logical_id: resource
        for logical_id, resource in resources_of(template, resource_type).items()
        if path_part in logical_id
    }
    assert len(matches) == 1, f"{resource_type} with {path_part!r}: {sorted(matches)}"
    return next(iter(matches.values()))


def logical_id(template: Template, resource_type: str, path_part: str) -> str:
    ids = [i for i in resources_of(template, resource_type) if path_part in i]
    assert len(ids) == 1, f"{resource_type} with {path_part!r}: {ids}"
    return ids[0]


def policies_of(synthesized: Synthesized) -> PoliciesFile:
    settings = StackSettings.from_context(synthesized.stack.node)
    return load_policies(project_path(settings.policies_file))


def statements_of(role: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def actions(statement: Mapping[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def granted(role: Mapping[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (action, str(statement["Resource"]))
        for statement in statements_of(role)
        for action in actions(statement)
    )


def queue_policy_statements(template: Template, queue_id: str) -> list[dict[str, Any]]:
    [policy] = [
        p
        for p in template.find_resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])
