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
from datetime import datetime
from typing import Any

from moto.core.utils import unix_time
from moto.events.models import events_backends
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

_ACCOUNT_FIELD = '"account": "<account>", '


def install() -> None:
    """Add `account` to the default template (idempotent)."""
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
