"""Array jobs: a parent stands for all its unfinished children, or it is not terminated. Pure.

Terminating an array parent terminates every unfinished child (Batch API reference,
TerminateJob). So a parent is terminated only when every unfinished child, in every status,
would be terminated on its own merits; otherwise the children that would are terminated one by
one. A parent's own status says nothing (it sits in PENDING while any child is unfinished), so
preconditions are always checked against the children.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from batch_terminator.models.job import JobSnapshot

V = TypeVar("V")


@dataclass(frozen=True)
class ArrayFamily:
    """An array parent and the children DescribeJobs returned for it (ids `parent:0..size-1`)."""

    parent: JobSnapshot
    children: tuple[JobSnapshot, ...]

    @property
    def complete(self) -> bool:
        """Every child is known: a missing one could be unfinished and would be terminated."""
        size = self.parent.array_size or 0
        known = {c.job_id for c in self.children if c.described}
        return size > 0 and all(f"{self.parent.job_id}:{i}" in known for i in range(size))

    @property
    def unfinished(self) -> tuple[JobSnapshot, ...]:
        """Children a parent's termination would stop: not finished, not already stopping."""
        return tuple(
            c for c in self.children if not c.status.is_final and not c.termination_in_progress
        )


@dataclass(frozen=True)
class ArrayResolution(Generic[V]):
    """`whole`: terminate the parent (it stops exactly `unfinished`); otherwise the children in
    `one_by_one` are terminated each, and `verdicts` says why the others are not."""

    whole: bool
    unfinished: tuple[JobSnapshot, ...]
    verdicts: Mapping[str, V]
    one_by_one: tuple[JobSnapshot, ...]
    why_not_whole: str | None


def resolve(
    family: ArrayFamily,
    judge_child: Callable[[JobSnapshot], V],
    accepted: Callable[[V], bool],
) -> ArrayResolution[V]:
    """Judge every unfinished child on its own merits; the parent only if all are accepted."""
    unfinished = family.unfinished
    verdicts = {child.job_id: judge_child(child) for child in unfinished}
    chosen = tuple(c for c in unfinished if accepted(verdicts[c.job_id]))
    why_not: str | None = None
    if not family.parent.described:
        why_not = "the parent's facts are unknown"
    elif family.parent.termination_in_progress:
        why_not = "the parent is already being terminated"
    elif not family.complete:
        missing = (family.parent.array_size or 0) - len({c.job_id for c in family.children})
        why_not = f"{missing} children are unknown to DescribeJobs"
    elif not unfinished:
        why_not = "no child is unfinished"
    elif len(chosen) < len(unfinished):
        why_not = f"{len(unfinished) - len(chosen)} of {len(unfinished)} unfinished children may not be terminated"
    return ArrayResolution(
        whole=why_not is None,
        unfinished=unfinished,
        verdicts=verdicts,
        one_by_one=() if why_not is None else chosen,
        why_not_whole=why_not,
    )
