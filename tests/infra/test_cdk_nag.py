"""cdk-nag: zero unacknowledged findings, every acknowledgement needed, and a finding fails synth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

from infra.application import build_app
from tests.infra.support import Synthesized, acknowledgements


def findings(root: IConstruct) -> set[tuple[str, str]]:
    """(violating construct path, rule id) for both packs, run directly on the tree."""
    found: set[tuple[str, str]] = set()
    for pack in (AwsSolutionsChecks(), ServerlessChecks()):
        for violation in pack.validate_scope(root).violations:
            for resource in violation.violating_resources:
                assert resource.construct_path is not None
                found.add((resource.construct_path, violation.rule_name))
    return found


@pytest.fixture
def dropping_acknowledgements(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Rule ids put in the yielded set are not acknowledged by stacks built afterwards;
    `"*"` drops every acknowledgement."""
    dropped: set[str] = set()
    original = Validations.acknowledge

    def acknowledge(self: Validations, *rules: Acknowledgment) -> None:
        kept = [r for r in rules if "*" not in dropped and r.id not in dropped]
        if kept:
            original(self, *kept)

    monkeypatch.setattr(Validations, "acknowledge", acknowledge)
    return dropped


def test_synth_has_no_unacknowledged_findings(synth: Synthesized) -> None:
    # The session synthesis ran both packs as validation plugins and did not fail; its report
    # holds no plugin report with a violation.
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert [r for r in report["pluginReports"] if r.get("violations")] == []
    assert findings(synth.stack) == set()


@pytest.mark.parametrize("configuration", ["overridden", "braking"])
def test_the_other_configurations_are_clean_too(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    # Without any alarm brake (and with the brake topic), and with several alarm names.
    synthesized: Synthesized = request.getfixturevalue(configuration)
    assert findings(synthesized.stack) == set()


def test_every_acknowledgement_is_needed_and_has_a_reason(
    synth: Synthesized, dropping_acknowledgements: set[str], tmp_path: Path
) -> None:
    acknowledged = acknowledgements(synth.stack)
    assert acknowledged
    for (path, rule_id), reason in acknowledged.items():
        assert len(reason) > 60, f"{rule_id} on {path}: say why, specifically"

    dropping_acknowledgements.add("*")
    bare = build_app(App(outdir=str(tmp_path / "cdk.out")), asset_dir=tmp_path / "asset")
    assert acknowledgements(bare) == {}
    raised = findings(bare)

    def covered(finding: tuple[str, str]) -> bool:
        path, rule_id = finding
        return any(
            rule_id == acked_rule and (path == acked_path or path.startswith(f"{acked_path}/"))
            for acked_path, acked_rule in acknowledged
        )

    # Every finding of the unacknowledged stack is acknowledged in the real one...
    assert {f for f in raised if not covered(f)} == set()
    # ...and every acknowledgement silences at least one real finding (none is stale).
    for acked_path, acked_rule in acknowledged:
        assert any(
            rule_id == acked_rule and path.startswith(acked_path) for path, rule_id in raised
        ), f"{acked_rule} on {acked_path} acknowledges nothing"


def test_removing_one_acknowledgement_fails_synth(
    dropping_acknowledgements: set[str], tmp_path: Path
) -> None:
    rule_id = "Serverless-LambdaEventSourceMappingDestination"
    dropping_acknowledgements.add(rule_id)
    app = App(outdir=str(tmp_path / "cdk.out"))
    build_app(app, asset_dir=tmp_path / "asset")
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    assert rule_id in str(failure.value)
    report = json.loads((tmp_path / "cdk.out" / "validation-report.json").read_text("utf-8"))
    violations = [v for r in report["pluginReports"] for v in r.get("violations", [])]
    assert [v["ruleName"] for v in violations] == [rule_id]
    paths = sorted(c["constructPath"] for c in violations[0]["violatingConstructs"])
    assert [path.split("/", 1)[1] for path in paths] == [
        "Deadlines/Function/EventsQueueSource/Resource",
        "Terminator/Function/RequestQueueSource/Resource",
    ]
