"""The pause switch: one item in the ledger table that stops every policy path without a deploy.

The item is keyed `control#pause` (the ledger's key space: `message#…`, `termination#…`,
`cap#…`, `brake#…`; none of them can collide). It exists only while the system is
paused, and carries who paused it, when (seconds since the epoch, UTC) and why. It has no TTL:
a pause lasts until `resume` deletes it.

While paused, the sweeper and the brake do not run (one `paused` line each, a summary saying
so, no brake claim taken: a transition that arrives while paused is never braked later; an alarm
still in ALARM after `resume` brakes on its next transition). The terminator skips every request
that a policy path sent (`source` other than `request`, or a `policy` key), requests queued
before the pause included, with `skip_reason: paused`, one line per job it names. Requests
people send go on: pausing the policies must never stop an operator from stopping a job by hand.
The deadline function keeps scheduling, so a deadline that falls after `resume` still fires; one
that fires while paused is skipped, and the next sweep after `resume` judges that job again.

Each invocation reads the switch once, strongly consistent (GetItem ConsistentRead): the sweeper
and the brake before anything else, the terminator when its batch holds a policy-sourced
request. So a `pause` is in force for every read after the CLI's write returns. If the switch
cannot be read, the policy paths fail closed: a sweep or a brake fails (its retries, then its
failure queue), a policy-sourced request fails and is delivered again; people's requests go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

PAUSE_KEY: Final = "control#pause"


# The latest `pausedAt` that is a time: 9999-12-31T23:59:59Z, the last second Python's datetime
# (and so the CLI) can show.
MAX_PAUSED_AT: Final = 253_402_300_799


@dataclass(frozen=True)
class Pause:
    """The system is paused: by whom (an IAM ARN or a name), since when (s since epoch, UTC), why.

    `paused_at` is None when the item's `pausedAt` is missing or not a time. `malformed` says, in
    one line, what of a hand-written item could not be read (None for an item `write_pause`
    wrote); such an item is in force all the same."""

    paused_by: str
    paused_at: int | None
    reason: str
    malformed: str | None = None


def read_pause(client: Any, table: str) -> Pause | None:
    """The pause in force, or None. `client` is a boto3 DynamoDB client.

    Any item under the key is a pause in force (fail closed): anyone with access to the table
    can write it, so a malformed one is read as far as it can be (`pause_from_item`) and never
    raises. Raises botocore's ClientError / BotoCoreError when the table cannot be read: callers
    decide whether that fails closed (the policy paths do: they do not act while they cannot
    know).
    """
    response = client.get_item(TableName=table, Key={"pk": {"S": PAUSE_KEY}}, ConsistentRead=True)
    item = response.get("Item")
    if item is None:
        return None
    return pause_from_item(item)


def pause_from_item(item: Any) -> Pause:
    """The pause an item says (DynamoDB's typed attribute values: `{"S": ...}`, `{"N": ...}`),
    whatever it holds: `pausedBy` and `reason` must be strings, `pausedAt` a whole number of
    seconds since the epoch up to MAX_PAUSED_AT. What is missing takes a default ("unknown", no
    time, ""), what is malformed too, and is named in `malformed`. Never raises."""
    problems: list[str] = []
    attributes = item if isinstance(item, dict) else {}
    if not isinstance(item, dict):
        problems.append("the item is not a map")

    def text(name: str, default: str, required: bool) -> str:
        value = attributes.get(name)
        if value is None:
            if required:
                problems.append(f"{name} missing")
            return default
        if isinstance(value, dict) and isinstance(value.get("S"), str):
            return str(value["S"])
        problems.append(f"{name} is not a string")
        return default

    paused_by = text("pausedBy", "unknown", required=True)
    reason = text("reason", "", required=False)
    paused_at: int | None = None
    value = attributes.get("pausedAt")
    number = value.get("N") if isinstance(value, dict) else None
    if value is None:
        problems.append("pausedAt missing")
    elif not isinstance(number, str):
        problems.append("pausedAt is not a number")
    else:
        paused_at = _seconds(number)
        if paused_at is None:
            shown = number if len(number) <= 40 else number[:39] + "\u2026"
            problems.append(f"pausedAt {shown!r} is not a time (whole seconds since the epoch)")
    return Pause(
        paused_by=paused_by,
        paused_at=paused_at,
        reason=reason,
        malformed="; ".join(problems) or None,
    )


def _seconds(number: str) -> int | None:
    # A DynamoDB number is at most 38 digits; anything longer or not a whole number is no time.
    text = number.strip()
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 38:
        return None
    seconds = int(text)
    return seconds if 0 <= seconds <= MAX_PAUSED_AT else None


def write_pause(client: Any, table: str, pause: Pause) -> None:
    """Pause every policy path (overwrites an earlier pause, malformed or not). Raises botocore
    errors."""
    item: dict[str, Any] = {
        "pk": {"S": PAUSE_KEY},
        "pausedBy": {"S": pause.paused_by},
        "reason": {"S": pause.reason},
    }
    if pause.paused_at is not None:
        item["pausedAt"] = {"N": str(pause.paused_at)}
    client.put_item(TableName=table, Item=item)


def clear_pause(client: Any, table: str) -> bool:
    """Resume: delete the pause. True if there was one. Raises botocore errors."""
    response = client.delete_item(
        TableName=table, Key={"pk": {"S": PAUSE_KEY}}, ReturnValues="ALL_OLD"
    )
    return bool(response.get("Attributes"))
