"""The terminating code path: name the jobs, read their current state, decide, terminate, account.

One SQS batch at a time:

1. Each record's request names jobs: by id, or by a selector expanded once (the ledger keeps the
   expansion, so a redelivery acts on the same jobs and the limit holds across deliveries).
2. DescribeJobs reads every named job (and what it inherits from) before anything is decided.
3. Every (request, job) pair is judged on its own (`logic/plan.py`).
4. Every job a call would name is claimed in the ledger first (`ledger.py`, termination
   claims): whatever the interleaving of concurrent invocations, duplicate deliveries and
   different requests for one job, only the claim's owner calls, so each job (per attempt) is
   named in at most one TerminateJob(s) call and has at most one `terminated` line. A job
   another request terminated is skipped (`already terminated by request …`); one whose claim
   another invocation holds now fails and is delivered again. Claims are taken concurrently
   (one conditional UpdateItem each; boto3 clients are thread-safe).
5. Terminations are grouped by job queue and reason, 50 a call, as TerminateJobs documents
   ("up to 50 jobs in a job queue"). Only identical terminations share a call; the first
   request's line for a job says `terminated`, the others' name that request (`skipped`).
6. Audit lines are written as each call returns, before any ledger write; when the function's time runs low no further
   call is started, and what is left is retried by SQS.

Why claims and not Powertools Idempotency: it keys a record on the event or message payload, so
it can dedupe deliveries of one message but not two different requests for the same job, and it
would add its import to every cold start. A claim per job is keyed on what must happen once.

While the pause switch is on (`pausing.py`), requests a policy path sent (`source` other than
`request`, or a `policy` key) are skipped with `skip_reason: paused`; people's requests go on.

One bad record never fails the batch: whatever goes wrong while naming or judging one record's
jobs fails (or rejects) that record alone.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from batch_terminator import facts as job_facts
from batch_terminator.batch_api import BatchApi, BatchCallFailed, BatchError, OutOfTime
from batch_terminator.contract import TERMINATE_ONLY_TAGGED_ENV, Outcome, Source
from batch_terminator.ledger import (
    LEDGER_KEY,
    ClaimHolder,
    ClaimWanted,
    Ledger,
    LedgerUnavailable,
    MessageState,
    TerminationClaim,
    TerminationRecord,
    ledger_key,
    request_hash,
)
from batch_terminator.logic.parse import InvalidRequest, ParsedRecord
from batch_terminator.logic.plan import Earlier, Line, Named, decide
from batch_terminator.logic.safety import (
    Decision,
    RequiredTag,
    Verdict,
    required_tag_skip,
    skip,
)
from batch_terminator.models.audit import AuditRecord
from batch_terminator.models.job import JobSnapshot
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.pausing import Pause
from batch_terminator.selecting import expand_selector

logger = logging.getLogger(__name__)

AuditSink = Callable[[Sequence[AuditRecord]], None]
_T = TypeVar("_T")
_R = TypeVar("_R")

# Claims are taken and given back this many at a time (one DynamoDB call each).
CLAIM_THREADS = 8
# Without a Lambda context, a claim's lease: Lambda's longest timeout (15 minutes), in ms.
DEFAULT_LEASE_MS = 15 * 60 * 1000
PAUSED = "paused"


def _now_ms() -> int:
    return int(time.time() * 1000)


def is_policy_sourced(record: ParsedRecord) -> bool:
    """A request a policy path sent: its source attribute is not `request`, or it names a
    policy. These stop while the system is paused."""
    return record.source is not Source.REQUEST or bool(record.request and record.request.policy)


@dataclass
class BatchResult:
    """What happened to one SQS batch: the audit lines, and which messages SQS must redeliver."""

    audit: list[AuditRecord] = field(default_factory=list)
    retry_message_ids: set[str] = field(default_factory=set)
    rejected: list[ParsedRecord] = field(default_factory=list)
    # Selector requests whose limit left matching jobs untouched: (message id, policy, how many).
    limited: list[tuple[str, str | None, int]] = field(default_factory=list)
    # Each valid record's request ledger key (a redriven request's may be the one it carries).
    ledger_keys: dict[str, str] = field(default_factory=dict)
    # Jobs of the event paths left alone because their policy's cap was reached, by policy.
    capped: dict[str, int] = field(default_factory=dict)


def required_tag_from_environment() -> RequiredTag | None:
    """TERMINATE_ONLY_TAGGED (`key=value`), or None when unset or blank. Raises ValueError
    when it is malformed: the invocation fails, and nothing is terminated, rather than
    terminate without the rule."""
    return RequiredTag.parse(os.environ.get(TERMINATE_ONLY_TAGGED_ENV))


@dataclass(frozen=True)
class Terminating:
    """What the terminating path works with. `ledger` None: no memory across deliveries."""

    batch: BatchApi
    config: PoliciesFile
    now: datetime
    sink: AuditSink
    ledger: Ledger | None = None
    max_receive_count: int = 3
    # Whether there is time to read more array children and still terminate what is decided.
    enough_time: Callable[[], bool] = lambda: True
    # Called with the records of each TerminateJobs call's accepted jobs as soon as it returns,
    # so a termination is recorded (and its claim accepted) before its FAILED event can arrive.
    on_terminated: Callable[[Sequence[TerminationRecord]], None] = lambda _records: None
    # When this invocation ends (ms since the epoch, UTC): the lease of the claims it takes.
    lease_until_ms: Callable[[], int] = lambda: _now_ms() + DEFAULT_LEASE_MS
    # The pause in force (None: not paused), read at most once, when a policy-sourced request
    # is in the batch. Raises when it cannot be read: those requests are then retried. None: no
    # pause switch.
    read_pause: Callable[[], Pause | None] | None = None
    # The blast-radius cap of the event paths (deadline, blocked): given a policy and the jobs
    # this batch would terminate for it, the ones it may (a job counts once per window, however
    # often it is delivered; raises LedgerUnavailable). None: no cap is kept (the sweep's and
    # the brake's caps are applied when they select).
    event_cap: Callable[[str, Sequence[str]], set[str]] | None = None
    # The stack's terminateOnlyTagged (TERMINATE_ONLY_TAGGED): jobs without this tag are skipped
    # on every path, so the IAM condition on batch:TerminateJob is only the backstop.
    only_tagged: RequiredTag | None = field(default_factory=required_tag_from_environment)


def rejected_audit(record: ParsedRecord) -> list[AuditRecord]:
    """A request that is invalid: a line per job its body names (by `jobId`, `jobIds` or job
    ARN, even in a body that is not valid JSON), or one line without a job when it names none."""
    return [
        _request_audit(record, Outcome.REJECTED, record.error, job_id)
        for job_id in (record.named_job_ids or (None,))
    ]


def request_failed_audit(record: ParsedRecord, error: str) -> AuditRecord:
    """A request that could not be worked on at all (its selector could not be expanded)."""
    return _request_audit(record, Outcome.FAILED, error, None)


def _request_audit(
    record: ParsedRecord,
    outcome: Outcome,
    error: str | None,
    job_id: str | None,
    skip_reason: str | None = None,
) -> AuditRecord:
    request = record.request
    return AuditRecord(
        outcome=outcome,
        job_id=job_id,
        job_name=None,
        job_queue=None,
        status_before=None,
        reason=request.reason if request else None,
        policy=request.policy if request else None,
        source=record.source,
        requested_by=request.requested_by if request else None,
        request_id=request.request_id if request else None,
        dry_run=bool(request and request.dry_run),
        error=error,
        skip_reason=skip_reason if outcome is Outcome.SKIPPED else None,
        sender=record.sender,
        message_id=record.message_id,
    )


def process(records: Sequence[ParsedRecord], context: Terminating) -> BatchResult:
    """Act on one SQS batch of parsed records; see the module docstring."""
    return _Run(context).process(records)


@dataclass(eq=False)
class _Action:
    """One termination: `target` named in a Batch call; it `stops` the target and what comes
    with it (an array's unfinished children, a multi-node job's nodes)."""

    target: str
    reason: str
    queue: str
    stops: frozenset[str]
    error: BatchError | None = None
    done: bool = False
    # Its termination claim is ours (see `ledger.claim_termination`).
    claimed: bool = False


@dataclass(frozen=True)
class _Deferred:
    """A termination that conflicts with an earlier one of another reason in this batch."""

    behind: tuple[_Action, ...]


class _Run:
    def __init__(self, context: Terminating) -> None:
        self.context = context
        self.result = BatchResult()
        self.facts = job_facts.Facts()
        self.states: dict[str, MessageState] | None = {}
        self.settled: dict[str, set[str]] = defaultdict(set)
        self.attempted: dict[str, set[str]] = defaultdict(set)
        self.failed: dict[str, set[str]] = defaultdict(set)
        # This invocation's claim token, and when it started reading jobs: a claim whose holder
        # may have acted after this moment is not taken over on this invocation's view.
        self.owner = uuid.uuid4().hex
        self.started_ms = _now_ms()
        # Messages of policy-sourced requests while the pause is on: no call for them.
        self.paused: set[str] = set()

    # -- accounting ------------------------------------------------------------------------
    def emit(self, records: Sequence[AuditRecord]) -> None:
        if records:
            self.result.audit.extend(records)
            self.context.sink(records)

    def retry(self, message_id: str) -> None:
        self.result.retry_message_ids.add(message_id)

    def fail_record(self, record: ParsedRecord, error: str) -> None:
        self.retry(record.message_id)
        self.emit([request_failed_audit(record, error)])

    def outcome(self, line: Line, outcome: Outcome, error: str | None = None) -> AuditRecord:
        message_id = line.named.record.message_id
        if outcome is Outcome.FAILED:
            self.retry(message_id)
            self.failed[message_id].add(line.job_id)
        else:
            self.settled[message_id].add(line.job_id)
        return line.audit(outcome, error=error, skip_reason=line.verdict.why)

    # -- the steps ---------------------------------------------------------------------------
    def process(self, records: Sequence[ParsedRecord]) -> BatchResult:
        valid = []
        for record in records:
            if record.request is None:
                self.result.rejected.append(record)
                self.emit(rejected_audit(record))
            else:
                valid.append(record)
        valid = self._unless_paused(valid)
        self.states = self._load_states(valid)
        named = [
            n
            for record in valid
            for n in (
                self._name_paused(record)
                if record.message_id in self.paused
                else self._name(record)
            )
        ]
        if named and self._describe(named):
            lines = [line for n in named for line in self._decide(n)]
            self._execute(lines)
        self._remember(valid)
        return self.result

    def _unless_paused(self, records: list[ParsedRecord]) -> list[ParsedRecord]:
        """While paused, policy-sourced requests make no call: they are kept in `self.paused`
        (`_name_paused`, `_pause_lines`). If the pause cannot be read they fail and are
        delivered again (a line per job a by-id request names, one without a job for a
        selector). People's requests go on either way."""
        policy_sourced = [r for r in records if is_policy_sourced(r)]
        read = self.context.read_pause
        if read is None or not policy_sourced:
            return records
        try:
            pause = read()
        except Exception as exc:  # fail closed: a policy path never acts on an unknown switch
            logger.warning("pause switch unreadable: policy-sourced requests retried: %s", exc)
            error = f"the pause switch could not be read: {exc}"
            for record in policy_sourced:
                self.emit(self._request_lines(record, Outcome.FAILED, skip(""), error))
            return [r for r in records if not is_policy_sourced(r)]
        if pause is not None:
            self.paused.update(r.message_id for r in policy_sourced)
        return records

    def _name_paused(self, record: ParsedRecord) -> list[Named]:
        """A paused request: the pause stops new calls only. What an earlier delivery settled
        gets no second line; jobs its call may have stopped (`attempted`, or with attempted
        children) are read and judged, so a stop that call made is confirmed; every other job
        is skipped (`paused`) unread. A selector never expanded, or a request whose ledger
        state is unknown, gets the paused line(s) of the request."""
        request = record.request
        assert request is not None
        verdict = skip(PAUSED, bool(request.dry_run))
        state = self._state(record)
        if self.states is None or (request.selector is not None and state.picks is None):
            self.emit(self._request_lines(record, Outcome.SKIPPED, verdict))
            return []
        attempted = state.attempted
        settled = state.settled | self.settled[record.message_id]
        named: list[Named] = []
        paused: list[AuditRecord] = []
        for n in self._name(record):
            prefix = f"{n.job_id}:"
            if n.job_id in attempted or any(j.startswith(prefix) for j in attempted):
                named.append(n)
            else:
                line = Line(n, n.job_id, None, verdict)
                paused.append(self.outcome(line, Outcome.SKIPPED))
                paused.extend(
                    self.outcome(Line(Named(record, child), child, None, verdict), Outcome.SKIPPED)
                    for child in sorted(n.also_named - settled)
                )
        self.emit(paused)
        return named

    def _pause_lines(self, lines: Sequence[Line]) -> list[Line]:
        """Lines of paused requests that would call are skipped (`paused`); confirmations, and
        what needs no call, stay as judged."""
        if not self.paused:
            return list(lines)
        out: list[Line] = []
        for line in lines:
            if (
                line.named.record.message_id in self.paused
                and not line.confirmed
                and (line.target is not None or line.follows_children)
            ):
                verdict = skip(PAUSED, line.verdict.dry_run, line.verdict.age)
                out.append(replace(line, verdict=verdict, target=None, covers=frozenset()))
            else:
                out.append(line)
        return out

    def _request_lines(
        self, record: ParsedRecord, outcome: Outcome, verdict: Verdict, error: str | None = None
    ) -> list[AuditRecord]:
        """The same outcome for every job a request names, before any job was read."""
        request = record.request
        assert request is not None
        if request.selector is not None:
            if outcome is Outcome.FAILED:
                self.retry(record.message_id)
            return [_request_audit(record, outcome, error, None, verdict.why)]
        return [
            self.outcome(Line(Named(record, job_id), job_id, None, verdict), outcome, error)
            for job_id in request.job_id_list
        ]

    def _load_states(self, records: Sequence[ParsedRecord]) -> dict[str, MessageState] | None:
        """Each record's ledger state; the key is its message's, or, for a redriven request,
        the key it carries if that item belongs to the very same request."""
        for record in records:
            self.result.ledger_keys[record.message_id] = ledger_key(record.message_id)
        ledger = self.context.ledger
        if ledger is None or not records:
            return {}
        carried = {
            r.message_id: r.carried_key
            for r in records
            if r.carried_key and LEDGER_KEY.fullmatch(r.carried_key)
        }
        try:
            found = ledger.load([*self.result.ledger_keys.values(), *carried.values()])
        except LedgerUnavailable as exc:
            logger.warning("request ledger unavailable: %s", exc)
            return None
        for record in records:
            key = carried.get(record.message_id)
            state = found.get(key) if key else None
            if key and state is not None and state.request_hash == _hash(record):
                self.result.ledger_keys[record.message_id] = key
            elif key:
                logger.warning("ignored ledgerKey %s: no item of this very request", key[:160])
        return found

    def _key(self, record: ParsedRecord) -> str:
        return self.result.ledger_keys[record.message_id]

    def _state(self, record: ParsedRecord) -> MessageState:
        return (self.states or {}).get(self._key(record)) or MessageState()

    def _name(self, record: ParsedRecord) -> list[Named]:
        request = record.request
        assert request is not None
        try:
            if request.selector is not None:
                ids = self._selector_picks(record)
            else:
                ids = request.job_id_list
        except InvalidRequest as exc:
            self.result.rejected.append(_with_error(record, str(exc)))
            self.emit(rejected_audit(_with_error(record, str(exc))))
            return []
        except (BatchCallFailed, LedgerUnavailable) as exc:
            self.fail_record(record, str(exc))
            return []
        except OutOfTime:
            self.fail_record(record, "not attempted: the function's time ran low")
            return []
        except Exception as exc:  # one record must never fail the batch
            logger.exception("could not name the jobs of message %s", record.message_id)
            self.fail_record(record, f"internal error: {type(exc).__name__}: {exc}")
            return []
        settled = self._state(record).settled | self.settled[record.message_id]
        named_ids = set(ids)
        # A child named with its parent gets its line through the parent.
        with_parent = {i for i in named_ids if ":" in i and i.split(":", 1)[0] in named_ids}
        return [
            Named(
                record,
                job_id,
                frozenset(c for c in with_parent if c.split(":", 1)[0] == job_id),
            )
            for job_id in ids
            if job_id not in settled and job_id not in with_parent
        ]

    def _selector_picks(self, record: ParsedRecord) -> list[str]:
        if self.states is None:
            raise LedgerUnavailable("a selector cannot be expanded without the request ledger")
        stored = self._state(record).picks
        if stored is not None:
            return list(stored)
        expansion = expand_selector(
            self.context.batch, record, self.context.config, self.context.now
        )
        self.facts.update(expansion.facts)
        picks, lines, limited = expansion.picks, expansion.lines, expansion.limited
        ledger = self.context.ledger
        if ledger is not None:
            kept = ledger.record_picks(self._key(record), picks, _hash(record))
            if list(kept) != picks:  # another delivery expanded it first: act on its picks
                return list(kept)
        self.emit([self.outcome(line, Outcome.SKIPPED) for line in lines])
        if limited:
            request = record.request
            assert request is not None
            self.result.limited.append((record.message_id, request.policy, limited))
        return picks

    def _describe(self, named: Sequence[Named]) -> bool:
        # Children an earlier delivery left open are read too: their parent may be gone.
        open_children = [
            child
            for n in named
            for child in sorted(self._state(n.record).failed)
            if child.startswith(f"{n.job_id}:")
        ]
        wanted = [n.job_id for n in named] + open_children
        missing = list(dict.fromkeys(i for i in wanted if i not in self.facts.jobs))
        if not missing:
            return True
        try:
            self.facts.update(
                job_facts.describe(
                    self.context.batch, missing, enough_time=self.context.enough_time
                )
            )
        except (BatchCallFailed, OutOfTime) as exc:
            error = str(exc) if isinstance(exc, BatchCallFailed) else "the function's time ran low"
            self.emit(
                [
                    self.outcome(
                        Line(n, n.job_id, None, skip("")), Outcome.FAILED, f"not decided: {error}"
                    )
                    for n in named
                ]
            )
            return False
        return True

    def _decide(self, named: Named) -> list[Line]:
        record = named.record
        state = self._state(record)
        try:
            return decide(
                named,
                self.facts.jobs,
                self.facts.families,
                self.context.config,
                self.context.now,
                last_delivery=record.receive_count >= self.context.max_receive_count,
                earlier=Earlier(
                    state.settled,
                    state.failed - state.settled,
                    state.attempted,
                    record.first_received_at if record.receive_count > 1 else None,
                ),
            )
        except Exception as exc:  # one record must never fail the batch
            logger.exception("could not judge job %s", named.job_id)
            self.emit(
                [
                    self.outcome(
                        Line(named, named.job_id, None, skip("")),
                        Outcome.FAILED,
                        f"internal error: {type(exc).__name__}: {exc}",
                    )
                ]
            )
            return []

    def _only_tagged(self, lines: Sequence[Line]) -> list[Line]:
        """terminateOnlyTagged: a line that would terminate a job without the required tag is
        skipped (`logic/safety.py` `required_tag_skip`). A call names one target: when any line
        of a target is refused (an array or multi-node job whose tag is missing), every line
        of that target is, so no call stops a job the rule refuses. A confirmation (our earlier
        call did act) stays as it is: it reports what happened."""
        required = self.context.only_tagged
        if required is None:
            return list(lines)
        judged = {
            id(line): required_tag_skip(line.verdict, line.job, required)
            for line in lines
            if not line.confirmed and not line.follows_children
        }
        refused = {
            line.target
            for line in lines
            if line.target is not None and judged.get(id(line), line.verdict) is not line.verdict
        }
        out: list[Line] = []
        for line in lines:
            verdict = judged.get(id(line), line.verdict)
            if line.target is not None and line.target in refused and verdict is line.verdict:
                verdict = required_tag_skip(line.verdict, None, required)
            if verdict is line.verdict:
                out.append(line)
            else:
                out.append(replace(line, verdict=verdict, target=None, covers=frozenset()))
        return out

    def _cap_event_paths(self, lines: Sequence[Line]) -> list[Line]:
        """Deadlines and blocked-queue requests arrive one job at a time, not as a run a cap can
        cut: their terminations are counted per policy in a window (the sweep interval), and
        those past the policy's `maxPerRun` are skipped (the next sweep, under its own cap, sees
        them again). If the count cannot be kept, they are delivered again."""
        gate = self.context.event_cap
        if gate is None:
            return list(lines)
        by_policy: dict[str, list[Line]] = defaultdict(list)
        for line in lines:
            record = line.named.record
            if (
                line.target is not None
                and not line.confirmed
                and record.source in (Source.DEADLINE, Source.BLOCKED)
                and record.request is not None
                and record.request.policy
            ):
                by_policy[record.request.policy].append(line)
        changed: dict[int, Line] = {}
        for policy, group in by_policy.items():
            try:
                allowed = gate(policy, [line.job_id for line in group])
                why = (
                    f"policy cap reached: {policy} terminates at most its maxPerRun jobs per "
                    "sweep interval on the deadline path; the next sweep sees this job again"
                )
                decision = Decision.SKIP
            except LedgerUnavailable as exc:
                allowed, why = set(), f"the policy cap could not be checked: {exc}"
                decision = Decision.RETRY
            left = [line for line in group if line.job_id not in allowed]
            for line in left:
                verdict = Verdict(decision, why, age=line.verdict.age)
                changed[id(line)] = replace(line, verdict=verdict, target=None)
            if left and decision is Decision.SKIP:
                self.result.capped[policy] = self.result.capped.get(policy, 0) + len(left)
        return [changed.get(id(line), line) for line in lines]

    def _execute(self, lines: Sequence[Line]) -> None:
        """Account for what needs no call at once; then make the calls, by queue and reason."""
        lines = self._cap_event_paths(self._only_tagged(self._pause_lines(lines)))
        plan = _Plan()
        decided: list[AuditRecord] = []
        parents: list[Line] = []
        confirmed: list[Line] = []
        for line in lines:
            if line.confirmed:
                confirmed.append(line)
            elif line.follows_children:
                parents.append(line)
            elif line.target is not None:
                plan.add(line)
            elif line.verdict.decision is Decision.RETRY:
                decided.append(self.outcome(line, Outcome.FAILED, line.verdict.why))
            else:
                decided.append(self.outcome(line, Outcome.SKIPPED))
        self.emit(decided)
        self._confirm(confirmed)
        self._claim(plan)
        out_of_time = False
        for reason, group in plan.groups():
            if not out_of_time:
                out_of_time = self._terminate(plan, reason, group)
            if out_of_time:
                low = BatchError("OutOfTime", "not attempted: the function's time ran low", True)
                left = [a for a in group if not a.done]
                for action in left:
                    action.error, action.done = low, True
                self.emit([self._account(line, a) for a in left for line in plan.lines(a)])
        self.emit([self._account_deferred(line, claim) for line, claim in plan.deferred])
        self.emit([self._account_parent(line) for line in parents])
        self._settle_claims(plan)

    def _claim_jobs(
        self, wanted: Sequence[tuple[str, Line]], *, confirming: bool = False
    ) -> list[TerminationClaim | LedgerUnavailable]:
        """Claim each (job id, the line that asks for it): concurrently, one UpdateItem each.
        `confirming`: claims of confirmations (`ledger.claim_termination`)."""
        ledger = self.context.ledger
        assert ledger is not None
        lease_until = self.context.lease_until_ms()

        def claim(item: tuple[str, Line]) -> TerminationClaim | LedgerUnavailable:
            job_id, line = item
            job = line.job
            attempt = _attempt(job) if job is not None and job.job_id == job_id else 0
            request = line.named.request
            holder = ClaimHolder(self.owner, line.named.record.message_id, request.request_id)
            try:
                return ledger.claim_termination(
                    ClaimWanted(job_id, attempt, self.started_ms),
                    holder,
                    lease_until,
                    confirming=confirming,
                )
            except LedgerUnavailable as exc:
                return exc

        return _each(claim, wanted)

    def _claim(self, plan: _Plan) -> None:
        """Claim every job a call would name (see the module docstring); those whose claim is
        not ours leave the plan with their lines. Without the ledger, calls go on unclaimed."""
        actions = plan.actions()
        # The ledger did not answer this invocation already: no claims, as without a ledger.
        if self.context.ledger is None or self.states is None or not actions:
            return

        def asking(action: _Action) -> Line:
            lines = plan.lines(action)
            return next((n for n in lines if n.job_id == action.target), lines[0])

        answers = self._claim_jobs([(a.target, asking(a)) for a in actions])
        unavailable = [a for a in answers if isinstance(a, LedgerUnavailable)]
        if unavailable:
            # As for a by-id request without the ledger: go on, Batch's own state still judges.
            logger.warning(
                "termination claims unavailable: calls go on unclaimed",
                extra={"jobs": len(unavailable), "error": str(unavailable[0])},
            )
        for action, answer in zip(actions, answers, strict=True):
            if isinstance(answer, LedgerUnavailable) or answer.state == "ours":
                action.claimed = not isinstance(answer, LedgerUnavailable)
                continue
            plan.drop(action)
            action.done = True
            action.error = BatchError("Claimed", f"claimed by {answer.holder}", False)
            self.emit([self._account_lost(line, answer) for line in plan.lines(action)])

    def _confirm(self, confirmed: Sequence[Line]) -> None:
        """Jobs an earlier delivery's call stopped without saying so: `terminated`, once. The
        job is claimed as a confirmation, so that another request whose call may have stopped
        it keeps the only `terminated` line (`ledger.claim_termination`, confirming). The lines
        are written before the termination records, which may be slow."""
        if not confirmed:
            return
        if self.context.ledger is None or self.states is None:
            self.emit([self.outcome(line, Outcome.TERMINATED) for line in confirmed])
            return
        first: dict[str, Line] = {}
        for line in confirmed:
            first.setdefault(line.job_id, line)
        claims = self._claim_jobs(list(first.items()), confirming=True)
        answers = dict(zip(first, claims, strict=True))
        accounted: list[AuditRecord] = []
        records: list[TerminationRecord] = []
        for line in confirmed:
            answer = answers[line.job_id]
            if isinstance(answer, TerminationClaim) and answer.state != "ours":
                accounted.append(self._account_lost(line, answer))
            elif first[line.job_id] is not line:
                lead = first[line.job_id]
                holder = ClaimHolder(
                    "", lead.named.record.message_id, lead.named.request.request_id
                )
                accounted.append(self._terminated_by(line, holder.name))
            else:
                accounted.append(self.outcome(line, Outcome.TERMINATED))
                if isinstance(answer, TerminationClaim):
                    records.append(self._record(line))
        self.emit(accounted)
        if records:
            self.context.on_terminated(records)

    def _record(self, line: Line) -> TerminationRecord:
        request, record, job = line.named.request, line.named.record, line.job
        return TerminationRecord(
            line.job_id,
            _now_ms(),
            request.policy,
            request.request_id,
            record.source.value,
            message_id=record.message_id,
            owner=self.owner,
            attempt=_attempt(job) if job is not None and job.job_id == line.job_id else None,
        )

    def _terminated_by(self, line: Line, holder: str) -> AuditRecord:
        """The `skipped` line of a job another request's call terminated (`holder` names it)."""
        verdict = skip(
            f"already terminated by request {holder}", line.verdict.dry_run, line.verdict.age
        )
        return self.outcome(replace(line, verdict=verdict), Outcome.SKIPPED)

    def _account_lost(self, line: Line, claim: TerminationClaim) -> AuditRecord:
        holder = claim.holder or "another request"
        if claim.state == "accepted":
            return self._terminated_by(line, str(holder))
        if claim.state == "held":
            why = f"another invocation is terminating this job now (request {holder})"
        else:
            why = f"request {holder} may have terminated this job since it was read"
        return self.outcome(line, Outcome.FAILED, f"{why}; delivered again")

    def _settle_claims(self, plan: _Plan) -> None:
        """Claims of calls that failed: kept as uncertain if the call may have acted, else
        given back. Accepted ones became records as their calls returned."""
        ledger = self.context.ledger
        if ledger is None:
            return
        ended = [a for a in plan.actions() if a.claimed and a.error is not None]
        if not ended:
            return

        def settle(action: _Action) -> None:
            assert ledger is not None
            assert action.error is not None
            try:
                if action.error.uncertain:
                    ledger.mark_uncertain(action.target, self.owner)
                else:
                    ledger.release_termination(action.target, self.owner)
            except LedgerUnavailable as exc:
                logger.warning(
                    "termination claim kept until its lease ends",
                    extra={"job_id": action.target, "error": str(exc)},
                )

        _each(settle, ended)

    def _records(self, actions: Sequence[_Action], plan: _Plan) -> list[TerminationRecord]:
        """The termination records of a call's accepted jobs: the target's (its accepted
        claim) and those of the jobs it stops that have lines (an array's children)."""
        accepted_at = _now_ms()
        records: dict[str, TerminationRecord] = {}
        for action in actions:
            if action.error is not None:
                continue
            lines = plan.lines(action)
            attempts = {line.job_id: _attempt(line.job) for line in lines if line.job is not None}
            for line in lines:
                request, record = line.named.request, line.named.record
                for job_id in (action.target, line.job_id):
                    records.setdefault(
                        job_id,
                        TerminationRecord(
                            job_id,
                            accepted_at,
                            request.policy,
                            request.request_id,
                            record.source.value,
                            message_id=record.message_id,
                            owner=self.owner,
                            attempt=attempts.get(job_id),
                        ),
                    )
        return list(records.values())

    def _account_parent(self, line: Line) -> AuditRecord:
        """An array not terminated as a whole: failed while a child of it failed in this
        delivery (it is decided again with them), else its skip line."""
        prefix = f"{line.job_id}:"
        if any(j.startswith(prefix) for j in self.failed[line.named.record.message_id]):
            return self.outcome(line, Outcome.FAILED, "waiting for its children (see their lines)")
        return self.outcome(line, Outcome.SKIPPED)

    def _terminate(self, plan: _Plan, reason: str, group: list[_Action]) -> bool:
        """One queue and reason: 50 a call, each call's lines written as it returns. Returns
        True when the function's time ran low before the group was done."""
        by_target = {a.target: a for a in group}
        try:
            for results in self.context.batch.terminate_chunks(list(by_target), reason):
                done: list[AuditRecord] = []
                returned: list[_Action] = []
                for result in results:
                    action = by_target[result.job_id]
                    action.error, action.done = result.error, True
                    returned.append(action)
                    done.extend(self._account_call(plan.lines(action), action))
                # The lines first: the records' writes may be slow, and the function may be
                # stopped during them; a termination without its line is lost for good.
                self.emit(done)
                self.context.on_terminated(self._records(returned, plan))
        except OutOfTime:
            return True
        return False

    def _account_call(self, lines: Sequence[Line], action: _Action) -> list[AuditRecord]:
        """The lines of one returned call. Identical requests share the call; only the first
        one's line for a job says `terminated`, the others are told which request it was."""
        first: dict[str, Line] = {}
        accounted = []
        for line in lines:
            earlier = first.setdefault(line.job_id, line)
            if action.error is not None or earlier is line:
                accounted.append(self._account(line, action))
                continue
            record = earlier.named.record
            holder = ClaimHolder("", record.message_id, earlier.named.request.request_id)
            accounted.append(self._terminated_by(line, f"{holder.name} (the same call)"))
        return accounted

    def _account(self, line: Line, action: _Action) -> AuditRecord:
        if action.error is None:
            return self.outcome(line, Outcome.TERMINATED)
        if action.error.uncertain:
            self.attempted[line.named.record.message_id].add(line.job_id)
        return self.outcome(line, Outcome.FAILED, str(action.error))

    def _account_deferred(self, line: Line, claim: _Deferred) -> AuditRecord:
        stopped = frozenset().union(*(a.stops for a in claim.behind if a.error is None))
        wanted = _stops(line)
        if wanted <= stopped:
            messages = ", ".join(sorted({a.target for a in claim.behind}))
            done = Line(
                line.named,
                line.job_id,
                line.job,
                skip(
                    f"already terminated: another request in this batch terminated it "
                    f"(call on {messages}) with another reason",
                    line.verdict.dry_run,
                    line.verdict.age,
                ),
            )
            return self.outcome(done, Outcome.SKIPPED)
        return self.outcome(
            line,
            Outcome.FAILED,
            "deferred: another request in this batch terminates this job with another reason; "
            "delivered again",
        )

    def _remember(self, records: Sequence[ParsedRecord]) -> None:
        """Messages SQS delivers again keep what this delivery settled."""
        ledger = self.context.ledger
        if ledger is None:
            return
        for record in records:
            message_id = record.message_id
            if message_id not in self.result.retry_message_ids:
                continue
            # An array is settled only when none of its children is still open.
            failed = self.failed[message_id]
            open_parents = {j.split(":", 1)[0] for j in failed if ":" in j}
            settled = self.settled[message_id] - open_parents
            try:
                ledger.settle(
                    self._key(record), _hash(record), settled, self.attempted[message_id], failed
                )
            except LedgerUnavailable as exc:
                logger.warning("could not record settled jobs of %s: %s", message_id, exc)


def _attempt(job: JobSnapshot) -> int:
    """The job's current attempt, from 0: Batch lists finished attempts only, so a finished
    job's last attempt is its last listed one (a claim of it must hold after the job fails)."""
    return max(job.attempt - 1, 0) if job.status.is_final else job.attempt


def _each(call: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """`call` on every item, CLAIM_THREADS at a time (one DynamoDB call each; boto3 clients
    are thread-safe); a single item in this thread."""
    if len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(CLAIM_THREADS, len(items))) as pool:
        return list(pool.map(call, items))


def _stops(line: Line) -> frozenset[str]:
    """Every job a termination stops: its target, an array's unfinished children, and a
    multi-node parallel job's nodes (terminating the main job stops them all)."""
    assert line.target is not None
    stops = line.covers | {line.target}
    job = line.job
    if job is None or not job.num_nodes or line.target != job.job_id:
        return stops
    main = job.main_node_job_id
    if main is None:
        return stops | {f"{job.job_id}#{i}" for i in range(job.num_nodes)}
    if job.is_main_node:  # the job ends with its main node: every node stops
        return stops | {main} | {f"{main}#{i}" for i in range(job.num_nodes)}
    return stops


class _Plan:
    """The terminations a batch asks for. Identical terminations (same target, same reason)
    share one action; one that would stop a job that an action of another reason already stops
    is deferred, and settled after the calls."""

    def __init__(self) -> None:
        self._actions: dict[tuple[str, str], _Action | _Deferred] = {}
        self._claims: dict[str, _Action] = {}
        self._lines: dict[int, list[Line]] = defaultdict(list)
        self.deferred: list[tuple[Line, _Deferred]] = []

    def add(self, line: Line) -> None:
        assert line.target is not None
        assert line.job is not None
        reason = line.named.request.reason
        key = (line.target, reason)
        if key not in self._actions:
            self._actions[key] = self._new(line, reason)
        found = self._actions[key]
        if isinstance(found, _Deferred):
            self.deferred.append((line, found))
        else:
            self._lines[id(found)].append(line)

    def _new(self, line: Line, reason: str) -> _Action | _Deferred:
        assert line.target is not None
        assert line.job is not None
        stops = _stops(line)
        behind = {
            id(a): a for a in (self._claims.get(j) for j in stops) if a and a.reason != reason
        }
        if behind:
            return _Deferred(tuple(behind.values()))
        # The safety rules admit only jobs of a known, allowed queue.
        assert line.job.job_queue is not None
        action = _Action(line.target, reason, line.job.job_queue, stops)
        for job_id in stops:
            self._claims.setdefault(job_id, action)
        return action

    def lines(self, action: _Action) -> list[Line]:
        return self._lines[id(action)]

    def actions(self) -> list[_Action]:
        """Every termination still planned."""
        return [a for a in self._actions.values() if isinstance(a, _Action)]

    def drop(self, action: _Action) -> None:
        """A termination another request's claim holds: no call here."""
        self._actions.pop((action.target, action.reason), None)

    def groups(self) -> list[tuple[str, list[_Action]]]:
        """Actions by (job queue, reason): TerminateJobs takes "up to 50 jobs in a job queue"."""
        grouped: dict[tuple[str, str], list[_Action]] = defaultdict(list)
        for action in self._actions.values():
            if isinstance(action, _Action):
                grouped[(action.queue, action.reason)].append(action)
        return [(reason, actions) for (_, reason), actions in grouped.items()]


def _hash(record: ParsedRecord) -> str:
    assert record.request is not None
    return request_hash(record.request.to_json())


def _with_error(record: ParsedRecord, error: str) -> ParsedRecord:
    return ParsedRecord(
        record.message_id,
        record.body,
        None,
        record.source,
        error,
        sender=record.sender,
        receive_count=record.receive_count,
        named_job_ids=record.named_job_ids,
    )
