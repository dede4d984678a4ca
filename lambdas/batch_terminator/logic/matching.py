"""Matching of queue, job definition and job name patterns.

A pattern matches what it names: a pattern that starts with `arn:` is matched against the ARN,
any other pattern against the name only. Matching names against an ARN's text would let
`*batch*` match every queue of the account (`arn:aws:batch:…`), and `*east*` every queue in
us-east-1.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

GLOB_CHARACTERS = frozenset("*?[")


def is_arn(text: str) -> bool:
    return text.startswith("arn:")


def is_glob(text: str) -> bool:
    return any(c in GLOB_CHARACTERS for c in text)


def resource_name(arn_or_name: str) -> str:
    """`arn:aws:batch:…:job-queue/gpu` → `gpu`; a plain name is returned as is."""
    return arn_or_name.rsplit("/", 1)[-1] if is_arn(arn_or_name) else arn_or_name


def job_definition_name(arn_or_name: str) -> str:
    """`arn:…:job-definition/train-bert:7` or `train-bert:7` → `train-bert`."""
    return resource_name(arn_or_name).split(":", 1)[0]


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    """Case-sensitive glob match, as Batch names are case-sensitive."""
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def queue_matches(job_queue: str, patterns: Iterable[str]) -> bool:
    """`job_queue` is a queue ARN (or a name). ARN patterns match the ARN; other patterns match
    the queue's name."""
    name = resource_name(job_queue)
    for pattern in patterns:
        if is_arn(pattern):
            if is_arn(job_queue) and fnmatchcase(job_queue, pattern):
                return True
        elif fnmatchcase(name, pattern):
            return True
    return False


def job_definition_matches(job_definition: str, patterns: Iterable[str]) -> bool:
    """ARN patterns match the definition's ARN; other patterns match `name:revision` or the name
    (any revision)."""
    with_revision = resource_name(job_definition)
    name = job_definition_name(job_definition)
    for pattern in patterns:
        if is_arn(pattern):
            if is_arn(job_definition) and fnmatchcase(job_definition, pattern):
                return True
        elif fnmatchcase(with_revision, pattern) or fnmatchcase(name, pattern):
            return True
    return False


def tags_match(job_tags: dict[str, str], wanted: dict[str, str]) -> bool:
    """Every wanted tag must be present; a value of `*` only requires the key."""
    return all(
        key in job_tags and (value == "*" or job_tags[key] == value)
        for key, value in wanted.items()
    )
