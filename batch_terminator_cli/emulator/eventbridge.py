"""moto's EventBridge, made to deliver events with every field real EventBridge sends.

moto builds the event it delivers to an SQS target from a default input template that leaves out
`account`. Every EventBridge event carries it ("Amazon EventBridge events" in the EventBridge
user guide: version, id, detail-type, source, account, time, region, resources, detail), and the
terminator rejects envelopes of another account, so the emulator must send it too.
"""

from __future__ import annotations

from moto.events.utils import EventTemplateParser

_ACCOUNT_FIELD = '"account": "<account>", '


def install() -> None:
    """Add `account` to the default template (idempotent)."""
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"source": "<source>", ', f'"source": "<source>", {_ACCOUNT_FIELD}'
        )
