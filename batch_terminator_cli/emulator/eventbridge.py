"""moto's EventBridge, made to deliver events with every field real EventBridge sends, and to
take the events AWS services send.

moto builds the event it delivers to an SQS target from a default input template that leaves out
`account`. Every EventBridge event carries it ("Amazon EventBridge events" in the EventBridge
user guide: version, id, detail-type, source, account, time, region, resources, detail), and the
terminator rejects envelopes of another account, so the emulator must send it too.

`deliver` is how an emulated AWS service (Batch, see `batch_events.py`) puts its event on the
default bus: the event keeps the id and time it was given (PutEvents would assign its own id,
and refuses `aws.*` sources), and each enabled rule whose pattern matches routes it to its
targets with moto's own matching and delivery.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.core.utils import unix_time
from moto.events.models import Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

_ACCOUNT_FIELD = '"account": "<account>", '


def install() -> None:
    """Add `account` to the default template, and deliver to event-bus targets as EventBridge
    does, across accounts and regions (idempotent)."""
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"source": "<source>", ', f'"source": "<source>", {_ACCOUNT_FIELD}'
        )


def deliver(account_id: str, region: str, event: dict[str, Any]) -> list[str]:
    """Route `event` (a whole envelope, `time` in ISO 8601) through the default bus's rules.

    Disabled rules do not match ("a rule that's disabled doesn't match any events", EventBridge
    user guide, "Rules in Amazon EventBridge"). Returns the rules whose delivery failed, with
    the error: moto raises for target types it cannot deliver to, and the sending service never
    sees a target's failure.
    """
    bus = events_backends[account_id][region].event_buses.get("default")
    if bus is None:
        return []
    message: dict[str, Any] = copy.deepcopy(event)
    # moto's rules take `time` as seconds since the epoch and print it back in ISO 8601 (to the
    # second) when they deliver; its input templates also read `ingestion-time`.
    message["time"] = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    message["ingestion-time"] = unix_time()
    failed: list[str] = []
    for rule in list(bus.rules.values()):
        if rule.state != "ENABLED":
            continue
        try:
            _send(rule, message, event)
        except Exception as exc:  # any target's failure stays EventBridge's
            failed.append(f"{rule.name}: {exc!r}")
    return failed


def _send(rule: Any, message: dict[str, Any], event: dict[str, Any]) -> None:
    """moto's delivery, without its input template where a target takes the whole event: an
    SQS target with no Input, InputPath or InputTransformer gets the event as it is (moto would
    rebuild it with eight JSONPath parses per delivery, the same JSON more slowly)."""
    targets = list(rule.targets)
    plain = all(
        parse_arn(target["Arn"]).service == "sqs"
        and not {"Input", "InputPath", "InputTransformer"} & set(target)
        for target in targets
    )
    if not plain:
        rule.send_to_targets(message)
        return
    if not targets or not rule.event_pattern.matches_event(message):
        return
    for target in targets:
        group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
        # moto's own SQS delivery (it prints `time` back in ISO 8601).
        delivered = dict(event, time=message["time"])
        rule._send_to_sqs_queue(parse_arn(target["Arn"]).resource_id, delivered, group_id)


# ---- event buses as targets: across accounts and regions -----------------------------------------
#
# moto re-sends an event for an event-bus target with a new PutEvents in the target bus's account:
# the event loses its `account`, `region`, `id`, `time` and `resources`, and no resource policy is
# read. Real EventBridge ("Sending and receiving events between AWS accounts in Amazon
# EventBridge", EventBridge user guide):
#
# - the receiving bus's resource-based policy must admit the sender: an account (its id or
#   `arn:aws:iam::<id>:root`), or an organization with the condition `aws:PrincipalOrgID`;
#   otherwise the event is not delivered (the rule's invocation fails, counted in its
#   FailedInvocations metric; the sender's PutEvents still succeeded);
# - an event received from another account is not sent on to a third ("If a receiver account
#   sets up a rule that sends events received from a sender account on to a third account,
#   these events are not sent to the third account");
# - the event arrives whole: the rules of the receiving bus see the sender's `account`,
#   `region`, `id`, `time` and `resources` (a central bus tells its members' events apart by
#   them), across regions too ("Sending and receiving events between AWS Regions").
#
# A CloudWatch Logs target is written only when the log group's account has a CloudWatch Logs
# resource policy letting `events.amazonaws.com` call PutLogEvents on it ("For Amazon CloudWatch
# Logs resources, EventBridge uses resource-based policies", EventBridge user guide, "Using
# resource-based policies for Amazon EventBridge"), and when it is in the rule's own account and
# region.
#
# `refused` keeps the deliveries EventBridge did not make, for tests and the demo.


@dataclass(frozen=True)
class FailedInvocation:
    """A rule's delivery to an event bus that did not happen: the rule's ARN, the target bus's
    ARN, the account whose event it was, and why."""

    rule_arn: str
    target_arn: str
    account: str
    reason: str


refused: deque[FailedInvocation] = deque(maxlen=10_000)
# Organization ids of emulated accounts (AWS Organizations is not emulated): account -> o-…
_organizations: dict[str, str] = {}
_lock = threading.Lock()


def join_organization(account_id: str, organization_id: str) -> None:
    """Make `account_id` a member of `organization_id`, as `aws:PrincipalOrgID` sees it."""
    with _lock:
        _organizations[account_id] = organization_id


def leave_organizations() -> None:
    """Forget every membership (a new emulator)."""
    with _lock:
        _organizations.clear()


def admits(policy: str | None, account_id: str) -> bool:
    """Whether an event bus's resource policy (JSON, None: no policy) lets `account_id` call
    PutEvents on it. An explicit Deny wins over any Allow; a statement whose condition the
    emulator cannot evaluate grants nothing (only `aws:PrincipalOrgID` and
    `aws:PrincipalAccount` with StringEquals are understood)."""
    if not policy:
        return False
    statements = json.loads(policy).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    applies = [s for s in statements if _covers(s, account_id)]
    if any(s.get("Effect") == "Deny" for s in applies):
        return False
    return any(s.get("Effect") == "Allow" for s in applies)


def _covers(statement: dict[str, Any], account_id: str) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else list(actions)
    if not any(a in ("events:PutEvents", "events:*", "*") for a in actions):
        return False
    principal = statement.get("Principal")
    if principal != "*":
        named = (principal or {}).get("AWS", []) if isinstance(principal, dict) else []
        named = [named] if isinstance(named, str) else list(named)
        if not any(p in ("*", account_id, f"arn:aws:iam::{account_id}:root") for p in named):
            return False
    return _condition_holds(statement.get("Condition") or {}, account_id)


def _condition_holds(condition: dict[str, Any], account_id: str) -> bool:
    facts = {
        "aws:principalorgid": _organizations.get(account_id),
        "aws:principalaccount": account_id,
    }
    for operator, tests in condition.items():
        if operator != "StringEquals":
            return False
        for key, wanted in tests.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if key.lower() not in facts or facts[key.lower()] not in values:
                return False
    return True


def _forward(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
    """Deliver `event` (moto's rule message: `time` in seconds) to the event bus `target` names,
    or record why EventBridge would not."""
    arn = parse_arn(target["Arn"])
    sender = str(event.get("account") or rule.account_id)

    def refuse(reason: str) -> None:
        refused.append(FailedInvocation(rule.arn, target["Arn"], sender, reason))

    if rule.account_id not in (sender, arn.account):
        refuse("an event received from another account is not sent on to a third")
        return
    bus = events_backends[arn.account][arn.region].event_buses.get(arn.resource_id)
    if bus is None:
        refuse(f"event bus {arn.resource_id} does not exist in {arn.account} {arn.region}")
        return
    if arn.account != sender and not admits(bus.policy, sender):
        refuse(f"the resource policy of event bus {target['Arn']} does not admit {sender}")
        return
    for receiving in list(bus.rules.values()):
        if receiving.state == "ENABLED":
            receiving.send_to_targets(copy.deepcopy(event))  # type: ignore[arg-type]


_original_send_to_targets = Rule.send_to_targets


def _send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    """moto's delivery, with event-bus targets delivered as EventBridge does (see above), and
    log-group targets written only where EventBridge may write (a log group named by its ARN
    with the `:*` suffix CloudFormation's `Arn` attribute carries, as the CDK's
    CloudWatchLogGroup target names it, is that log group)."""
    targets = [_log_group_without_suffix(t) for t in self.targets]
    buses = [t for t in targets if _is_bus(t["Arn"])]
    groups = [t for t in targets if _is_log_group(t["Arn"])]
    if not buses and not groups:
        _original_send_to_targets(self, original_event, transform_input)
        return
    if not self.event_pattern.matches_event(original_event):
        return
    for target in buses:
        _forward(self, target, dict(original_event))
    sender = str(original_event.get("account") or self.account_id)
    others = []
    for given, target in zip(self.targets, targets, strict=True):
        if _is_bus(target["Arn"]):
            continue
        if _is_log_group(target["Arn"]):
            why = _log_group_refuses(self, target["Arn"])
            if why is not None:
                refused.append(FailedInvocation(self.arn, given["Arn"], sender, why))
                continue
        others.append(target)
    if others:
        rest = copy.copy(self)
        rest.targets = others
        _original_send_to_targets(rest, original_event, transform_input)


def _is_log_group(arn: str) -> bool:
    parsed = parse_arn(arn)
    return bool(parsed.service == "logs" and parsed.resource_type == "log-group")


def _log_group_refuses(rule: Any, arn: str) -> str | None:
    """Why EventBridge may not write to the log group `arn` for `rule`; None when it may."""
    from moto.logs.models import logs_backends

    parsed = parse_arn(arn)
    if (parsed.account, parsed.region) != (rule.account_id, rule.region_name):
        return f"log group {arn} is not in the rule's account and region"
    backend = logs_backends[rule.account_id][rule.region_name]
    if parsed.resource_id not in backend.groups:
        return f"log group {parsed.resource_id} does not exist"
    for policy in list(backend.resource_policies.values()):
        statements = json.loads(policy.policy_document).get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if _lets_events_write(statement, arn):
                return None
    return f"no CloudWatch Logs resource policy lets events.amazonaws.com write to {arn}"


def _lets_events_write(statement: dict[str, Any], arn: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal") or {}
    services = ["events.amazonaws.com"] if principal == "*" else principal.get("Service", [])
    services = [services] if isinstance(services, str) else list(services)
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else list(actions)
    resources = statement.get("Resource", [])
    resources = [resources] if isinstance(resources, str) else list(resources)
    return (
        "events.amazonaws.com" in services
        and any(a in ("logs:PutLogEvents", "logs:*", "*") for a in actions)
        and any(
            fnmatch.fnmatchcase(arn, r) or fnmatch.fnmatchcase(f"{arn}:*", r) for r in resources
        )
    )


def _log_group_without_suffix(target: dict[str, Any]) -> dict[str, Any]:
    arn = str(target["Arn"])
    if arn.startswith("arn:") and ":logs:" in arn and arn.endswith(":*"):
        return {**target, "Arn": arn[:-2]}
    return target


def _is_bus(arn: str) -> bool:
    parsed = parse_arn(arn)
    return bool(parsed.service == "events" and parsed.resource_type == "event-bus")
