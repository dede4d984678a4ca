"""Synthesize the app once per session, the way app.py does (cdk-nag included), and share it."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from infra.paths import PROJECT_ROOT
from tests.infra.support import (
    BRAKING_POLICIES,
    OVERRIDE_CONTEXT,
    OVERRIDE_POLICIES,
    Synthesized,
    SynthesizedFleet,
    synthesize,
    synthesize_fleet,
)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default deployment: cdk.json's values and the project's policies.yaml."""
    return synthesize(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def template(synth: Synthesized) -> Template:
    return synth.template


@pytest.fixture(scope="session")
def overridden(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Every context key overridden, the policies file included."""
    root = tmp_path_factory.mktemp("overridden")
    policies = root / "policies.yaml"
    policies.write_text(OVERRIDE_POLICIES, encoding="utf-8")
    return synthesize(root, {**OVERRIDE_CONTEXT, "policiesFile": str(policies)})


@pytest.fixture(scope="session")
def braking(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """cdk.json's values and a policies file whose brakes name several alarms."""
    root = tmp_path_factory.mktemp("braking")
    policies = root / "policies.yaml"
    policies.write_text(BRAKING_POLICIES, encoding="utf-8")
    return synthesize(root, {"policiesFile": str(policies)})


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedFleet:
    """fleet.example.yaml: a central stack and three member accounts in two regions each."""
    return synthesize_fleet(tmp_path_factory.mktemp("fleet"), PROJECT_ROOT / "fleet.example.yaml")
