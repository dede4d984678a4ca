"""Ledger: the table of request state, termination records and alarm claims (DynamoDB)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template

from infra.paths import LAMBDA_PACKAGE_DIR
from tests.infra.support import Synthesized, acknowledgements, logical_id, only_resource


def ledger(template: Template) -> Mapping[str, Any]:
    return only_resource(template, "AWS::DynamoDB::Table", "LedgerTable")


def test_the_stack_has_one_table(template: Template) -> None:
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.resource_count_is("AWS::DynamoDB::GlobalTable", 0)


def test_key_is_the_string_pk_without_sort_key(template: Template) -> None:
    properties = ledger(template)["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert "GlobalSecondaryIndexes" not in properties
    assert "LocalSecondaryIndexes" not in properties


def test_billing_is_on_demand(template: Template) -> None:
    properties = ledger(template)["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in properties


def test_items_expire_at_expires_at(template: Template) -> None:
    assert ledger(template)["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expiresAt",
        "Enabled": True,
    }


def test_encrypted_with_an_aws_owned_key(template: Template) -> None:
    # SSEEnabled false is DynamoDB's encryption with an AWS-owned key (every table is encrypted):
    # no customer or AWS-managed KMS key, so nothing to grant and no KMS calls.
    assert ledger(template)["Properties"]["SSESpecification"] == {"SSEEnabled": False}


def test_deleted_with_the_stack(template: Template) -> None:
    table = ledger(template)
    assert table["DeletionPolicy"] == "Delete"
    assert table["UpdateReplacePolicy"] == "Delete"


def test_no_point_in_time_recovery_and_the_finding_is_acknowledged(synth: Synthesized) -> None:
    properties = ledger(synth.template)["Properties"]
    assert "PointInTimeRecoverySpecification" not in properties
    on_table = {
        rule_id: reason
        for (path, rule_id), reason in acknowledgements(synth.stack).items()
        if path == f"{synth.stack.node.path}/Ledger/Table"
    }
    assert list(on_table) == ["AwsSolutions-DDB3"]
    assert "expires" in on_table["AwsSolutions-DDB3"]


def test_every_table_call_of_the_runtime_is_granted_on_the_table(template: Template) -> None:
    """The runtime's DynamoDB calls (`_client.put_item(...)` in ledger.py), as IAM actions, are
    each granted to some function on the table: a call nobody may make fails only when deployed."""
    source = (LAMBDA_PACKAGE_DIR / "ledger.py").read_text(encoding="utf-8")
    calls = set(re.findall(r"_client\.([a-z_]+)\b", source))
    assert calls
    needed = {"dynamodb:" + "".join(part.title() for part in call.split("_")) for call in calls}
    table = {"Fn::GetAtt": [logical_id(template, "AWS::DynamoDB::Table", "LedgerTable"), "Arn"]}
    granted = {
        action
        for role in template.find_resources("AWS::IAM::Role").values()
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Resource"] == table
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert needed - granted == set()


def test_every_function_that_reads_the_pause_switch_may_read_it(template: Template) -> None:
    """A handler that reads the pause switch (`pausing.read_pause`: GetItem of one key) runs as
    a role with dynamodb:GetItem on the table, and knows the table's name (LEDGER_TABLE). The
    sweeper, the brake, the deadline function and the terminator all hold both, so a handler
    that starts reading it needs no deploy-time surprise."""
    table = {"Fn::GetAtt": [logical_id(template, "AWS::DynamoDB::Table", "LedgerTable"), "Arn"]}
    functions = template.find_resources("AWS::Lambda::Function")
    roles = template.find_resources("AWS::IAM::Role")
    readers = {
        function_id
        for function_id, function in functions.items()
        if "read_pause"
        in (
            LAMBDA_PACKAGE_DIR.parent
            / (function["Properties"]["Handler"].rsplit(".", 1)[0].replace(".", "/") + ".py")
        ).read_text(encoding="utf-8")
    }
    may_read = set()
    for function_id, function in functions.items():
        role = roles[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        gets = [
            statement
            for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            if statement["Resource"] == table
            and "dynamodb:GetItem"
            in (
                [statement["Action"]]
                if isinstance(statement["Action"], str)
                else statement["Action"]
            )
        ]
        variables = function["Properties"]["Environment"]["Variables"]
        if gets and variables.get("LEDGER_TABLE") == {
            "Ref": logical_id(template, "AWS::DynamoDB::Table", "LedgerTable")
        }:
            may_read.add(function_id)
    assert readers, "no handler reads the pause switch"
    assert readers <= may_read
    assert len(may_read) == len(functions) == 4
