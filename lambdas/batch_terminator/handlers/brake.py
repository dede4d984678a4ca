"""Brake function: a CloudWatch alarm entering ALARM (an EventBridge event, a Lambda alarm
action, or an SNS notification) or an AWS Budgets alert runs the policies whose trigger names
it, once per transition, and enqueues what they select with `source: alarm`.

A transition (alarm name plus state timestamp; budget name plus SNS timestamp) is claimed with a
conditional write in the ledger table before the brake runs, so the same transition delivered
twice, by one path or by several, brakes once, across cold starts. The claim names its owner,
the invocation's request id, which Lambda keeps when it retries an asynchronous invocation
(twice, then the function's failure queue). Before anything is enqueued, the claim records the
jobs the brake picked (hashed ids); if the invocation fails, its retry finds its own claim and
re-sends only those jobs, never a new selection, so the policy's cap holds. Another invocation
of the same transition backs off while the claim is held, and takes it over only after
`LEASE_SECONDS` (the owner's retries are over by then).

While the system is paused (`pausing.py`) the brake does not run: one `paused` line, no claim
taken, nothing enqueued; the transition is not braked later (an alarm that is still in ALARM
after `resume` brakes on its next transition). If the pause switch cannot be read the invocation
fails, and Lambda retries it (twice, then the function's failure queue).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_terminator.batch_api import BatchApi
from batch_terminator.clients import batch_client, dynamodb_client, sqs_client
from batch_terminator.config import load_config
from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    LEDGER_TABLE_ENV,
    METRICS_NAMESPACE,
    REGION_ENV,
    REQUEST_QUEUE_URL_ENV,
    SERVICE_NAME,
)
from batch_terminator.decisions import DecisionEvents, decision_events_from_environment
from batch_terminator.ledger import Ledger, LedgerUnavailable, Transition
from batch_terminator.logging_setup import make_logger
from batch_terminator.logic.events import ALARM, BrakeSignal, Ignored, parse_brake_events
from batch_terminator.logic.rules import AlarmFired, BudgetAlerted, Trigger, applicable_policies
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.pausing import read_pause
from batch_terminator.reporting import report_paused, report_policy_run
from batch_terminator.sweeping import run_policies

logger = make_logger()
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

LEDGER_TTL_SECONDS: Final = 19 * 86_400
# A claim held this long without finishing is taken over: its owner timed out (the function's
# timeout is 5 minutes). A failed brake gives its claim back at once.
LEASE_SECONDS: Final = 6 * 60
# A retry re-judges its recorded picks without the cap (they are within it already).
UNCAPPED: Final = 10_000


class BrakeBusy(Exception):
    """Another invocation is braking this transition now: Lambda retries this one later."""


BRAKES_APPLIED: Final = "BrakesApplied"


@dataclass(frozen=True)
class Dependencies:
    config: PoliciesFile
    batch_client: Any
    sqs_client: Any
    ledger: Ledger
    queue_url: str
    account: str | None
    # The ledger table's client and name, for the pause switch.
    dynamodb_client: Any
    ledger_table: str
    # The function's region (Lambda sets AWS_REGION): alarms of any other are ignored.
    region: str | None = None
    # Where capped runs are published as decision events; None: not published.
    decisions: DecisionEvents | None = None


@cache
def dependencies() -> Dependencies:
    dynamodb = dynamodb_client()
    return Dependencies(
        config=load_config(),
        batch_client=batch_client(),
        sqs_client=sqs_client(),
        ledger=Ledger(dynamodb, os.environ[LEDGER_TABLE_ENV], LEDGER_TTL_SECONDS),
        queue_url=os.environ[REQUEST_QUEUE_URL_ENV],
        account=os.environ.get(ACCOUNT_ID_ENV) or None,
        dynamodb_client=dynamodb,
        ledger_table=os.environ[LEDGER_TABLE_ENV],
        region=os.environ.get(REGION_ENV) or None,
        decisions=decision_events_from_environment(),
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return process_event(event, dependencies(), datetime.now(UTC), context.aws_request_id)


def trigger_of(signal: BrakeSignal) -> Trigger:
    return AlarmFired(signal.name) if signal.kind == "alarm" else BudgetAlerted(signal.name)


def process_event(event: Any, deps: Dependencies, now: datetime, owner: str) -> dict[str, Any]:
    """Every signal the event carries: braked, duplicate, or ignored, one log line each.
    Paused: `{"outcomes": [], "paused": True, ...}`, one `paused` line, no claim. Raises what a
    brake run raised (its claim stays, with its picks), or botocore's error when the pause
    switch cannot be read, so Lambda retries."""
    outcomes: list[str] = []
    failure: Exception | None = None
    try:
        pause = read_pause(deps.dynamodb_client, deps.ledger_table)
        if pause is not None:
            return {"outcomes": outcomes, **report_paused(pause, logger, path="brake")}
        for signal in parse_brake_events(event, deps.account, deps.region):
            try:
                outcomes.append(_one(signal, deps, now, owner))
            except Exception as exc:  # the other records of the event still brake
                failure = failure or exc
                outcomes.append("failed")
        if failure is not None:
            raise failure
    finally:
        # Every invocation reports, so an alarm on brakes sees data (0 when nothing braked).
        metrics.add_metric(
            name=BRAKES_APPLIED, unit=MetricUnit.Count, value=outcomes.count("braked")
        )
    return {"outcomes": outcomes}


def _one(signal: BrakeSignal | Ignored, deps: Dependencies, now: datetime, owner: str) -> str:
    if isinstance(signal, Ignored):
        logger.info("brake event ignored", extra={"why": signal.why})
        return "ignored"
    where = {"kind": signal.kind, "trigger": signal.name, "path": signal.path, "key": signal.key}
    if signal.state != ALARM:
        logger.info(
            "brake event ignored", extra={**where, "why": f"state {signal.state}: no brake"}
        )
        return "ignored"
    trigger = trigger_of(signal)
    if not applicable_policies(deps.config, trigger):
        logger.info(
            "brake event ignored",
            extra={**where, "why": f"no policy's trigger names {signal.kind} {signal.name}"},
        )
        return "ignored"
    claim = deps.ledger.claim_transition(signal.key, owner, int(now.timestamp()), LEASE_SECONDS)
    if claim.state == "done":
        logger.info("brake already applied", extra=where)
        return "duplicate"
    if claim.state == "busy":
        # Not "applied": the holder may still fail. Lambda runs this invocation again in a
        # minute, when the claim is done (a duplicate), given back, or abandoned.
        raise BrakeBusy(f"{signal.key} is being braked by another invocation")
    try:
        enqueued = _brake(signal, trigger, claim, deps, now, owner)
    except Exception:
        logger.exception("brake failed: its claim is given back for a retry", extra=where)
        try:
            deps.ledger.give_back_transition(signal.key, owner)
        except LedgerUnavailable as exc:
            logger.warning(
                "brake claim not given back: taken over after the lease",
                extra={**where, "error": str(exc), "lease_seconds": LEASE_SECONDS},
            )
        raise
    try:
        deps.ledger.finish_transition(signal.key, owner)
    except LedgerUnavailable as exc:  # enqueued all the same; a retry would re-send the picks
        logger.warning("brake not marked done", extra={**where, "error": str(exc)})
    logger.info(
        "brake applied",
        extra={**where, "enqueued": enqueued, "resumed": claim.state == "ours"},
    )
    return "braked"


def _brake(
    signal: BrakeSignal,
    trigger: Trigger,
    claim: Transition,
    deps: Dependencies,
    now: datetime,
    owner: str,
) -> int:
    """Select (or, on a retry, re-judge what the first attempt picked), record the picks before
    anything is sent, enqueue. Returns how many requests were enqueued."""
    api = BatchApi(deps.batch_client)
    if claim.picks is None:
        run = run_policies(api, deps.config, now, trigger)
        picks = sorted({job_hash(s.job.job_id) for s in run.evaluation.selections})
        deps.ledger.record_transition_picks(signal.key, owner, picks)
    else:
        # Only what was picked, minus what is already stopping or finished; without the cap,
        # which the picks are within already (newer jobs must not push picks out).
        run = run_policies(api, _uncapped(deps.config, trigger), now, trigger)
        wanted = set(claim.picks.split())
        run.evaluation.selections[:] = [
            s for s in run.evaluation.selections if job_hash(s.job.job_id) in wanted
        ]
    summary = report_policy_run(
        run, deps.sqs_client, deps.queue_url, _run_id(signal), api, logger, metrics, deps.decisions
    )
    return int(summary["enqueued"])


def _uncapped(config: PoliciesFile, trigger: Trigger) -> PoliciesFile:
    braking = {p.name for p in applicable_policies(config, trigger)}
    return replace(
        config,
        policies=[
            replace(p, max_per_run=UNCAPPED) if p.name in braking else p for p in config.policies
        ],
    )


def job_hash(job_id: str) -> str:
    """12 characters of the job id's hash: 48 bits, so two picks of one brake collide with a
    chance below one in a million even at 10,000 jobs."""
    return hashlib.sha256(job_id.encode()).hexdigest()[:12]


def _run_id(signal: BrakeSignal) -> str:
    return f"{signal.kind} {signal.name} at {signal.at.isoformat(timespec='seconds')}"[:256]
