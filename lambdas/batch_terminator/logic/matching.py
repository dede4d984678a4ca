"""Matching of queue, job definition and job name patterns (names, ARNs, globs)."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase


def resource_name(arn_or_name: str) -> str:
    """`arn:aws:batch:…:job-queue/gpu` → `gpu`; a plain name is returned as is."""
    return arn_or_name.rsplit("/", 1)[-1] if arn_or_name.startswith("arn:") else arn_or_name


def job_definition_name(arn_or_name: str) -> str:
    """`arn:…:job-definition/train-bert:7` or `train-bert:7` → `train-bert`."""
    return resource_name(arn_or_name).split(":", 1)[0]


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    """Case-sensitive glob match, as Batch names are case-sensitive."""
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def queue_matches(job_queue: str, patterns: Iterable[str]) -> bool:
    """A queue pattern may be a name, an ARN or a glob over either."""
    name = resource_name(job_queue)
    return any(fnmatchcase(job_queue, p) or fnmatchcase(name, p) for p in patterns)


def job_definition_matches(job_definition: str, patterns: Iterable[str]) -> bool:
    """A pattern matches a definition's ARN, its `name:revision`, or its name (any revision)."""
    with_revision = resource_name(job_definition)
    name = job_definition_name(job_definition)
    return any(
        fnmatchcase(job_definition, p) or fnmatchcase(with_revision, p) or fnmatchcase(name, p)
        for p in patterns
    )


def tags_match(job_tags: dict[str, str], wanted: dict[str, str]) -> bool:
    """Every wanted tag must be present; a value of `*` only requires the key."""
    return all(
        key in job_tags and (value == "*" or job_tags[key] == value)
        for key, value in wanted.items()
    )
