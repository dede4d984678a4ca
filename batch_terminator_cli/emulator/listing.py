"""ListJobs selection and paging, as the ListJobs API reference describes them.

- exactly one of jobQueue, arrayJobId, multiNodeJobId;
- without filters, one status, RUNNING when none is given; with filters, the status is ignored
  ("If the filters parameter is specified, the jobStatus parameter is ignored and jobs with any
  status are returned", ListJobsRequest.jobStatus, botocore model);
- filters JOB_NAME, JOB_DEFINITION (a trailing * matches a prefix), BEFORE/AFTER_CREATED_AT;
- pages of at most 1,000 with an opaque nextToken.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Final

from moto.batch.exceptions import ClientException

from batch_terminator_cli.emulator.jobs import ALL_STATUSES, EmulatedJob

MAX_PAGE: Final = 1000


def select(
    candidates: Sequence[EmulatedJob], job_status: str | None, filters: list[dict[str, Any]] | None
) -> list[EmulatedJob]:
    if filters:
        return [job for job in candidates if all(_filter_matches(job, f) for f in filters)]
    status = job_status or "RUNNING"
    if status not in ALL_STATUSES:
        raise ClientException(f"jobStatus {status} is not one of {' | '.join(ALL_STATUSES)}")
    return [job for job in candidates if job.status == status]


def page(
    selected: list[EmulatedJob], max_results: int | None, next_token: str | None
) -> tuple[list[EmulatedJob], str | None]:
    page_size = max_results or MAX_PAGE
    if not 1 <= page_size <= MAX_PAGE:
        raise ClientException(f"maxResults must be between 1 and {MAX_PAGE}")
    start = _decode_token(next_token)
    chosen = selected[start : start + page_size]
    end = start + len(chosen)
    return chosen, _encode_token(end) if end < len(selected) else None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ClientException("nextToken is invalid") from exc


def _prefix_match(value: str, pattern: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


def _filter_matches(job: EmulatedJob, query: dict[str, Any]) -> bool:
    name, values = query.get("name"), list(query.get("values") or [])
    if not values:
        raise ClientException("a filter needs values")
    if name == "JOB_NAME":
        return any(_prefix_match(job.job_name, v) for v in values)
    if name == "JOB_DEFINITION":
        definition = job.job_definition
        forms = (definition.arn, definition.name, f"{definition.name}:{definition.revision}")
        return any(_prefix_match(form, v) for v in values for form in forms)
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
        created = int(job.job_created_at.timestamp() * 1000)
        limit = int(values[0])
        return created < limit if name == "BEFORE_CREATED_AT" else created > limit
    raise ClientException(
        f"filter {name} is not one of JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT, AFTER_CREATED_AT"
    )
