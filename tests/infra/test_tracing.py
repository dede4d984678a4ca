"""Tracing: Lambda's active tracing by default, off on request, and the X-Ray grant follows it."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.constructs.lambda_package import TRACING_OFF_REASON
from infra.settings import SettingsError, StackSettings
from tests.infra.support import Synthesized, acknowledgements, actions, statements_of

XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def functions(template: Template) -> dict[str, Any]:
    found = template.find_resources("AWS::Lambda::Function")
    assert len(found) == 4
    return dict(found)


def function_roles(template: Template) -> dict[str, Any]:
    return {
        role_id: role
        for role_id, role in template.find_resources("AWS::IAM::Role").items()
        if "SchedulerRole" not in role_id
    }


def xray_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in statements_of(role) if any(a.startswith("xray:") for a in actions(s))]


def test_active_is_the_default() -> None:
    assert StackSettings().tracing == "active"
    assert StackSettings().tracing_active


def test_every_function_is_traced_by_lambda_by_default(template: Template) -> None:
    for function in functions(template).values():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}


def test_every_function_role_may_send_its_segments_when_active(template: Template) -> None:
    roles = function_roles(template)
    assert len(roles) == 4
    for role_id, role in roles.items():
        assert xray_statements(role) == [
            {"Sid": "XRayTracing", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"}
        ], role_id


def test_off_removes_tracing_and_its_grant(overridden: Synthesized) -> None:
    for function in functions(overridden.template).values():
        assert "TracingConfig" not in function["Properties"]
    for role_id, role in function_roles(overridden.template).items():
        assert xray_statements(role) == [], role_id


def test_off_is_acknowledged_on_each_function_with_its_reason(overridden: Synthesized) -> None:
    acknowledged = {
        path.rsplit("/", 2)[-2]: reason
        for (path, rule_id), reason in acknowledgements(overridden.stack).items()
        if rule_id == "Serverless-LambdaTracing"
    }
    # Each construct's function (Terminator/Function, Policies/Function, ...), and only there.
    assert sorted(acknowledged) == ["Brake", "Deadlines", "Policies", "Terminator"]
    assert set(acknowledged.values()) == {TRACING_OFF_REASON}


def test_active_needs_no_acknowledgement(synth: Synthesized) -> None:
    assert not [
        key for key in acknowledgements(synth.stack) if key[1] == "Serverless-LambdaTracing"
    ]


@pytest.mark.parametrize("value", ["on", "Active", "passthrough", 1])
def test_other_values_are_refused(value: object) -> None:
    from aws_cdk import App

    with pytest.raises(SettingsError, match=r"^tracing: .* is not one of active, off"):
        StackSettings.from_context(App(context={"tracing": value}).node)
