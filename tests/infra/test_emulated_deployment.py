"""The emulator's deployment makes what the stack makes: compared with the synthesized template."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws

from batch_terminator_cli.emulator.deployment import EmulatedDeployment, deploy
from tests.infra.support import only_resource

REGION = "us-east-1"


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def deployment(session: boto3.Session) -> EmulatedDeployment:
    return deploy(session)


def table_of(template: Template) -> dict[str, Any]:
    return dict(only_resource(template, "AWS::DynamoDB::Table", "LedgerTable")["Properties"])


def test_ledger_table_is_named_and_in_the_outputs(deployment: EmulatedDeployment) -> None:
    assert deployment.ledger_table == "batch-terminator-ledger"
    assert deployment.outputs()["LedgerTableName"] == "batch-terminator-ledger"


def test_outputs_name_only_stack_outputs(
    deployment: EmulatedDeployment, template: Template
) -> None:
    assert set(deployment.outputs()) <= set(template.find_outputs("*"))


def test_ledger_table_has_the_stacks_key_and_billing(
    session: boto3.Session, deployment: EmulatedDeployment, template: Template
) -> None:
    stack_table = table_of(template)
    described = session.client("dynamodb").describe_table(TableName=deployment.ledger_table)
    table = described["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == stack_table["KeySchema"]
    assert table["AttributeDefinitions"] == stack_table["AttributeDefinitions"]
    assert table["BillingModeSummary"]["BillingMode"] == stack_table["BillingMode"]


def test_ledger_items_expire_at_the_stacks_ttl_attribute(
    session: boto3.Session, deployment: EmulatedDeployment, template: Template
) -> None:
    stack_ttl = table_of(template)["TimeToLiveSpecification"]
    described = session.client("dynamodb").describe_time_to_live(TableName=deployment.ledger_table)
    assert described["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": stack_ttl["AttributeName"],
    }
    assert stack_ttl["Enabled"] is True


def test_request_queue_has_the_stacks_retention(
    session: boto3.Session, deployment: EmulatedDeployment, template: Template
) -> None:
    stack_queue = only_resource(template, "AWS::SQS::Queue", "IntakeRequestQueue")["Properties"]
    attributes = session.client("sqs").get_queue_attributes(
        QueueUrl=deployment.request_queue_url, AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]
    assert int(attributes["MessageRetentionPeriod"]) == stack_queue["MessageRetentionPeriod"]
