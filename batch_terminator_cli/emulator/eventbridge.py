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
import json
import re
import threading
from collections import deque
from collections.abc import Callable
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
# A CloudWatch Logs target is written only when the log group's account has CloudWatch Logs
# resource policies letting `events.amazonaws.com` call CreateLogStream and PutLogEvents on it for
# the rule, and denying neither ("For Amazon CloudWatch Logs resources, EventBridge uses
# resource-based policies", EventBridge user guide, "Using resource-based policies for Amazon
# EventBridge"), and when it is in the rule's own account and region. Both resource policies, the
# bus's and the log group's, are evaluated as IAM does (`_allowed` below).
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


def admits(policy: str | None, account_id: str, bus_arn: str | None = None) -> bool:
    """Whether an event bus's resource policy (JSON, None: no policy) lets `account_id` call
    PutEvents on it (the bus `bus_arn`; None: any `Resource` is taken to name it), evaluated as
    IAM evaluates a resource-based policy (see `_allowed`). The condition keys the emulator
    knows are `aws:PrincipalOrgID` (see `join_organization`), `aws:PrincipalAccount` and
    `aws:PrincipalIsAWSService`."""
    if not policy:
        return False
    request = _Request(
        action="events:PutEvents",
        resources=(bus_arn,) if bus_arn else (),
        principal=("AWS", account_id),
        context={
            "aws:principalorgid": _organizations.get(account_id),
            "aws:principalaccount": account_id,
            "aws:principalisawsservice": "false",
        },
    )
    return _allowed(_statements(policy), request)


# ---- resource-based policies, evaluated as IAM does ------------------------------------------------
#
# "Policy evaluation logic" (IAM user guide): a request is allowed when a statement that applies
# to it allows it and no statement that applies to it denies it: an explicit Deny overrides any
# Allow, and without an applicable Allow the request is implicitly denied. A statement applies
# when its Action (or NotAction), Principal (or NotPrincipal), Resource (or NotResource) and every
# condition match the request. Action names are case-insensitive and take the `*` and `?`
# wildcards ("IAM JSON policy elements: Action"); `Principal: "*"` and `{"AWS": "*"}` are
# everyone; NotPrincipal is everyone but the principals it names ("IAM JSON policy elements:
# NotPrincipal"). Conditions ("IAM JSON policy elements: Condition operators"): the operators of a
# statement, and the keys of an operator, must all match (AND); an operator's values are
# alternatives (OR); a key absent from the request makes a positive operator false and a negated
# one (StringNotEquals, ArnNotLike...) true, and makes an `...IfExists` operator true; ArnEquals
# and ArnLike compare each of the six colon-delimited parts of the ARN with wildcards.
#
# Where the emulator cannot evaluate a condition (an operator, set qualifier or key it does not
# know), it fails closed: such a Deny applies, such an Allow grants nothing.


@dataclass(frozen=True)
class _Request:
    """One call as a resource policy sees it: the action (`service:Name`), the resources it acts
    on (any may match; empty: every Resource element matches), the principal (`("AWS",
    account id)` or `("Service", service principal)`), and the condition keys the emulator knows
    (lower case), None for a key it knows to be absent from the request."""

    action: str
    resources: tuple[str, ...]
    principal: tuple[str, str]
    context: dict[str, str | None]


def _statements(document: str) -> list[dict[str, Any]]:
    statements = json.loads(document).get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else list(statements)
    return [statement for statement in statements if isinstance(statement, dict)]


def _allowed(statements: list[dict[str, Any]], request: _Request) -> bool:
    allowed = False
    for statement in statements:
        applies = _applies(statement, request)
        effect = statement.get("Effect")
        if effect == "Deny" and applies is not False:
            return False  # an explicit Deny wins; one the emulator cannot evaluate applies
        if effect == "Allow" and applies is True:
            allowed = True
    return allowed


def _applies(statement: dict[str, Any], request: _Request) -> bool | None:
    """True when the statement applies to the request, False when it does not, None when only a
    condition the emulator cannot evaluate decides."""
    if not (
        _element_matches(statement, "Action", request.action, _action_matches)
        and _principal_matches(statement, request.principal)
        and (
            not request.resources
            or any(
                _element_matches(statement, "Resource", resource, _resource_matches, default=True)
                for resource in request.resources
            )
        )
    ):
        return False
    condition = statement.get("Condition") or {}
    return _condition(condition, request.context) if isinstance(condition, dict) else None


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def _element_matches(
    statement: dict[str, Any],
    name: str,
    value: str,
    matches: Callable[[str, str], bool],
    *,
    default: bool = False,
) -> bool:
    """`Action`/`NotAction` (or `Resource`/`NotResource`) of the statement against `value`;
    `default` when the statement has neither."""
    if name in statement:
        return any(matches(pattern, value) for pattern in _values(statement[name]))
    if f"Not{name}" in statement:
        return not any(matches(pattern, value) for pattern in _values(statement[f"Not{name}"]))
    return default


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` any one character."""
    text = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(text, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _action_matches(pattern: str, action: str) -> bool:
    return _wildcard(pattern, action, ignore_case=True)


def _resource_matches(pattern: str, arn: str) -> bool:
    return _wildcard(pattern, arn)


def _principal_matches(statement: dict[str, Any], principal: tuple[str, str]) -> bool:
    if "Principal" in statement:
        return _names_principal(statement["Principal"], principal)
    if "NotPrincipal" in statement:
        return not _names_principal(statement["NotPrincipal"], principal)
    return False  # a resource-based policy statement names its principals


def _names_principal(element: Any, principal: tuple[str, str]) -> bool:
    if element == "*":
        return True
    if not isinstance(element, dict):
        return False
    kind, who = principal
    if "*" in _values(element.get("AWS", [])):
        return True
    for named in _values(element.get(kind, [])):
        if named == who:
            return True
        if kind == "AWS" and re.fullmatch(rf"arn:aws[a-z-]*:iam::{re.escape(who)}:root", named):
            return True
    return False


def _arn_like(pattern: str, arn: str) -> bool:
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(actual) == 6 and all(
        _wildcard(w, a) for w, a in zip(wanted, actual, strict=True)
    )


def _string_equals(wanted: str, actual: str) -> bool:
    return wanted == actual


def _string_equals_ignore_case(wanted: str, actual: str) -> bool:
    return wanted.casefold() == actual.casefold()


def _bool_equals(wanted: str, actual: str) -> bool:
    return wanted.lower() == actual.lower()


_POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringEqualsIgnoreCase": _string_equals_ignore_case,
    "StringLike": _wildcard,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": _bool_equals,
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition(condition: dict[str, Any], context: dict[str, str | None]) -> bool | None:
    """Whether a Condition element holds for the request: False when a test fails, else None
    when a test cannot be evaluated, else True."""
    verdict: bool | None = True
    for operator, tests in condition.items():
        base = operator.removesuffix("IfExists")
        negated = base in _NEGATED
        compare = _POSITIVE.get(_NEGATED.get(base, base))
        if compare is None or not isinstance(tests, dict):
            verdict = None  # an operator (or a ForAnyValue:/ForAllValues: set) not known here
            continue
        for key, wanted in tests.items():
            if key.lower() not in context:
                verdict = None  # a key the emulator does not know
                continue
            actual = context[key.lower()]
            if actual is None:
                holds = negated or base != operator
            else:
                found = any(compare(value, actual) for value in _values(wanted))
                holds = not found if negated else found
            if not holds:
                return False
    return verdict


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
    if arn.account != sender and not admits(bus.policy, sender, target["Arn"]):
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
    """Why EventBridge may not write to the log group `arn` for `rule`; None when it may.

    EventBridge creates a log stream and puts the event in it as `events.amazonaws.com`, for the
    rule (`aws:SourceArn`, `aws:SourceAccount`): the account's CloudWatch Logs resource policies,
    all together, must allow both calls on the group and deny neither (see `_allowed`)."""
    from moto.logs.models import logs_backends

    parsed = parse_arn(arn)
    if (parsed.account, parsed.region) != (rule.account_id, rule.region_name):
        return f"log group {arn} is not in the rule's account and region"
    backend = logs_backends[rule.account_id][rule.region_name]
    if parsed.resource_id not in backend.groups:
        return f"log group {parsed.resource_id} does not exist"
    statements = [
        statement
        for policy in list(backend.resource_policies.values())
        for statement in _statements(policy.policy_document)
    ]
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        request = _Request(
            action=action,
            # The group, and its streams (`<group ARN>:*`, as policies and CloudFormation's
            # `Arn` attribute name them).
            resources=(arn, f"{arn}:*"),
            principal=("Service", "events.amazonaws.com"),
            context={
                "aws:sourcearn": str(rule.arn),
                "aws:sourceaccount": str(rule.account_id),
                "aws:principalisawsservice": "true",
                "aws:principalorgid": None,
                "aws:principalaccount": None,
            },
        )
        if not _allowed(statements, request):
            return (
                f"the CloudWatch Logs resource policies do not let events.amazonaws.com call "
                f"{action} on {arn} for rule {rule.arn}"
            )
    return None


def _log_group_without_suffix(target: dict[str, Any]) -> dict[str, Any]:
    arn = str(target["Arn"])
    if arn.startswith("arn:") and ":logs:" in arn and arn.endswith(":*"):
        return {**target, "Arn": arn[:-2]}
    return target


def _is_bus(arn: str) -> bool:
    parsed = parse_arn(arn)
    return bool(parsed.service == "events" and parsed.resource_type == "event-bus")
