"""The request ledger: what the terminator must remember about an SQS message across deliveries.

One DynamoDB item per request, written only when a request needs it, keyed
`message#<messageId>`: SQS keeps a message's id across redeliveries. A redrive from the DLQ
gives the message a new id ("all redriven messages are considered new messages and are assigned
a new messageID", SQS developer guide, dead-letter queue redrive), so the terminator moves a
request that still fails on its last delivery to the DLQ itself, with its key in the message
attribute `ledgerKey`; a redriven request resumes from that item, if the item's `requestHash` is
the hash of the very same request. The same request sent again is a new request.

- `picks`: the jobs a selector request expanded to. A selector is expanded once, however often
  its message is delivered, so its `limit` holds across deliveries and a redelivery never picks
  new jobs. Written with a condition, so concurrent deliveries agree on the first expansion.
- `settled`: jobs whose outcome is final for this message (terminated or skipped). A redelivery
  acts only on what is still open, and writes no second outcome for a settled job.
- `attempted`: jobs whose termination call may have acted without saying so (a timeout, a 5xx).
  If a redelivery finds such a job stopped with our reason, that was our call.
- `failed`: jobs that had a `failed` line: a redelivery gives each of them a line, even if it
  has finished meanwhile (an array's child, say).

Job ids are stored compactly (`encode_ids`: an array's children as index ranges).

Items expire (`expiresAt`, DynamoDB TTL) once the request can no longer be delivered or redriven.
Calls are retried by botocore (standard mode, throttling included). If the table still cannot be
read or written, a by-id request goes on without it: a redelivery may then judge again a job this
request already settled (a second line, `skipped: already terminating`), never act on it again.
A selector request is retried instead, since expanding it again could exceed its limit.

Termination claims (`termination#<jobId>`) make one call per job across invocations. SQS may
deliver a message twice, even to two invocations at once, and two different requests may name
the same job (a person's and a deadline's, the sweep's and a brake's): each may read the job as
RUNNING before either calls. So before its TerminateJob(s) call an invocation claims every job
the call names, with one conditional UpdateItem per job (`claim_termination`):

- `claimed`: in flight. It names its owner (one invocation's token), the message and the
  request, the job's attempt, and `leaseUntil` (ms since the epoch, UTC): the end of the owner's
  invocation, after which the owner can no longer call.
- `accepted`: TerminateJob(s) accepted it. The owner's termination record (`record_terminations`)
  replaces the claim; the deadline function confirms it when the job's FAILED event arrives.
- `uncertain`: the owner's call failed in a way that may have acted (a timeout, a 5xx), at
  `claimedAt`. The claim is kept rather than given back, so no other request calls on a view of
  the job older than that call.
- A call that failed for sure (a throttle past its retries, an `errors[]` entry), or that was
  never made (the function's time ran low), gives its claim back (`release_termination`).

A claim is taken when there is none, when it is of an earlier attempt of the job, when it was
given back, or when its holder can no longer have acted unseen: an in-flight claim whose lease
ended, or an uncertain one, before the claimer read the job (`described_at_ms`): Batch shows a
termination at once (`isTerminated`), so a job read after the call is judged on what it did.
Otherwise the claimer does not call: an accepted claim gives `skipped: already terminated by
request …`; a claim that another invocation holds, or one that ended after the claimer read the
job, fails that job (SQS delivers it again, and the next delivery reads the job anew).

A confirmation (a redelivery finds a job its earlier call may have stopped, stopped with the
request's reason) claims the job too, so that one request keeps the only `terminated` line; but
a reason says nothing of who stopped the job, so a confirmation takes only what no other
request's call can have done (`claim_termination(confirming=True)`):

| the claim it finds | the confirmation |
|---|---|
| none (never taken, or given back), or of an earlier attempt | takes it: `terminated` |
| this message's, uncertain, or a call's in flight by a delivery whose lease ended | takes it: `terminated` |
| this message's confirmation, by a delivery whose lease ended | `skipped: already terminated by request …` (that delivery wrote its line before its record) |
| in flight by an invocation still running (this message's or another's) | fails: delivered again |
| accepted (any request's, this message's included) | `skipped: already terminated by request …` |
| another request's, in flight with its lease ended, or uncertain: it may have made the call | `skipped: already terminated by request …` (never taken over) |
| of a later attempt than the one read | fails: delivered again |

So two requests with the same reason never both write `terminated`: the one whose claim is on
the item is the one named; when that claim's call in fact did not act (it was never sent, or
failed for sure and could not give its claim back), the line still names it.

The window: a claim or record lives as long as every other ledger item (`expiresAt`, the
terminator's ledger TTL, 19 days by default). After it, Batch reports the job finished (or still
`isTerminated` while it stops), and the terminator skips it on that ground before any claim.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

BATCH_GET_MAX_KEYS: Final = 100
BATCH_WRITE_MAX_ITEMS: Final = 25
# Brake picks (12-character hashes and a space) per ledger item.
_PICKS_PER_ITEM: Final = 20_000
# Unprocessed keys of BatchGetItem are asked for again this many times.
_BATCH_GET_ATTEMPTS: Final = 3


class LedgerUnavailable(Exception):
    """The ledger could not be read or written."""


@dataclass(frozen=True)
class MessageState:
    picks: tuple[str, ...] | None = None
    settled: frozenset[str] = field(default_factory=frozenset)
    attempted: frozenset[str] = field(default_factory=frozenset)
    # Jobs that had `failed` lines: a redelivery must give each of them a line.
    failed: frozenset[str] = field(default_factory=frozenset)
    request_hash: str | None = None


LEDGER_KEY: Final = re.compile(r"message#[A-Za-z0-9-]{1,128}")


def ledger_key(message_id: str) -> str:
    """The ledger key of the request a message carries (see the module docstring)."""
    return f"message#{message_id}"


def request_hash(request_json: str) -> str:
    """What ties a ledger item to its request: the hash of the request in canonical form."""
    # surrogatepass: the same bytes as UTF-8 for any text, and no error for one that is not
    # Unicode (bodies refuse it before this; the key must never be what fails a batch).
    return hashlib.sha256(request_json.encode("utf-8", "surrogatepass")).hexdigest()


def _key(key: str) -> dict[str, Any]:
    return {"pk": {"S": key}}


def encode_ids(job_ids: Iterable[str]) -> list[str]:
    """Job ids in few, short set members: an array's children as index ranges
    (`uuid:0-4999,5001`) or, when shorter, as a bitmap (`uuid:~<base64>`), so that even 10,000
    scattered children take under 2 KB, far below DynamoDB's 400 KB item."""
    plain: set[str] = set()
    children: dict[str, set[int]] = defaultdict(set)
    for job_id in job_ids:
        parent, _, position = job_id.partition(":")
        if position.isascii() and position.isdigit():
            children[parent].add(int(position))
        else:
            plain.add(job_id)
    encoded = sorted(plain)
    for parent, indexes in sorted(children.items()):
        encoded.append(f"{parent}:{_shorter(sorted(indexes))}")
    return encoded


def _shorter(ordered: list[int]) -> str:
    runs: list[str] = []
    first = last = ordered[0]
    for index in ordered[1:]:
        if index == last + 1:
            last = index
            continue
        runs.append(str(first) if first == last else f"{first}-{last}")
        first = last = index
    runs.append(str(first) if first == last else f"{first}-{last}")
    ranges = ",".join(runs)
    bitmap = bytearray(ordered[-1] // 8 + 1)
    for index in ordered:
        bitmap[index // 8] |= 1 << (index % 8)
    packed = "~" + base64.b64encode(bytes(bitmap)).decode()
    return packed if len(packed) < len(ranges) else ranges


def decode_ids(members: Iterable[str]) -> frozenset[str]:
    """The job ids `encode_ids` wrote."""
    found: set[str] = set()
    for member in members:
        parent, _, runs = member.partition(":")
        if not runs:
            found.add(member)
        elif runs.startswith("~"):
            bitmap = base64.b64decode(runs[1:])
            found.update(
                f"{parent}:{byte * 8 + bit}"
                for byte, value in enumerate(bitmap)
                for bit in range(8)
                if value >> bit & 1
            )
        else:
            for run in runs.split(","):
                first, _, last = run.partition("-")
                found.update(f"{parent}:{i}" for i in range(int(first), int(last or first) + 1))
    return frozenset(found)


def _state(item: dict[str, Any]) -> MessageState:
    picks = item.get("picks", {}).get("L")
    return MessageState(
        picks=tuple(p["S"] for p in picks) if picks is not None else None,
        settled=decode_ids(item.get("settled", {}).get("SS", [])),
        attempted=decode_ids(item.get("attempted", {}).get("SS", [])),
        failed=decode_ids(item.get("failed", {}).get("SS", [])),
        request_hash=item.get("requestHash", {}).get("S"),
    )


@dataclass(frozen=True)
class TerminationRecord:
    """A termination the terminator made: TerminateJob(s) accepted it at `accepted_at_ms` (ms
    since the epoch, UTC). Keyed `termination#<jobId>`, so the job's FAILED event finds it; it
    is also the job's accepted claim (`owner`, `message_id` and `attempt` as claimed)."""

    job_id: str
    accepted_at_ms: int
    policy: str | None
    request_id: str | None
    source: str | None = None
    message_id: str | None = None
    owner: str | None = None
    attempt: int | None = None


def termination_key(job_id: str) -> str:
    return f"termination#{job_id}"


CLAIMED: Final = "claimed"
ACCEPTED: Final = "accepted"
UNCERTAIN: Final = "uncertain"


def _termination_item(record: TerminationRecord, expires_at: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": termination_key(record.job_id)},
        "jobId": {"S": record.job_id},
        "acceptedAt": {"N": str(record.accepted_at_ms)},
        "expiresAt": expires_at,
        "claim": {"S": ACCEPTED},
    }
    for name, value in (
        ("policy", record.policy),
        ("requestId", record.request_id),
        ("source", record.source),
        ("messageId", record.message_id),
        ("owner", record.owner),
    ):
        if value:
            item[name] = {"S": value}
    if record.attempt is not None:
        item["attempt"] = {"N": str(record.attempt)}
    return item


@dataclass(frozen=True)
class ClaimHolder:
    """Who claims a job's termination: `owner` is one invocation's token (unique per
    invocation: two deliveries of one message are two owners); `message_id` and `request_id`
    name the request in other requests' lines."""

    owner: str
    message_id: str
    request_id: str | None = None

    @property
    def name(self) -> str:
        """How another request's audit line names this one."""
        if self.request_id:
            return f"{self.request_id} (message {self.message_id})"
        return f"message {self.message_id}"


@dataclass(frozen=True)
class TerminationClaim:
    """The answer to a claim: `ours` (call), `accepted` (another request's call was accepted:
    skip), `held` (another invocation holds it now: deliver again), `stale_view` (its holder may
    have acted after this invocation read the job: deliver again). `holder` names the other
    request when known."""

    job_id: str
    state: str
    holder: str | None = None


@dataclass(frozen=True)
class ClaimWanted:
    """One claim to take: the job, its current attempt (0 for the first), and when the claimer
    read the job (ms since the epoch, UTC)."""

    job_id: str
    attempt: int
    described_at_ms: int


@dataclass(frozen=True)
class Transition:
    """A claim on an alarm transition: `new` (ours, first), `ours` (our earlier attempt's, or
    one given back or abandoned, with the jobs it picked if it got that far), `done` (braked),
    `busy` (another invocation is braking it now)."""

    state: str
    picks: str | None = None


class Ledger:
    """DynamoDB-backed; `client` is a boto3 DynamoDB client, `ttl_seconds` how long items live."""

    def __init__(self, client: Any, table: str, ttl_seconds: int) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_seconds
        self.calls = 0

    def _expires_at(self) -> dict[str, str]:
        return {"N": str(int(time.time()) + self._ttl_seconds)}

    def load(self, keys: Sequence[str]) -> dict[str, MessageState]:
        """The state of each request that has one, by ledger key. Raises LedgerUnavailable."""
        found: dict[str, MessageState] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            pending = [_key(k) for k in unique[start : start + BATCH_GET_MAX_KEYS]]
            for _ in range(_BATCH_GET_ATTEMPTS):
                response = self._request(
                    self._client.batch_get_item,
                    RequestItems={self._table: {"Keys": pending, "ConsistentRead": True}},
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    found[item["pk"]["S"]] = _state(item)
                unprocessed = response.get("UnprocessedKeys", {}).get(self._table, {})
                pending = list(unprocessed.get("Keys", []))
                if not pending:
                    break
            if pending:
                raise LedgerUnavailable(f"{len(pending)} ledger keys stayed unprocessed")
        return found

    def record_picks(self, key: str, picks: Sequence[str], hashed: str) -> tuple[str, ...]:
        """Store a selector's expansion unless one is stored already; returns the stored one.
        `hashed` is the request's `request_hash`. Raises LedgerUnavailable."""
        written = self._conditional(
            self._client.update_item,
            TableName=self._table,
            Key=_key(key),
            UpdateExpression=(
                "SET picks = :picks, expiresAt = :expires, "
                "requestHash = if_not_exists(requestHash, :hash)"
            ),
            ConditionExpression="attribute_not_exists(picks)",
            ExpressionAttributeValues={
                ":picks": {"L": [{"S": p} for p in picks]},
                ":expires": self._expires_at(),
                ":hash": {"S": hashed},
            },
        )
        if written is not None:
            return tuple(picks)
        stored = self.load([key]).get(key)
        if stored is None or stored.picks is None:
            raise LedgerUnavailable("the stored expansion could not be read back")
        return stored.picks

    def settle(
        self,
        key: str,
        hashed: str,
        settled: Iterable[str],
        attempted: Iterable[str] = (),
        failed: Iterable[str] = (),
    ) -> None:
        """Add jobs to the request's settled, attempted and failed sets; `hashed` is the
        request's `request_hash`. Raises LedgerUnavailable."""
        sets = {
            "settled": encode_ids(settled),
            "attempted": encode_ids(attempted),
            "failed": encode_ids(failed),
        }
        given = {name: values for name, values in sets.items() if values}
        if not given:
            return
        self._request(
            self._client.update_item,
            TableName=self._table,
            Key=_key(key),
            UpdateExpression="ADD "
            + ", ".join(f"{name} :{name}" for name in given)
            + " SET expiresAt = :expires, requestHash = if_not_exists(requestHash, :hash)",
            ExpressionAttributeValues={
                **{f":{name}": {"SS": values} for name, values in given.items()},
                ":expires": self._expires_at(),
                ":hash": {"S": hashed},
            },
        )

    def record_terminations(self, records: Sequence[TerminationRecord]) -> None:
        """Remember terminations for their confirmation (25 items a BatchWriteItem; a job
        terminated again replaces its record). Raises LedgerUnavailable."""
        expires = self._expires_at()
        items = [
            {"PutRequest": {"Item": _termination_item(r, expires)}}
            for r in {r.job_id: r for r in records}.values()
        ]
        for start in range(0, len(items), BATCH_WRITE_MAX_ITEMS):
            pending = items[start : start + BATCH_WRITE_MAX_ITEMS]
            for _ in range(_BATCH_GET_ATTEMPTS):
                response = self._request(
                    self._client.batch_write_item, RequestItems={self._table: pending}
                )
                pending = list(response.get("UnprocessedItems", {}).get(self._table, []))
                if not pending:
                    break
            if pending:
                raise LedgerUnavailable(f"{len(pending)} termination records stayed unwritten")

    def confirm_termination(self, job_id: str, stopped_at_ms: int) -> TerminationRecord | None:
        """Mark a recorded termination confirmed, once: its record, or None when the job was
        not terminated by us or is confirmed already. Raises LedgerUnavailable."""
        response = self._conditional(
            self._client.update_item,
            TableName=self._table,
            Key=_key(termination_key(job_id)),
            UpdateExpression="SET confirmedAt = :stopped",
            # Only an accepted termination: a claim still in flight or uncertain is none yet.
            ConditionExpression=(
                "attribute_exists(acceptedAt) AND attribute_not_exists(confirmedAt)"
            ),
            ExpressionAttributeValues={":stopped": {"N": str(stopped_at_ms)}},
            ReturnValues="ALL_NEW",
        )
        if response is None:
            return None
        item = response.get("Attributes", {})
        return TerminationRecord(
            job_id=job_id,
            accepted_at_ms=int(item["acceptedAt"]["N"]),
            policy=item.get("policy", {}).get("S"),
            request_id=item.get("requestId", {}).get("S"),
            source=item.get("source", {}).get("S"),
        )

    def claim_termination(
        self,
        wanted: ClaimWanted,
        holder: ClaimHolder,
        lease_until_ms: int,
        *,
        confirming: bool = False,
    ) -> TerminationClaim:
        """Claim the termination of one job before calling (see the module docstring): one
        conditional UpdateItem; a lost claim's holder comes back with the failed condition
        (ReturnValuesOnConditionCheckFailure, so no second read). `lease_until_ms`: when the
        claimer's invocation ends (ms since the epoch, UTC). `confirming`: the claim of a
        confirmation (an earlier call of this message may have stopped the job), which takes
        only a claim of this message or none (see the module docstring). Raises
        LedgerUnavailable."""
        now_ms = int(time.time() * 1000)
        condition = _CONFIRM_CONDITION if confirming else _CALL_CONDITION
        try:
            self._request(
                self._client.update_item,
                TableName=self._table,
                Key=_key(termination_key(wanted.job_id)),
                UpdateExpression=(
                    "SET #claim = :claimed, #owner = :owner, messageId = :message, "
                    "attempt = :attempt, claimedAt = :now, leaseUntil = :lease, "
                    "jobId = :job, expiresAt = :expires"
                    + (", requestId = :request" if holder.request_id else "")
                    + (", #confirming = :now" if confirming else "")
                    + " REMOVE acceptedAt, confirmedAt, policy, #source"
                    + ("" if holder.request_id else ", requestId")
                    + ("" if confirming else ", #confirming")
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    "#claim": "claim",
                    "#owner": "owner",
                    "#source": "source",
                    # When a confirmation claimed it: its line may be out before its record.
                    "#confirming": "confirmingAt",
                },
                ExpressionAttributeValues={
                    ":claimed": {"S": CLAIMED},
                    ":uncertain": {"S": UNCERTAIN},
                    ":owner": {"S": holder.owner},
                    ":message": {"S": holder.message_id},
                    ":attempt": {"N": str(wanted.attempt)},
                    ":now": {"N": str(now_ms)},
                    ":lease": {"N": str(lease_until_ms)},
                    **(
                        {":current": {"N": str(now_ms)}}
                        if confirming
                        else {":described": {"N": str(wanted.described_at_ms)}}
                    ),
                    ":job": {"S": wanted.job_id},
                    ":expires": self._expires_at(),
                    **({":request": {"S": holder.request_id}} if holder.request_id else {}),
                },
                # The item as it was comes back in the ConditionalCheckFailedException ("Item";
                # DynamoDB API reference, UpdateItem), so a lost claim costs no second read.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except LedgerUnavailable as exc:
            cause = exc.__cause__
            if not (
                isinstance(cause, ClientError)
                and cause.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
            ):
                raise
            item = cause.response.get("Item") or {}
            if confirming:
                return _lost_confirmation(wanted, item, now_ms)
            return _lost_claim(wanted, item, now_ms)
        return TerminationClaim(wanted.job_id, "ours")

    def release_termination(self, job_id: str, owner: str) -> None:
        """Give a claim back: our call failed for sure, or was never made. Raises
        LedgerUnavailable (the claim then lasts until its lease ends)."""
        self._conditional(
            self._client.delete_item,
            TableName=self._table,
            Key=_key(termination_key(job_id)),
            ConditionExpression="#claim = :claimed AND #owner = :owner",
            ExpressionAttributeNames={"#claim": "claim", "#owner": "owner"},
            ExpressionAttributeValues={":claimed": {"S": CLAIMED}, ":owner": {"S": owner}},
        )

    def mark_uncertain(self, job_id: str, owner: str) -> None:
        """Our call may have acted without saying so: keep the claim, stamped now, so that only
        a request that reads the job after this moment may claim it. Raises LedgerUnavailable
        (the claim then lasts until its lease ends)."""
        self._conditional(
            self._client.update_item,
            TableName=self._table,
            Key=_key(termination_key(job_id)),
            UpdateExpression="SET #claim = :uncertain, claimedAt = :now",
            ConditionExpression="#claim = :claimed AND #owner = :owner",
            ExpressionAttributeNames={"#claim": "claim", "#owner": "owner"},
            ExpressionAttributeValues={
                ":claimed": {"S": CLAIMED},
                ":uncertain": {"S": UNCERTAIN},
                ":owner": {"S": owner},
                ":now": {"N": str(int(time.time() * 1000))},
            },
        )

    def admit_to_window(
        self, key: str, members: Sequence[str], cap: int, expires_at_s: int
    ) -> set[str]:
        """Admit members (hashed job ids) to a capped window: those already in it stay admitted
        (a redelivery, a retry after a failed call), new ones while there is room. Returns the
        admitted members. A conditional write keeps concurrent callers under `cap`. Raises
        LedgerUnavailable."""
        for _ in range(_BATCH_GET_ATTEMPTS):
            item = self._request(
                self._client.get_item, TableName=self._table, Key=_key(key), ConsistentRead=True
            ).get("Item", {})
            present = set(item.get("members", {}).get("SS", []))
            fresh = [m for m in dict.fromkeys(members) if m not in present]
            room = max(cap - len(present), 0)
            taken = fresh[:room]
            if not taken:
                return {m for m in members if m in present}
            condition = "attribute_not_exists(members) OR size(members) <= :before"
            written = self._conditional(
                self._client.update_item,
                TableName=self._table,
                Key=_key(key),
                UpdateExpression="ADD members :new SET expiresAt = :expires",
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    ":new": {"SS": taken},
                    ":before": {"N": str(cap - len(taken))},
                    ":expires": {"N": str(expires_at_s)},
                },
            )
            if written is None:
                continue  # another caller took room meanwhile: look again
            return {m for m in members if m in present} | set(taken)
        raise LedgerUnavailable(f"the window {key} kept changing under concurrent callers")

    def claim_transition(self, key: str, owner: str, now_s: int, lease_s: int) -> Transition:
        """Claim an alarm transition for `owner` (the invocation's request id, which Lambda
        keeps when it retries an asynchronous invocation). A claim whose write landed but whose
        answer was lost (botocore replays the write) is recognised as ours; a claim its owner
        gave back after a failure (`open`), or held for `lease_s` seconds without finishing (its
        owner timed out), is taken over with its picks. Raises LedgerUnavailable."""
        claimed = self._conditional(
            self._client.put_item,
            TableName=self._table,
            Item={
                "pk": {"S": key},
                "state": {"S": "claimed"},
                "owner": {"S": owner},
                "claimedAt": {"N": str(now_s)},
                "expiresAt": self._expires_at(),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        if claimed is not None:
            return Transition("new")
        item = self._request(
            self._client.get_item, TableName=self._table, Key=_key(key), ConsistentRead=True
        ).get("Item", {})
        state = item.get("state", {}).get("S")
        if state == "done":
            return Transition("done")
        if state == "claimed" and item.get("owner", {}).get("S") == owner:
            return Transition("ours", self._picks(key, item))
        claimed_at = int(item.get("claimedAt", {}).get("N", "0"))
        if state == "claimed" and now_s - claimed_at < lease_s:
            return Transition("busy")
        # Given back, or its owner is gone: take it over, with its picks.
        taken = self._conditional(
            self._client.update_item,
            TableName=self._table,
            Key=_key(key),
            UpdateExpression="SET #owner = :me, claimedAt = :now, #state = :claimed",
            ConditionExpression="#state = :was AND claimedAt = :then",
            ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
            ExpressionAttributeValues={
                ":me": {"S": owner},
                ":now": {"N": str(now_s)},
                ":claimed": {"S": "claimed"},
                ":was": {"S": str(state)},
                ":then": {"N": str(claimed_at)},
            },
        )
        if taken is None:
            return Transition("busy")
        return Transition("ours", self._picks(key, item))

    def _picks(self, key: str, item: dict[str, Any]) -> str | None:
        chunks = item.get("pickChunks", {}).get("N")
        if chunks is None:
            return None
        parts = []
        for index in range(int(chunks)):
            chunk = self._request(
                self._client.get_item,
                TableName=self._table,
                Key=_key(f"{key}#picks#{index}"),
                ConsistentRead=True,
            ).get("Item")
            if chunk is None:
                raise LedgerUnavailable(f"picks chunk {index} of {key} is missing")
            parts.append(chunk["picks"]["S"])
        return " ".join(p for p in parts if p)

    def record_transition_picks(self, key: str, owner: str, picks: Sequence[str]) -> None:
        """Store what a brake selected before it enqueues anything, so a retry re-sends only
        those jobs and the policy's cap holds: in items of at most 20,000 picks (260 KB, under
        DynamoDB's 400 KB item), then their count on the claim. Raises LedgerUnavailable."""
        chunks = [picks[i : i + _PICKS_PER_ITEM] for i in range(0, len(picks), _PICKS_PER_ITEM)]
        for index, chunk in enumerate(chunks or [[]]):
            self._request(
                self._client.put_item,
                TableName=self._table,
                Item={
                    "pk": {"S": f"{key}#picks#{index}"},
                    "picks": {"S": " ".join(chunk)},
                    "expiresAt": self._expires_at(),
                },
            )
        self._request(
            self._client.update_item,
            TableName=self._table,
            Key=_key(key),
            UpdateExpression="SET pickChunks = :n",
            ConditionExpression="#owner = :me AND #state = :claimed",
            ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
            ExpressionAttributeValues={
                ":n": {"N": str(max(len(chunks), 1))},
                ":me": {"S": owner},
                ":claimed": {"S": "claimed"},
            },
        )

    def finish_transition(self, key: str, owner: str) -> None:
        """Mark a brake done: later deliveries of the transition are duplicates."""
        self._set_transition(key, owner, "done")

    def give_back_transition(self, key: str, owner: str) -> None:
        """A brake failed: another delivery (or our retry) may take the claim over at once,
        with the picks already recorded. Raises LedgerUnavailable."""
        self._set_transition(key, owner, "open")

    def _set_transition(self, key: str, owner: str, state: str) -> None:
        self._request(
            self._client.update_item,
            TableName=self._table,
            Key=_key(key),
            UpdateExpression="SET #state = :state",
            ConditionExpression="#owner = :me",
            ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
            ExpressionAttributeValues={":state": {"S": state}, ":me": {"S": owner}},
        )

    def _conditional(self, method: Any, **kwargs: Any) -> dict[str, Any] | None:
        """A conditional write: its response, or None when its condition did not hold.
        Raises LedgerUnavailable for every other failure."""
        try:
            return self._request(method, **kwargs)
        except LedgerUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and (
                cause.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
            ):
                return None
            raise

    def _request(self, method: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        try:
            response: dict[str, Any] = method(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            raise LedgerUnavailable(f"{code}: {exc}") from exc
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return response


# A call's claim: none, a record of before claims existed, an earlier attempt's, our own write
# replayed, or one whose holder can no longer have acted unseen since the claimer read the job.
_CALL_CONDITION: Final = (
    "attribute_not_exists(pk)"
    " OR attribute_not_exists(#claim)"  # a record of before claims existed
    " OR attempt < :attempt"
    " OR (#claim = :claimed AND #owner = :owner)"  # our own write, replayed
    " OR (#claim = :claimed AND leaseUntil < :described)"
    " OR (#claim = :uncertain AND claimedAt < :described)"
)
# A confirmation's claim: none (never taken, or given back), an earlier attempt's, our own write
# replayed, or this message's own: uncertain, or a call's in flight by a delivery that has
# ended. Never another request's claim that may have made a call, nor a record (accepted, or of
# before claims existed), nor an ended confirmation's (`confirmingAt`: its line may be written).
_CONFIRM_CONDITION: Final = (
    "attribute_not_exists(pk)"
    " OR attempt < :attempt"
    " OR (#claim = :claimed AND #owner = :owner)"  # our own write, replayed
    " OR (messageId = :message AND #claim = :uncertain)"
    " OR (messageId = :message AND #claim = :claimed AND leaseUntil < :current"
    " AND attribute_not_exists(#confirming))"
)


def _holder_name(item: dict[str, Any]) -> str | None:
    message = item.get("messageId", {}).get("S")
    request = item.get("requestId", {}).get("S")
    return (
        ClaimHolder("", message, request).name if message else (f"{request}" if request else None)
    )


def _lost_confirmation(wanted: ClaimWanted, item: dict[str, Any], now_ms: int) -> TerminationClaim:
    """Why a confirmation's claim failed, from the item as it was (ALL_OLD): an invocation
    still in flight holds it (`held`: deliver again); the job's claim is of a later attempt
    than the one read (`stale_view`); else another request's call was accepted, or may have
    acted (`accepted`: that request stopped the job; skip)."""
    state = item.get("claim", {}).get("S")
    lease = int(item.get("leaseUntil", {}).get("N", "0"))
    if state == CLAIMED and lease >= now_ms:
        return TerminationClaim(wanted.job_id, "held", _holder_name(item))
    if int(item.get("attempt", {}).get("N", "0")) > wanted.attempt:
        return TerminationClaim(wanted.job_id, "stale_view", _holder_name(item))
    return TerminationClaim(wanted.job_id, "accepted", _holder_name(item))


def _lost_claim(wanted: ClaimWanted, item: dict[str, Any], now_ms: int) -> TerminationClaim:
    """Why a claim's condition failed, from the item as it was (ALL_OLD)."""
    state = item.get("claim", {}).get("S")
    holder = _holder_name(item)
    if state == ACCEPTED:
        return TerminationClaim(wanted.job_id, "accepted", holder)
    lease = int(item.get("leaseUntil", {}).get("N", "0"))
    if state == CLAIMED and lease >= now_ms:
        return TerminationClaim(wanted.job_id, "held", holder)
    return TerminationClaim(wanted.job_id, "stale_view", holder)
