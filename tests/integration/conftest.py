"""Fixtures: the stack's runtime pieces deployed on the emulator, driven through the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import Sandbox, sandbox
from tests.integration.cli_support import STACK as CLI_STACK

TEST_POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {
        "jobQueues": ["gpu-training", "spot-cpu"],
        "protectTag": "batch-terminator:protect",
    },
    "policies": [],
}


@pytest.fixture
def policies() -> PoliciesFile:
    """Override in a test module to run the pipeline under other policies."""
    return PoliciesFile.model_validate(TEST_POLICIES)


@pytest.fixture
def pipeline(policies: PoliciesFile) -> Iterator[Sandbox]:
    with sandbox(policies) as running:
        yield running


@pytest.fixture
def aws(pipeline: Sandbox) -> boto3.Session:
    return pipeline.session


@pytest.fixture
def control(pipeline: Sandbox) -> BatchControl:
    return pipeline.control


@pytest.fixture
def world(pipeline: Sandbox) -> BatchWorld:
    return pipeline.world


@pytest.fixture
def stack(pipeline: Sandbox) -> Sandbox:
    """The deployed stack's outputs, as CloudFormation DescribeStacks gives them to the CLI."""
    outputs = pipeline.deployment.outputs()
    pipeline.session.client("cloudformation").create_stack(
        StackName=CLI_STACK,
        TemplateBody=json.dumps(
            {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()},
            }
        ),
    )
    return pipeline
