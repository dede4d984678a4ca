"""Hostile review of the fleet (issue 9), as synthesized: fleet files with odd accounts and
partitions, and a central account that is also a member.

Each test holds a defect the review found (a member forwarding across partitions, accounts that
are not 12 ASCII digits, a function publishing without its account) or an attack that found
nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stage
from aws_cdk.assertions import Template

from batch_terminator.contract import FLEET_BUS_NAME, decision_event_pattern
from batch_terminator.models.request import partition_of
from batch_terminator_cli.fleet_file import FleetFileError, parse_fleet
from infra.application import FleetApp, build_fleet

CENTRAL = "111111111111"
ROOT_PRINCIPAL = re.compile(r":iam::([0-9]{12}):root", re.ASCII)


def write_fleet(path: Path, members: str, central_region: str = "us-east-1") -> Path:
    path.write_text(
        f'version: 1\ncentral: {{account: "{CENTRAL}", region: {central_region}}}\n'
        f"members:\n{members}",
        encoding="utf-8",
    )
    return path


def built(tmp_path: Path, fleet_file: Path) -> FleetApp:
    app = App(outdir=str(tmp_path / "cdk.out"))
    return build_fleet(app, fleet_file, asset_root=tmp_path / "assets")


def forwarding_targets(template: Template) -> list[Any]:
    rules = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"EventPattern": decision_event_pattern()}}
    )
    return [target["Arn"] for rule in rules.values() for target in rule["Properties"]["Targets"]]


def test_a_member_forwards_only_within_its_own_partition(tmp_path: Path) -> None:
    fleet_file = write_fleet(
        tmp_path / "fleet.yaml", '  - {account: "222222222222", regions: [cn-north-1]}\n'
    )
    try:
        fleet_app = built(tmp_path, fleet_file)
    except FleetFileError:
        return  # refused with its one line: nothing is deployed
    for member, stack in fleet_app.members.items():
        for arn in forwarding_targets(Template.from_stack(stack)):
            assert isinstance(arn, str)
            assert arn.startswith(f"arn:{partition_of(member.region)}:events:"), arn


def test_an_account_with_a_trailing_newline_stops_the_synth_with_one_line(
    tmp_path: Path,
) -> None:
    fleet_file = write_fleet(
        tmp_path / "fleet.yaml", '  - {account: "222222222222\\n", regions: [us-east-1]}\n'
    )
    with pytest.raises(FleetFileError):
        built(tmp_path, fleet_file)


def test_the_central_bus_names_only_twelve_digit_accounts() -> None:
    """Fullwidth digits once passed the fleet file's `\\d` and reached the bus policy as an
    invalid principal; the fleet file refuses them, so no policy can name such an account."""
    with pytest.raises(FleetFileError, match="12 digits"):
        parse_fleet(
            f'version: 1\ncentral: {{account: "{CENTRAL}", region: us-east-1}}\n'
            'members:\n  - {account: "222222222222", regions: [us-east-1]}\n'
            f'  - {{account: "{chr(0xFF13) * 12}", regions: [us-east-1]}}\n'
        )


def test_a_central_account_that_is_also_a_member_forwards_to_its_own_bus(tmp_path: Path) -> None:
    """The audit account also runs Batch (in the central region and another): each of its member
    stacks forwards to the fleet bus, which admits it, and no stack name or stage collides
    (nothing found here)."""
    fleet_file = write_fleet(
        tmp_path / "fleet.yaml",
        f'  - {{account: "{CENTRAL}", regions: [us-east-1, eu-west-1]}}\n'
        '  - {account: "222222222222", regions: [us-east-1]}\n',
    )
    fleet_app = built(tmp_path, fleet_file)
    assert fleet_app.central is not None
    bus = f"arn:aws:events:us-east-1:{CENTRAL}:event-bus/{FLEET_BUS_NAME}"
    for stack in fleet_app.members.values():
        assert forwarding_targets(Template.from_stack(stack)) == [bus]
    names = [(Stage.of(s).stage_name, s.stack_name) for s in fleet_app.stacks]  # type: ignore[union-attr]
    assert len(names) == len(set(names))
    central = Template.from_stack(fleet_app.central)
    [policy] = central.find_resources("AWS::Events::EventBusPolicy").values()
    principals = policy["Properties"]["Statement"]["Principal"]["AWS"]
    admitted = {
        match.group(1)
        for principal in principals
        if (match := ROOT_PRINCIPAL.search(json.dumps(principal)))
    }
    assert admitted == {CENTRAL, "222222222222"}


def test_every_function_that_publishes_decisions_has_a_publisher(
    template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each function the stack tells to publish (PUBLISH_DECISIONS=true), run with the
    environment the template gives it (CloudFormation values stood in for, AWS_REGION as Lambda
    sets it), gets a decision publisher from decision_events_from_environment()."""
    from batch_terminator.contract import ACCOUNT_ID_ENV, PUBLISH_DECISIONS_ENV
    from batch_terminator.decisions import decision_events_from_environment

    publishing = {
        function_id: function["Properties"]["Environment"]["Variables"]
        for function_id, function in template.find_resources("AWS::Lambda::Function").items()
        if function["Properties"]
        .get("Environment", {})
        .get("Variables", {})
        .get(PUBLISH_DECISIONS_ENV)
        == "true"
    }
    assert len(publishing) >= 3  # the terminator, the sweeper, the brake at least
    without = []
    for function_id, variables in publishing.items():
        with monkeypatch.context() as patch:
            patch.delenv(ACCOUNT_ID_ENV, raising=False)
            for name, value in variables.items():
                patch.setenv(name, value if isinstance(value, str) else "222222222222")
            patch.setenv("AWS_REGION", "us-east-1")
            if decision_events_from_environment() is None:
                without.append(function_id)
    assert without == []
