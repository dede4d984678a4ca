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


@dataclass(frozen=True)
class Pause:
    """The system is paused: by whom (an IAM ARN or a name), since when (s since epoch, UTC), why."""

    paused_by: str
    paused_at: int
    reason: str


def read_pause(client: Any, table: str) -> Pause | None:
    """The pause in force, or None. `client` is a boto3 DynamoDB client.

    Raises botocore's ClientError / BotoCoreError when the table cannot be read: callers decide
    whether that fails closed (the policy paths do: they do not act while they cannot know).
    """
    response = client.get_item(TableName=table, Key={"pk": {"S": PAUSE_KEY}}, ConsistentRead=True)
    item = response.get("Item")
    if not item:
        return None
    return Pause(
        paused_by=item.get("pausedBy", {}).get("S", "unknown"),
        paused_at=int(item.get("pausedAt", {}).get("N", "0")),
        reason=item.get("reason", {}).get("S", ""),
    )


def write_pause(client: Any, table: str, pause: Pause) -> None:
    """Pause every policy path (overwrites an earlier pause). Raises botocore errors."""
    client.put_item(
        TableName=table,
        Item={
            "pk": {"S": PAUSE_KEY},
            "pausedBy": {"S": pause.paused_by},
            "pausedAt": {"N": str(pause.paused_at)},
            "reason": {"S": pause.reason},
        },
    )


def clear_pause(client: Any, table: str) -> bool:
    """Resume: delete the pause. True if there was one. Raises botocore errors."""
    response = client.delete_item(
        TableName=table, Key={"pk": {"S": PAUSE_KEY}}, ReturnValues="ALL_OLD"
    )
    return bool(response.get("Attributes"))
