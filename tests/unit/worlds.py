"""Generated worlds for the pure core: jobs with a true history, shown the way Batch shows them.

Each `TrueJob` knows what really happened (when it entered its status, in which attempt); its
`snapshot()` is what DescribeJobs would say: startedAt only from RUNNING on, stale startedAt after
a retry, attempts[] of finished attempts, dependencies, lingering terminations. Oracles in the
tests read the truth, never the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from batch_terminator.contract import ACTIVE_STATUSES, JobStatus
from batch_terminator.logic.arrays import ArrayFamily
from batch_terminator.models.job import Attempt, JobSnapshot
from batch_terminator.models.policies import PoliciesFile

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ACCOUNT = "123456789012"
REGION = "us-east-1"
ARN = f"arn:aws:batch:{REGION}:{ACCOUNT}"
PROTECT = "batch-terminator:protect"
QUEUES = ("gpu-training", "spot-cpu", "research")


def queue_arn(name: str) -> str:
    return f"{ARN}:job-queue/{name}"


def job_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@dataclass(frozen=True)
class TrueJob:
    """What really happened to a job, and how Batch reports it."""

    job_id: str
    status: JobStatus
    # True time in the current status, in the current attempt.
    in_status: timedelta
    # True time it has waited to run (RUNNABLE + STARTING) in the current attempt.
    waiting: timedelta = timedelta(0)
    queue: str = "gpu-training"
    name: str = "nightly-train"
    definition: str = "train-bert"
    tags: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    attempt_ran: timedelta = timedelta(hours=1)
    # A first attempt that waited on dependencies (PENDING before RUNNABLE).
    had_dependencies: bool = False
    dependencies_resolved: bool = True
    lingering: bool = False
    described: bool = True
    array_parent_id: str | None = None

    @property
    def runnable_since(self) -> datetime | None:
        """When it became RUNNABLE in this attempt (RUNNABLE, STARTING, RUNNING)."""
        if self.status is JobStatus.RUNNABLE:
            return NOW - self.in_status
        if self.status is JobStatus.STARTING:
            return NOW - self.in_status - self.waiting
        if self.status is JobStatus.RUNNING:
            return NOW - self.in_status - self.waiting
        return None

    @property
    def documented_age(self) -> timedelta:
        """The age the README's rule gives: STARTING counts from RUNNABLE, the rest from entry."""
        if self.status is JobStatus.STARTING:
            return self.in_status + self.waiting
        return self.in_status

    def snapshot(self) -> JobSnapshot:
        entered = NOW - self.in_status
        since_runnable = self.runnable_since
        attempts: tuple[Attempt, ...] = ()
        created = entered
        if since_runnable is not None:
            created = since_runnable - (
                timedelta(hours=2) if self.had_dependencies else timedelta(0)
            )
        started = entered if self.status is JobStatus.RUNNING else None
        if self.retries and since_runnable is not None:
            # Attempts ran `attempt_ran` each, 10 minutes apart; the last one stopped when this
            # one became RUNNABLE.
            stops = [
                since_runnable - (self.attempt_ran + timedelta(minutes=10)) * k
                for k in range(self.retries)
            ][::-1]
            attempts = tuple(Attempt(stop - self.attempt_ran, stop) for stop in stops)
            created = stops[0] - self.attempt_ran - timedelta(minutes=5)
            if started is None:
                started = attempts[-1].started_at  # top-level startedAt: the last attempt's
        depends_on: tuple[str, ...] = (
            ("00000000-0000-4000-8000-999999999999",) if self.had_dependencies else ()
        )
        # The shell resolves when the dependencies stopped (if it could read them).
        resolved = self.had_dependencies and self.dependencies_resolved and not self.retries
        done_at = since_runnable if resolved else None
        return JobSnapshot(
            job_id=self.job_id,
            job_name=self.name,
            job_queue=queue_arn(self.queue) if self.described else None,
            status=self.status,
            created_at=created,
            started_at=started,
            job_definition=f"{ARN}:job-definition/{self.definition}:3",
            tags=dict(self.tags) if self.described else None,
            is_terminated=self.lingering and self.status in (JobStatus.STARTING, JobStatus.RUNNING),
            is_cancelled=self.lingering
            and self.status not in (JobStatus.STARTING, JobStatus.RUNNING),
            array_parent_id=self.array_parent_id,
            attempts=attempts,
            depends_on=depends_on,
            dependencies_done_at=done_at,
            described=self.described,
        )


def plain(
    n: int = 1,
    status: str = "RUNNING",
    age: timedelta = timedelta(hours=13),
    **extra: Any,
) -> JobSnapshot:
    """A described job `age` in `status` (an example builder)."""
    return TrueJob(job_id(n), JobStatus(status), age, **extra).snapshot()


def policies(*items: dict[str, Any], **settings: Any) -> PoliciesFile:
    return PoliciesFile.model_validate(
        {"version": 1, "settings": settings, "policies": list(items)}
    )


def family(
    parent_n: int,
    children: list[TrueJob],
    tags: dict[str, str] | None = None,
    queue: str = "gpu-training",
) -> tuple[ArrayFamily, list[TrueJob]]:
    """An array parent (PENDING) and its children; children inherit the parent's tags."""
    parent_id = job_id(parent_n)
    kids = [
        replace(
            kid,
            job_id=f"{parent_id}:{i}",
            array_parent_id=parent_id,
            queue=queue,
            tags={**(tags or {}), **kid.tags},
        )
        for i, kid in enumerate(children)
    ]
    parent = replace(
        TrueJob(
            parent_id, JobStatus.PENDING, timedelta(hours=20), queue=queue, tags=dict(tags or {})
        ).snapshot(),
        array_size=len(kids),
    )
    return ArrayFamily(parent, tuple(k.snapshot() for k in kids)), kids


# ---- strategies ---------------------------------------------------------------------------

statuses = st.sampled_from(list(ACTIVE_STATUSES))
durations = st.integers(min_value=0, max_value=72 * 3600).map(lambda s: timedelta(seconds=s))
tag_sets = st.dictionaries(
    st.sampled_from([PROTECT, "team", "batch-terminator:max-runtime"]),
    st.sampled_from(["ml", "bio", "2h", "30m", "1000000000d", "soon"]),
    max_size=3,
)


@st.composite
def true_jobs(draw: st.DrawFn, n: int) -> TrueJob:
    status = draw(statuses)
    waits = status in (JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING)
    return TrueJob(
        job_id=job_id(n),
        status=status,
        in_status=draw(durations),
        waiting=draw(durations) if status is not JobStatus.RUNNABLE else timedelta(0),
        queue=draw(st.sampled_from(QUEUES)),
        name=draw(st.sampled_from(["nightly-train", "adhoc"])),
        definition=draw(st.sampled_from(["train-bert", "etl"])),
        tags=draw(tag_sets),
        retries=draw(st.integers(0, 2)) if waits else 0,
        had_dependencies=draw(st.booleans()) if waits else False,
        dependencies_resolved=draw(st.booleans()),
        lingering=draw(st.booleans()) and draw(st.booleans()),
        described=draw(st.booleans()) or draw(st.booleans()),
    )


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[TrueJob], list[tuple[ArrayFamily, list[TrueJob]]]]:
    """Plain jobs and arrays (some protected, some children unknown to DescribeJobs)."""
    plain_jobs = [draw(true_jobs(i)) for i in range(draw(st.integers(0, 25)))]
    arrays = []
    for a in range(draw(st.integers(0, 4))):
        size = draw(st.integers(1, 6))
        kids = [draw(true_jobs(1000 * (a + 1) + i)) for i in range(size)]
        kids = [replace(k, described=True) for k in kids]
        tags = draw(
            st.sampled_from(
                [{}, {PROTECT: "1"}, {"team": "ml"}, {"batch-terminator:max-runtime": "2h"}]
            )
        )
        fam, truth = family(100 + a, kids, tags, queue=draw(st.sampled_from(QUEUES)))
        if draw(st.booleans()) and draw(st.booleans()) and len(fam.children) > 1:
            fam = ArrayFamily(fam.parent, fam.children[:-1])  # a child DescribeJobs did not return
        arrays.append((fam, truth))
    return plain_jobs, arrays


policy_lists = st.lists(
    st.fixed_dictionaries(
        {
            "when": st.fixed_dictionaries(
                {
                    "status": st.lists(statuses.map(str), min_size=1, max_size=3, unique=True).map(
                        lambda s: sorted(set(s) | ({"RUNNABLE"} if "STARTING" in s else set()))
                    ),
                    "olderThan": st.sampled_from(["30m", "2h", "12h"]),
                }
            ),
            "maxPerRun": st.integers(min_value=1, max_value=10),
            "order": st.sampled_from(["oldest-first", "newest-first"]),
            "match": st.sampled_from(
                [
                    {},
                    {"jobQueues": ["gpu-*"]},
                    {"tags": {"team": "ml"}},
                    {"jobNames": ["nightly-*"]},
                ]
            ),
        }
    ),
    max_size=4,
).map(
    lambda items: policies(
        *({**p, "name": f"p{i}"} for i, p in enumerate(items)),
        jobQueues=["gpu-training", "spot-cpu"],
    )
)
