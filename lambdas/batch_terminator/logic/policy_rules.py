"""The rules a policies file must keep beyond its types, pure and shared: the schema models
(`models.policies_schema`) apply them where people write the file, and the functions' reader
(`models.policies`) applies them again to the document it is shipped as, so a file that would
brake on every alarm, or terminate every matching job on every sweep, is refused on both paths.
Each raises ValueError with the message a person sees."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Final

from batch_terminator.contract import JobStatus

MIN_SWEEP_INTERVAL: Final = timedelta(minutes=1)
MAX_SWEEP_INTERVAL: Final = timedelta(days=1)
MAX_PER_RUN_LIMIT: Final = 10_000
# The per-job limit carried by the `batch-terminator:max-runtime` tag acts as this policy.
TAG_LIMIT_POLICY: Final = "max-runtime-tag"


# Batch tag keys are 1 to 128 characters (Batch API reference, TagResource: tags). A longer
# protect tag could never be on a job, so it would protect nothing.
MAX_TAG_KEY_LENGTH: Final = 128


def check_protect_tag(key: str) -> None:
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise ValueError(
            f"protectTag is {len(key)} characters: a Batch tag key has at most "
            f"{MAX_TAG_KEY_LENGTH}, so no job could carry it and none would be protected"
        )


def check_sweep_interval(interval: timedelta) -> None:
    if not MIN_SWEEP_INTERVAL <= interval <= MAX_SWEEP_INTERVAL:
        raise ValueError("sweepInterval must be between 1m and 1d")


def check_active(statuses: Sequence[JobStatus]) -> None:
    finished = [s.value for s in statuses if s.is_final]
    if finished:
        raise ValueError(f"finished jobs cannot be terminated: remove {', '.join(finished)}")


def check_when(statuses: Sequence[JobStatus], older_than: timedelta | None) -> None:
    if (
        older_than is not None
        and JobStatus.STARTING in statuses
        and JobStatus.RUNNABLE not in statuses
    ):
        raise ValueError(
            "STARTING needs RUNNABLE in the same list when olderThan is given: Batch records "
            "no time for entering STARTING, so a STARTING job's age is counted from when it "
            "became RUNNABLE (write status: [RUNNABLE, STARTING])"
        )


def check_trigger(alarms: Sequence[str] | None, budgets: Sequence[str] | None) -> None:
    if not alarms and not budgets:
        raise ValueError("a trigger names at least one alarm or budget")
    for name in alarms or []:
        if not name.strip("*"):
            raise ValueError(
                f"alarm pattern {name!r} names every alarm of the account: any alarm "
                "entering ALARM would brake; name the alarms (a prefix glob like "
                "'batch-*' is fine)"
            )
        if any(c in name for c in "?[]"):
            raise ValueError(
                f"alarm pattern {name!r}: only * may be used as a wildcard (EventBridge "
                "patterns and Lambda permissions have no ? or [ ])"
            )


def check_policy(scheduled: bool, older_than: timedelta | None, max_per_run: int) -> None:
    if scheduled and older_than is None:
        raise ValueError(
            "a scheduled policy (no trigger) needs when.olderThan: without it every "
            "matching job would be terminated on every sweep"
        )
    if not 1 <= max_per_run <= MAX_PER_RUN_LIMIT:
        raise ValueError(f"maxPerRun must be between 1 and {MAX_PER_RUN_LIMIT}")


def check_names(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"policy name {name!r} is used twice")
        if name == TAG_LIMIT_POLICY:
            raise ValueError(f"policy name {TAG_LIMIT_POLICY!r} is reserved")
        seen.add(name)
