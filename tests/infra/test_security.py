"""Security review as a test: checks over the synthesized template, and proof that each one
fails on a template broken in the way it guards against.

Each check is a function of the template (the CloudFormation JSON as a dict) that returns its
findings, one line each; an empty list passes. The same checks run on the deployments the other
infrastructure tests synthesize (default, every key overridden, several alarm brakes), then on
deep copies of the default template with one mutation each, where they must report it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from batch_terminator_cli.fleet_file import Fleet, parse_fleet
from infra.settings import StackSettings, TagCondition
from tests.infra.support import (
    DEFAULT_BUS_ARN,
    OVERRIDE_CONTEXT,
    Synthesized,
    SynthesizedFleet,
)

Template = dict[str, Any]
Statement = dict[str, Any]

ACCOUNT_ROOT = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
    ]
}
JOB_ARNS = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":batch:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":job/*",
        ],
    ]
}
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# Environment keys that name a credential; a literal value under one is a secret in the template.
SECRET_KEY = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|(^|_)(API_?)?KEY($|_)")
# AWS access key ids: long-term (AKIA) and temporary (ASIA).
ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


# --- reading the template ----------------------------------------------------------------------


def resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == resource_type
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, document) for every IAM and resource policy document of the template."""
    for role_id, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            yield f"{role_id}/{policy.get('PolicyName')}", policy["PolicyDocument"]
    for resource_type in (
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
    ):
        for resource_id, resource in resources(template, resource_type).items():
            yield resource_id, resource["Properties"]["PolicyDocument"]
    for bus_policy_id, bus_policy in resources(template, "AWS::Events::EventBusPolicy").items():
        yield bus_policy_id, {"Statement": bus_policy["Properties"]["Statement"]}
    for logs_policy_id, logs_policy in resources(template, "AWS::Logs::ResourcePolicy").items():
        yield logs_policy_id, logs_policy_document(logs_policy)


def logs_policy_document(logs_policy: dict[str, Any]) -> dict[str, Any]:
    """A CloudWatch Logs resource policy's document: a JSON string, or an Fn::Join of one whose
    intrinsic parts (inside JSON strings) read as `<{...}>` placeholders."""
    text = logs_policy["Properties"]["PolicyDocument"]
    if isinstance(text, dict):
        separator, parts = text["Fn::Join"]
        text = separator.join(
            part if isinstance(part, str) else f"<{placeholder(part)}>" for part in parts
        )
    document: dict[str, Any] = json.loads(text)
    return document


def placeholder(value: Any) -> str:
    """An intrinsic function as text that fits inside a JSON string."""
    return json.dumps(value, sort_keys=True).replace('"', "'")


def statements(template: Template) -> Iterator[tuple[str, Statement]]:
    for where, document in policy_documents(template):
        for statement in as_list(document.get("Statement", [])):
            yield where, statement


def role_statements(role: dict[str, Any]) -> list[Statement]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]


def arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


# --- the checks --------------------------------------------------------------------------------


def wildcard_actions(template: Template) -> list[str]:
    """No statement allows an action with '*' in it, none says NotAction, and no statement at
    all (not even a Deny) names the action '*'. The TLS-only Deny statements (`sqs:*` where
    aws:SecureTransport is false) are the only service-wide actions, and they deny."""
    found = []
    for where, statement in statements(template):
        if "NotAction" in statement:
            found.append(f"{where}: NotAction {statement['NotAction']}")
        for action in as_list(statement.get("Action", [])):
            if action == "*" or (statement.get("Effect") == "Allow" and "*" in action):
                found.append(f"{where}: {statement.get('Effect')} {action}")
    for permission_id, permission in resources(template, "AWS::Lambda::Permission").items():
        if "*" in permission["Properties"]["Action"]:
            found.append(f"{permission_id}: {permission['Properties']['Action']}")
    return found


def terminate_job_scope(
    template: Template, tagged: TagCondition | None, job_arns: Any = JOB_ARNS
) -> list[str]:
    """batch:TerminateJob is allowed by exactly one statement, on this account's and region's
    job ARNs only, with the aws:ResourceTag condition when one is configured (and no other)."""
    found = []
    granting = [
        (where, statement)
        for where, statement in statements(template)
        if statement.get("Effect") == "Allow"
        and any(
            re.fullmatch(action.replace("*", ".*"), "batch:TerminateJob", re.IGNORECASE)
            for action in as_list(statement.get("Action", []))
        )
    ]
    if len(granting) != 1:
        found.append(f"{len(granting)} statements allow batch:TerminateJob, expected 1")
    expected = {"StringEquals": {f"aws:ResourceTag/{tagged.key}": tagged.value}} if tagged else None
    for where, statement in granting:
        if statement.get("Resource") != job_arns:
            found.append(f"{where}: TerminateJob on {statement.get('Resource')}")
        if statement.get("Condition") != expected:
            found.append(f"{where}: TerminateJob condition {statement.get('Condition')}")
    return found


def unencrypted(template: Template) -> list[str]:
    """Every queue is encrypted (SSE-SQS or KMS), every table declares its encryption, every
    topic has a KMS key. DynamoDB encrypts every table at rest; `SSEEnabled: false` is its
    AWS-owned key, so the declaration is what a review can see and a change would show."""
    found = []
    for queue_id, queue in resources(template, "AWS::SQS::Queue").items():
        properties = queue.get("Properties", {})
        if properties.get("SqsManagedSseEnabled") is not True and not properties.get(
            "KmsMasterKeyId"
        ):
            found.append(f"{queue_id}: queue without SSE-SQS or a KMS key")
    for table_id, table in resources(template, "AWS::DynamoDB::Table").items():
        sse = table.get("Properties", {}).get("SSESpecification")
        if not isinstance(sse, dict) or not isinstance(sse.get("SSEEnabled"), bool):
            found.append(f"{table_id}: table without an SSESpecification")
    for topic_id, topic in resources(template, "AWS::SNS::Topic").items():
        if not topic.get("Properties", {}).get("KmsMasterKeyId"):
            found.append(f"{topic_id}: topic without a KMS key")
    return found


def foreign_queue_producers(
    template: Template, external_sources: set[str], account_root: Any = ACCOUNT_ROOT
) -> list[str]:
    """Queue policies allow only this account (its IAM policies then decide) and AWS services
    acting for this stack's own EventBridge rules (aws:SourceArn = the rule's ARN), or for an
    SNS topic the configuration names (`external_sources`). Deny statements only restrict."""
    rules = {json_key(arn_of(rule_id)) for rule_id in resources(template, "AWS::Events::Rule")}
    allowed_sources = rules | {json_key(arn) for arn in external_sources}
    found = []
    for policy_id, policy in resources(template, "AWS::SQS::QueuePolicy").items():
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"]):
            if statement.get("Effect") != "Allow":
                continue
            principal = statement.get("Principal")
            if principal == {"AWS": account_root} and "Condition" not in statement:
                continue
            if isinstance(principal, dict) and set(principal) == {"Service"}:
                conditions = statement.get("Condition", {})
                source = conditions.get("ArnEquals", {}).get("aws:SourceArn")
                if source is not None and json_key(source) in allowed_sources:
                    continue
                found.append(f"{policy_id}: {principal} for source {source}")
                continue
            found.append(f"{policy_id}: admits {principal}")
    return found


def scheduler_role_reach(template: Template, allowed_queue_ids: set[str]) -> list[str]:
    """Roles that EventBridge Scheduler assumes may only sqs:SendMessage to the given queues."""
    allowed = {json_key(arn_of(queue_id)) for queue_id in allowed_queue_ids}
    found = []
    roles = {
        role_id: role
        for role_id, role in resources(template, "AWS::IAM::Role").items()
        if any(
            SCHEDULER_SERVICE in as_list(s.get("Principal", {}).get("Service", []))
            for s in as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
        )
    }
    if not roles:
        found.append("no role for EventBridge Scheduler")
    for role_id, role in roles.items():
        if role["Properties"].get("ManagedPolicyArns"):
            found.append(f"{role_id}: managed policies {role['Properties']['ManagedPolicyArns']}")
        for statement in role_statements(role):
            if statement.get("Effect") != "Allow":
                continue
            actions = as_list(statement.get("Action", []))
            if actions != ["sqs:SendMessage"]:
                found.append(f"{role_id}: {actions}")
            for resource in as_list(statement.get("Resource", [])):
                if json_key(resource) not in allowed:
                    found.append(f"{role_id}: sends to {resource}")
    return found


def secrets_in_environment(template: Template) -> list[str]:
    """No function environment holds a literal credential: a key named like one with a
    literal value, or an AWS access key id anywhere."""
    found = []
    for function_id, function in resources(template, "AWS::Lambda::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        for key, value in variables.items():
            if SECRET_KEY.search(key.upper()) and isinstance(value, str) and value:
                found.append(f"{function_id}: {key} holds a literal value")
            if isinstance(value, str) and ACCESS_KEY_ID.search(value):
                found.append(f"{function_id}: {key} holds an access key id")
    return found


def open_principals(template: Template) -> list[str]:
    """No Allow statement of any resource policy (queue, topic, event bus, CloudWatch Logs)
    admits '*' unless it is conditioned on one organization (aws:PrincipalOrgID) and nothing
    else."""
    found = []
    for where, statement in statements(template):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        values = (
            [principal]
            if isinstance(principal, str)
            else [v for found_values in (principal or {}).values() for v in as_list(found_values)]
        )
        if "*" not in values:
            continue
        condition = statement.get("Condition")
        organization = (condition or {}).get("StringEquals", {}).get("aws:PrincipalOrgID")
        if (
            condition is None
            or list(condition) != ["StringEquals"]
            or list(condition["StringEquals"]) != ["aws:PrincipalOrgID"]
            or not isinstance(organization, str)
            or not re.fullmatch(r"o-[a-z0-9]{10,32}", organization)
        ):
            found.append(f"{where}: admits '*' with condition {condition}")
    return found


def put_events_reach(template: Template, allowed_buses: list[Any]) -> list[str]:
    """Roles may events:PutEvents only on the given buses (the account's default bus, where the
    functions publish their decisions, and the fleet's central bus, where they are forwarded)."""
    allowed = {json_key(bus) for bus in allowed_buses}
    found = []
    for role_id, role in resources(template, "AWS::IAM::Role").items():
        for statement in role_statements(role):
            if statement.get("Effect") != "Allow" or not any(
                re.fullmatch(action.replace("*", ".*"), "events:PutEvents", re.IGNORECASE)
                for action in as_list(statement.get("Action", []))
            ):
                continue
            for resource in as_list(statement.get("Resource", [])):
                if json_key(resource) not in allowed:
                    found.append(f"{role_id}: PutEvents on {resource}")
    return found


def bus_admission(template: Template, accounts: set[str], organization_id: str | None) -> list[str]:
    """The fleet bus's policy is one statement: events:PutEvents on that bus, for exactly the
    member accounts, or (with an organization) for '*' within that organization only."""
    found = []
    policies = resources(template, "AWS::Events::EventBusPolicy")
    bus_ids = list(resources(template, "AWS::Events::EventBus"))
    statements_found = [
        statement
        for policy in policies.values()
        for statement in as_list(policy["Properties"]["Statement"])
    ]
    if len(statements_found) != 1:
        return [f"{len(statements_found)} event bus policy statements, expected 1"]
    [statement] = statements_found
    if statement.get("Effect") != "Allow" or as_list(statement.get("Action")) != [
        "events:PutEvents"
    ]:
        found.append(f"bus policy: {statement.get('Effect')} {statement.get('Action')}")
    if statement.get("Resource") not in [arn_of(bus_id) for bus_id in bus_ids]:
        found.append(f"bus policy on {statement.get('Resource')}")
    principal = statement.get("Principal")
    if organization_id:
        expected = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
        if principal != "*" or statement.get("Condition") != expected:
            found.append(f"bus policy: {principal} with {statement.get('Condition')}")
        return found
    if "Condition" in statement:
        found.append(f"bus policy condition {statement['Condition']}")
    principals = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
    if not isinstance(principal, dict) or set(principal) != {"AWS"}:
        found.append(f"bus policy principal {principal}")
    admitted = set()
    for value in as_list(principals):
        match = re.search(r":iam::(\d{12}):root", json.dumps(value))
        if match is None:
            found.append(f"bus policy admits {value}")
        else:
            admitted.add(match.group(1))
    if admitted != accounts:
        found.append(f"bus policy admits {sorted(admitted)}, the fleet is {sorted(accounts)}")
    return found


LOG_WRITERS = {"events.amazonaws.com", "delivery.logs.amazonaws.com"}


def log_writers(template: Template) -> list[str]:
    """CloudWatch Logs resource policies let only EventBridge (and Logs' delivery service)
    create streams and put events, and only in a log group of this template."""
    groups = {
        f"<{placeholder(arn_of(group_id))}>"
        for group_id in resources(template, "AWS::Logs::LogGroup")
    }
    found = []
    for policy_id, policy in resources(template, "AWS::Logs::ResourcePolicy").items():
        for statement in as_list(logs_policy_document(policy)["Statement"]):
            principal = statement.get("Principal")
            services = principal.get("Service") if isinstance(principal, dict) else None
            if (
                not isinstance(principal, dict)
                or set(principal) != {"Service"}
                or not set(as_list(services)) <= LOG_WRITERS
            ):
                found.append(f"{policy_id}: writers {principal}")
            actions = set(as_list(statement.get("Action", [])))
            if not actions <= {"logs:CreateLogStream", "logs:PutLogEvents"}:
                found.append(f"{policy_id}: actions {sorted(actions)}")
            for resource in as_list(statement.get("Resource", [])):
                if resource not in groups:
                    found.append(f"{policy_id}: on {resource}")
    return found


def json_key(value: Any) -> str:
    """A comparable form of a template value (string or intrinsic function)."""
    return repr(value)


# --- the checks pass on every synthesized deployment -------------------------------------------


def template_of(synthesized: Synthesized) -> Template:
    return copy.deepcopy(dict(synthesized.template.to_json()))


def queue_id(template: Template, part: str) -> str:
    [found] = [i for i in resources(template, "AWS::SQS::Queue") if part in i]
    return found


def scheduler_queues(template: Template) -> set[str]:
    return {
        queue_id(template, "IntakeRequestQueue"),
        queue_id(template, "ScheduleDeadLetterQueue"),
    }


def review(
    template: Template,
    settings: StackSettings,
    *,
    job_arns: Any = JOB_ARNS,
    default_bus: Any = DEFAULT_BUS_ARN,
    account_root: Any = ACCOUNT_ROOT,
) -> dict[str, list[str]]:
    """Every check's findings for this member template, deployed with these settings (a fleet
    member's job ARNs and default bus name its account and region)."""
    external = {settings.brake_topic_arn} if settings.brake_topic_arn else set()
    buses = [default_bus, *([settings.central_bus_arn] if settings.central_bus_arn else [])]
    return {
        "wildcard_actions": wildcard_actions(template),
        "terminate_job_scope": terminate_job_scope(
            template, settings.terminate_only_tagged, job_arns
        ),
        "unencrypted": unencrypted(template),
        "foreign_queue_producers": foreign_queue_producers(template, external, account_root),
        "scheduler_role_reach": scheduler_role_reach(template, scheduler_queues(template)),
        "secrets_in_environment": secrets_in_environment(template),
        "open_principals": open_principals(template),
        "put_events_reach": put_events_reach(template, buses),
    }


def review_central(template: Template, fleet: Fleet) -> dict[str, list[str]]:
    """Every check that applies to the fleet's central stack."""
    return {
        "wildcard_actions": wildcard_actions(template),
        "unencrypted": unencrypted(template),
        "foreign_queue_producers": foreign_queue_producers(template, set()),
        "secrets_in_environment": secrets_in_environment(template),
        "open_principals": open_principals(template),
        "put_events_reach": put_events_reach(template, []),
        "bus_admission": bus_admission(template, set(fleet.accounts), fleet.organization_id),
        "log_writers": log_writers(template),
    }


def member_arns(account: str, region: str) -> dict[str, Any]:
    """review()'s keyword arguments for a stack in this environment: its job ARNs, default bus
    and account root, as CDK writes them (the partition stays a reference)."""

    def arn(tail: str) -> Any:
        return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, tail]]}

    return {
        "job_arns": arn(f":batch:{region}:{account}:job/*"),
        "default_bus": arn(f":events:{region}:{account}:event-bus/default"),
        "account_root": arn(f":iam::{account}:root"),
    }


@pytest.mark.parametrize("configuration", ["synth", "overridden", "braking"])
def test_the_stack_passes_the_security_review(
    configuration: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(configuration)
    settings = StackSettings.from_context(synthesized.stack.node)
    assert review(template_of(synthesized), settings) == {
        "wildcard_actions": [],
        "terminate_job_scope": [],
        "unencrypted": [],
        "foreign_queue_producers": [],
        "scheduler_role_reach": [],
        "secrets_in_environment": [],
        "open_principals": [],
        "put_events_reach": [],
    }


def test_the_review_sees_what_it_checks(synth: Synthesized) -> None:
    """The checks are not vacuous: the template has what each one walks."""
    template = template_of(synth)
    assert len(list(statements(template))) > 20
    assert len(resources(template, "AWS::SQS::Queue")) == 7
    assert len(resources(template, "AWS::DynamoDB::Table")) == 1
    assert len(resources(template, "AWS::SQS::QueuePolicy")) == 7
    assert len(resources(template, "AWS::Lambda::Function")) == 4


def test_the_brake_topic_is_an_admitted_producer_only_when_configured(
    overridden: Synthesized,
) -> None:
    # The SNS subscription's dead-letter statement names the configured topic: refused when
    # the review is not told about that topic.
    assert foreign_queue_producers(template_of(overridden), set()) != []


# --- and each fails on the mutation it guards against ------------------------------------------


Mutation = Callable[[Template], None]


def role(template: Template, part: str) -> dict[str, Any]:
    [found] = [r for i, r in resources(template, "AWS::IAM::Role").items() if part in i]
    return found


def first_statements(template: Template, part: str) -> list[Statement]:
    return list(role(template, part)["Properties"]["Policies"][0]["PolicyDocument"]["Statement"])


def add_statement(template: Template, part: str, statement: Statement) -> None:
    role(template, part)["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        statement
    )


def terminate_statement(template: Template) -> Statement:
    [found] = [
        s for s in first_statements(template, "TerminatorRole") if s["Sid"] == "TerminateJobs"
    ]
    return found


def request_queue_policy(template: Template) -> list[Statement]:
    request = queue_id(template, "IntakeRequestQueue")
    [policy] = [
        p
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": request}]
    ]
    statements: list[Statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def scheduler_statements(template: Template) -> list[Statement]:
    statements: list[Statement] = role(template, "SchedulerRole")["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    return statements


def environment(template: Template) -> dict[str, Any]:
    [function] = [
        f
        for i, f in resources(template, "AWS::Lambda::Function").items()
        if "TerminatorFunction" in i
    ]
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def _action_star(t: Template) -> None:
    add_statement(t, "PoliciesRole", {"Effect": "Allow", "Action": "*", "Resource": "*"})


def _service_star(t: Template) -> None:
    add_statement(t, "BrakeRole", {"Effect": "Allow", "Action": "batch:*", "Resource": "*"})


def _not_action(t: Template) -> None:
    add_statement(t, "DeadlinesRole", {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})


def _permission_star(t: Template) -> None:
    permission = next(iter(resources(t, "AWS::Lambda::Permission").values()))
    permission["Properties"]["Action"] = "lambda:*"


def _terminate_everywhere(t: Template) -> None:
    terminate_statement(t)["Resource"] = "*"


def _terminate_other_account(t: Template) -> None:
    terminate_statement(t)["Resource"] = "arn:aws:batch:eu-west-1:999999999999:job/*"


def _terminate_by_wildcard_action(t: Template) -> None:
    add_statement(
        t, "BrakeRole", {"Effect": "Allow", "Action": "batch:Terminate*", "Resource": JOB_ARNS}
    )


def _tag_condition_on_untagged_deployment(t: Template) -> None:
    terminate_statement(t)["Condition"] = {"StringEquals": {"aws:ResourceTag/x": "y"}}


def _queue_unencrypted(t: Template) -> None:
    queue = resources(t, "AWS::SQS::Queue")[queue_id(t, "IntakeRequestQueue")]
    del queue["Properties"]["SqsManagedSseEnabled"]


def _table_unencrypted(t: Template) -> None:
    table = next(iter(resources(t, "AWS::DynamoDB::Table").values()))
    del table["Properties"]["SSESpecification"]


def _topic_unencrypted(t: Template) -> None:
    t["Resources"]["PlainTopic"] = {"Type": "AWS::SNS::Topic", "Properties": {}}


def _queue_open_to_anyone(t: Template) -> None:
    request_queue_policy(t).append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "sqs:SendMessage",
            "Resource": arn_of(queue_id(t, "IntakeRequestQueue")),
        }
    )


def _queue_open_to_a_service_without_source(t: Template) -> None:
    request_queue_policy(t).append(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn_of(queue_id(t, "IntakeRequestQueue")),
        }
    )


def _queue_open_to_a_foreign_rule(t: Template) -> None:
    [rule_statement] = [s for s in request_queue_policy(t) if "Service" in s.get("Principal", {})]
    rule_statement["Condition"] = {
        "ArnEquals": {"aws:SourceArn": "arn:aws:events:eu-west-1:999999999999:rule/theirs"}
    }


def _queue_open_to_another_account(t: Template) -> None:
    [account] = [s for s in request_queue_policy(t) if s.get("Sid") == "AccountSenders"]
    account["Principal"] = {"AWS": "arn:aws:iam::999999999999:root"}


def _scheduler_may_delete(t: Template) -> None:
    scheduler_statements(t)[0]["Action"] = ["sqs:SendMessage", "sqs:DeleteMessage"]


def _scheduler_sends_elsewhere(t: Template) -> None:
    scheduler_statements(t)[0]["Resource"] = arn_of(queue_id(t, "DeadlinesEventsQueue"))


def _scheduler_invokes_functions(t: Template) -> None:
    scheduler_statements(t).append(
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}
    )


def _secret_in_environment(t: Template) -> None:
    environment(t)["DB_PASSWORD"] = "hunter2"


def _api_key_in_environment(t: Template) -> None:
    environment(t)["PAGER_API_KEY"] = "0123456789abcdef"


def _access_key_in_environment(t: Template) -> None:
    environment(t)["UPSTREAM"] = "AKIAIOSFODNN7EXAMPLE"


MUTATIONS: dict[str, tuple[str, Mutation]] = {
    "Action '*'": ("wildcard_actions", _action_star),
    "a service-wide action": ("wildcard_actions", _service_star),
    "NotAction": ("wildcard_actions", _not_action),
    "lambda:* in a function permission": ("wildcard_actions", _permission_star),
    "TerminateJob on '*'": ("terminate_job_scope", _terminate_everywhere),
    "TerminateJob on another account": ("terminate_job_scope", _terminate_other_account),
    "TerminateJob by a wildcard action": ("terminate_job_scope", _terminate_by_wildcard_action),
    "a tag condition nobody configured": (
        "terminate_job_scope",
        _tag_condition_on_untagged_deployment,
    ),
    "a queue without encryption": ("unencrypted", _queue_unencrypted),
    "a table without its encryption": ("unencrypted", _table_unencrypted),
    "a topic without a KMS key": ("unencrypted", _topic_unencrypted),
    "a queue open to '*'": ("foreign_queue_producers", _queue_open_to_anyone),
    "a service without aws:SourceArn": (
        "foreign_queue_producers",
        _queue_open_to_a_service_without_source,
    ),
    "another account's rule": ("foreign_queue_producers", _queue_open_to_a_foreign_rule),
    "another account": ("foreign_queue_producers", _queue_open_to_another_account),
    "the scheduler role deletes": ("scheduler_role_reach", _scheduler_may_delete),
    "the scheduler role sends elsewhere": ("scheduler_role_reach", _scheduler_sends_elsewhere),
    "the scheduler role invokes": ("scheduler_role_reach", _scheduler_invokes_functions),
    "a password in the environment": ("secrets_in_environment", _secret_in_environment),
    "an API key in the environment": ("secrets_in_environment", _api_key_in_environment),
    "an access key id in the environment": ("secrets_in_environment", _access_key_in_environment),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_check_fails_on_its_mutation(synth: Synthesized, mutation: str) -> None:
    check, mutate = MUTATIONS[mutation]
    template = template_of(synth)
    mutate(template)
    findings = review(template, StackSettings.from_context(synth.stack.node))
    assert findings[check] != [], f"{check} missed {mutation}"
    # The mutation is what the check reports: the other checks still pass (a mutation that
    # breaks a neighbour too, like Action '*' that also allows TerminateJob, says so here).
    others = {name: found for name, found in findings.items() if name != check and found}
    assert set(others) <= ALSO_REPORTED.get(mutation, set()), others


# Mutations that a second check reports as well, by design.
ALSO_REPORTED: dict[str, set[str]] = {
    "Action '*'": {"terminate_job_scope", "put_events_reach"},
    "a service-wide action": {"terminate_job_scope"},
    "TerminateJob by a wildcard action": {"wildcard_actions"},
    "a queue open to '*'": {"open_principals"},
}


def test_a_missing_tag_condition_fails_where_one_is_configured(overridden: Synthesized) -> None:
    template = template_of(overridden)
    assert OVERRIDE_CONTEXT["terminateOnlyTagged"]
    settings = StackSettings.from_context(overridden.stack.node)
    del terminate_statement(template)["Condition"]
    assert terminate_job_scope(template, settings.terminate_only_tagged) != []


# --- the fleet: every member stage and the central stack ---------------------------------------


def test_every_fleet_stack_passes_the_security_review(fleet: SynthesizedFleet) -> None:
    for member, stack in fleet.fleet_app.members.items():
        template = copy.deepcopy(dict(fleet.templates[stack.node.path].to_json()))
        settings = StackSettings.from_context(stack.node)
        found = review(
            template,
            dataclasses.replace(settings, central_bus_arn=fleet.fleet_app.fleet.central_bus_arn()),
            **member_arns(member.account, member.region),
        )
        assert {name: f for name, f in found.items() if f} == {}, stack.node.path
    central = central_template_of(fleet)
    assert {n: f for n, f in review_central(central, fleet.fleet_app.fleet).items() if f} == {}


def central_template_of(fleet: SynthesizedFleet) -> Template:
    return copy.deepcopy(dict(fleet.templates[fleet.central.node.path].to_json()))


def the_bus_statement(t: Template) -> Statement:
    [policy] = resources(t, "AWS::Events::EventBusPolicy").values()
    statement: Statement = policy["Properties"]["Statement"]
    return statement


def logs_policy_parts(t: Template) -> list[Any]:
    [policy] = resources(t, "AWS::Logs::ResourcePolicy").values()
    parts: list[Any] = policy["Properties"]["PolicyDocument"]["Fn::Join"][1]
    return parts


def _bus_open_to_anyone(t: Template) -> None:
    the_bus_statement(t)["Principal"] = "*"


def _bus_open_to_another_account(t: Template) -> None:
    the_bus_statement(t)["Principal"]["AWS"].append("arn:aws:iam::999999999999:root")


def _bus_open_to_all_actions(t: Template) -> None:
    the_bus_statement(t)["Action"] = ["events:PutEvents", "events:PutRule"]


def _bus_missing_an_account(t: Template) -> None:
    the_bus_statement(t)["Principal"]["AWS"].pop()


def _logs_open_to_anyone(t: Template) -> None:
    parts = logs_policy_parts(t)
    parts[0] = re.sub(r'"Principal":\{[^}]*\}', '"Principal":"*"', parts[0])


def _logs_on_every_group(t: Template) -> None:
    parts = logs_policy_parts(t)
    [index] = [i for i, part in enumerate(parts) if not isinstance(part, str)]
    parts[index] = "arn:aws:logs:us-east-1:111111111111:log-group:*"


def _logs_allow_deletion(t: Template) -> None:
    parts = logs_policy_parts(t)
    parts[0] = parts[0].replace('"logs:PutLogEvents"', '"logs:PutLogEvents","logs:DeleteLogGroup"')


CENTRAL_MUTATIONS: dict[str, tuple[set[str], Mutation]] = {
    "the bus open to '*'": ({"open_principals", "bus_admission"}, _bus_open_to_anyone),
    "the bus open to another account": ({"bus_admission"}, _bus_open_to_another_account),
    "the bus allows another action": ({"bus_admission"}, _bus_open_to_all_actions),
    "the bus misses a member": ({"bus_admission"}, _bus_missing_an_account),
    "the log group writable by anyone": ({"open_principals", "log_writers"}, _logs_open_to_anyone),
    "the log policy on every group": ({"log_writers"}, _logs_on_every_group),
    "the log policy deletes": ({"log_writers"}, _logs_allow_deletion),
}


@pytest.mark.parametrize("mutation", sorted(CENTRAL_MUTATIONS))
def test_each_central_check_fails_on_its_mutation(fleet: SynthesizedFleet, mutation: str) -> None:
    expected, mutate = CENTRAL_MUTATIONS[mutation]
    template = central_template_of(fleet)
    mutate(template)
    found = review_central(template, fleet.fleet_app.fleet)
    assert {name for name, f in found.items() if f} == expected, found


def _forward_elsewhere(t: Template) -> None:
    [role_id] = [r for r in resources(t, "AWS::IAM::Role") if "DecisionForwardingRole" in r]
    role_statements(resources(t, "AWS::IAM::Role")[role_id])[0]["Resource"] = (
        "arn:aws:events:us-east-1:999999999999:event-bus/theirs"
    )


def _publish_on_another_bus(t: Template) -> None:
    [statement] = [
        s for s in first_statements(t, "TerminatorRole") if s.get("Sid") == "PublishDecisions"
    ]
    statement["Resource"] = "arn:aws:events:eu-west-1:999999999999:event-bus/default"


def _publish_on_every_bus(t: Template) -> None:
    add_statement(t, "BrakeRole", {"Effect": "Allow", "Action": "events:Put*", "Resource": "*"})


@pytest.mark.parametrize(
    ("mutation", "also"),
    [
        (_forward_elsewhere, set()),
        (_publish_on_another_bus, set()),
        (_publish_on_every_bus, {"wildcard_actions"}),
    ],
)
def test_put_events_reach_fails_on_a_member_mutation(
    fleet: SynthesizedFleet, mutation: Mutation, also: set[str]
) -> None:
    member, stack = next(iter(fleet.fleet_app.members.items()))
    template = copy.deepcopy(dict(fleet.templates[stack.node.path].to_json()))
    settings = dataclasses.replace(
        StackSettings.from_context(stack.node),
        central_bus_arn=fleet.fleet_app.fleet.central_bus_arn(),
    )
    mutation(template)
    found = review(template, settings, **member_arns(member.account, member.region))
    assert {name for name, f in found.items() if f} == {"put_events_reach", *also}


ORGANIZATION_FLEET = """\
version: 1
organizationId: o-a1b2c3d4e5
central: {account: "111111111111", region: us-east-1}
members: [{account: "222222222222", regions: [us-east-1]}]
"""


def test_the_organization_variant_passes_and_its_condition_is_checked() -> None:
    from aws_cdk import App, Environment, Stage
    from aws_cdk.assertions import Template as CdkTemplate

    from infra.central_stack import FleetCentralStack

    fleet = parse_fleet(ORGANIZATION_FLEET)
    stage = Stage(App(), "Central", env=Environment(account="111111111111", region="us-east-1"))
    template = dict(
        CdkTemplate.from_stack(FleetCentralStack(stage, "Fleet", fleet=fleet)).to_json()
    )
    assert {n: f for n, f in review_central(template, fleet).items() if f} == {}
    del the_bus_statement(template)["Condition"]
    found = review_central(template, fleet)
    assert {n for n, f in found.items() if f} == {"open_principals", "bus_admission"}
    # A wider condition (any organization id pattern) is not the organization.
    the_bus_statement(template)["Condition"] = {"StringLike": {"aws:PrincipalOrgID": "o-*"}}
    assert open_principals(template) != []
