"""The termination request as a pydantic model: the contract's rules written declaratively, kept
as the reference that the one validator in use (`models.request.validate_request`, pydantic-free)
is checked against by tests/unit/test_request_validator.py. No function and no command imports
it."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from batch_terminator.contract import (
    ACTIVE_STATUSES,
    MAX_JOB_IDS_PER_REQUEST,
    MAX_REASON_LENGTH,
)
from batch_terminator.models.base import (
    ActiveStatusList,
    ContractModel,
    Duration,
    NonEmptyStr,
    PolicyName,
    no_control_characters,
    visible,
)
from batch_terminator.models.request import (
    MAX_SELECTOR_LIMIT,
    Origin,
    check_job_id,
    check_queue,
)


def origin_of(info: ValidationInfo) -> Origin:
    context = info.context if isinstance(info.context, dict) else {}
    origin = context.get(ORIGIN_CONTEXT)
    return origin if isinstance(origin, Origin) else Origin()


def _job_id(value: str, info: ValidationInfo) -> str:
    return check_job_id(value, origin_of(info))


def _queue(value: str, info: ValidationInfo) -> str:
    return check_queue(value, origin_of(info))


JobId = Annotated[str, StringConstraints(strict=True), AfterValidator(_job_id)]
QueueRef = Annotated[str, StringConstraints(strict=True), AfterValidator(_queue)]
Reason = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_REASON_LENGTH),
    AfterValidator(no_control_characters),
    AfterValidator(visible),
]
Label = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=256),
    AfterValidator(no_control_characters),
    AfterValidator(visible),
]


ORIGIN_CONTEXT: Final = "origin"


class Selector(ContractModel):
    """Which jobs a selector request names; every key given must match. Array children are
    matched on their own (status, age); an array parent is never matched by its PENDING."""

    job_queues: Annotated[list[QueueRef], Field(min_length=1, max_length=50)]
    statuses: ActiveStatusList = Field(default_factory=lambda: list(ACTIVE_STATUSES))
    job_name_prefix: NonEmptyStr | None = None
    job_definition: NonEmptyStr | None = None
    tags: dict[NonEmptyStr, NonEmptyStr] | None = None
    created_before: AwareDatetime | None = None
    created_after: AwareDatetime | None = None
    min_age: Duration | None = Field(
        default=None,
        description="Time in the current status, measured as policies measure it (README).",
    )


class TerminationRequest(ContractModel):
    """Exactly one of `jobId`, `jobIds` or `selector`, and a `reason`.

    Validate with `model_validate(payload, context={"origin": Origin(account, region)})` so
    ARNs of another account or region are rejected."""

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
    if_status: ActiveStatusList | None = None
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
