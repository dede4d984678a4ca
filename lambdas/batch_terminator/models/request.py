"""The termination request: SQS message body, EventBridge `detail`, CLI payload."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from batch_terminator.contract import (
    ACTIVE_STATUSES,
    MAX_JOB_IDS_PER_REQUEST,
    MAX_REASON_LENGTH,
    JobStatus,
)
from batch_terminator.models.base import ContractModel, Duration, NonEmptyStr

# Batch job ids: a UUID, an array child `uuid:index`, a multi-node job node `uuid#node`.
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:#_-]{0,127}$")
_JOB_ARN = re.compile(r"^arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{12}:job/(?P<id>.+)$")
POLICY_NAME_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
DEFAULT_SELECTOR_LIMIT: Final = 100
MAX_SELECTOR_LIMIT: Final = 1_000


def _job_id(value: str) -> str:
    arn = _JOB_ARN.match(value)
    if arn:
        value = arn.group("id")
    if not _JOB_ID.match(value):
        raise ValueError(f"{value!r} is not a Batch job id")
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


JobId = Annotated[str, StringConstraints(strict=True), AfterValidator(_job_id)]
Reason = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_REASON_LENGTH),
    AfterValidator(_not_blank),
]
StatusList = Annotated[list[JobStatus], BeforeValidator(_one_or_many), Field(min_length=1)]
PolicyName = Annotated[str, StringConstraints(strict=True, pattern=POLICY_NAME_PATTERN)]
Label = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]


def _only_active(statuses: list[JobStatus]) -> list[JobStatus]:
    finished = [s.value for s in statuses if s.is_final]
    if finished:
        raise ValueError(f"finished jobs cannot be terminated: remove {', '.join(finished)}")
    return statuses


ActiveStatusList = Annotated[StatusList, AfterValidator(_only_active)]


class Selector(ContractModel):
    """Which jobs a selector request names; every key given must match."""

    job_queues: Annotated[list[NonEmptyStr], Field(min_length=1, max_length=50)]
    statuses: ActiveStatusList = Field(default_factory=lambda: list(ACTIVE_STATUSES))
    job_name_prefix: NonEmptyStr | None = None
    job_definition: NonEmptyStr | None = None
    tags: dict[NonEmptyStr, NonEmptyStr] | None = None
    created_before: AwareDatetime | None = None
    created_after: AwareDatetime | None = None
    min_age: Duration | None = None

    @property
    def min_age_or_zero(self) -> timedelta:
        return self.min_age or timedelta(0)


class TerminationRequest(ContractModel):
    """Exactly one of `jobId`, `jobIds` or `selector`, and a `reason`."""

    job_id: JobId | None = None
    job_ids: (
        Annotated[list[JobId], Field(min_length=1, max_length=MAX_JOB_IDS_PER_REQUEST)] | None
    ) = None
    selector: Selector | None = None
    reason: Reason
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_SELECTOR_LIMIT)] | None = None
    requested_by: Label | None = None
    request_id: Label | None = None
    dry_run: StrictBool = False
    if_status: StatusList | None = None
    policy: PolicyName | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TerminationRequest:
        given = [
            key
            for key, value in (
                ("jobId", self.job_id),
                ("jobIds", self.job_ids),
                ("selector", self.selector),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of jobId, jobIds or selector"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.limit is not None and self.selector is None:
            raise ValueError("limit applies to selector requests only")
        return self

    @property
    def job_id_list(self) -> list[str]:
        """The ids a by-id request names, without duplicates, in order."""
        ids = [self.job_id] if self.job_id else list(self.job_ids or [])
        return list(dict.fromkeys(ids))

    @property
    def selector_limit(self) -> int:
        return self.limit if self.limit is not None else DEFAULT_SELECTOR_LIMIT
