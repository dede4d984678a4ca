"""The termination request: SQS message body, EventBridge `detail`, CLI payload."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
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

# Batch job ids are UUIDs; an array child is `uuid:index` and a multi-node parallel job's node
# `uuid#node` (Batch user guide: "Array jobs", "Multi-node parallel jobs").
_UUID: Final = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# ASCII digits without leading zeros: `\d` would take any Unicode digit, and Batch has no `:01`.
_INDEX: Final = r"(?:0|[1-9][0-9]{0,4})"
_JOB_ID: Final = re.compile(rf"{_UUID}(?::{_INDEX}|#{_INDEX})?")
_BATCH_ARN: Final = (
    r"arn:(?P<partition>aws[a-z-]*):batch:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12})"
)
_JOB_ARN: Final = re.compile(rf"{_BATCH_ARN}:job/(?P<id>.+)")
# Queue names: up to 128 letters, numbers, hyphens and underscores (CreateJobQueue).
_QUEUE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_QUEUE_ARN: Final = re.compile(rf"{_BATCH_ARN}:job-queue/[A-Za-z0-9_-]{{1,128}}")
DEFAULT_SELECTOR_LIMIT: Final = 100
MAX_SELECTOR_LIMIT: Final = 1_000
ORIGIN_CONTEXT: Final = "origin"


# Which partition a region is in: each partition's `regionRegex` in botocore's
# data/endpoints.json (and partitions.json), the specific ones first. A region none matches is
# taken as the standard partition `aws`, as botocore builds a client for a region it does not
# know. tests/unit/test_request_parsing.py checks this against botocore's own data.
_PARTITIONS: Final = (
    ("aws-us-gov", re.compile(r"us-gov-[a-z]+-[0-9]+", re.ASCII)),
    ("aws-iso", re.compile(r"us-iso-[a-z]+-[0-9]+", re.ASCII)),
    ("aws-iso-b", re.compile(r"us-isob-[a-z]+-[0-9]+", re.ASCII)),
    ("aws-iso-e", re.compile(r"eu-isoe-[a-z]+-[0-9]+", re.ASCII)),
    ("aws-iso-f", re.compile(r"us-isof-[a-z]+-[0-9]+", re.ASCII)),
    ("aws-eusc", re.compile(r"eusc-de-[a-z]+-[0-9]+", re.ASCII)),
    ("aws-cn", re.compile(r"cn-[a-z]+-[0-9]+", re.ASCII)),
)
STANDARD_PARTITION: Final = "aws"


def partition_of(region: str) -> str:
    """The partition of a region name: `us-gov-west-1` → `aws-us-gov`, `cn-north-1` → `aws-cn`,
    `us-east-1` (or a region no partition claims) → `aws`."""
    for partition, pattern in _PARTITIONS:
        if pattern.fullmatch(region):
            return partition
    return STANDARD_PARTITION


@dataclass(frozen=True)
class Origin:
    """The account and region a terminator serves: ARNs and events of any other are rejected,
    and ARNs of another partition (derived from the region). None where unknown (the CLI
    validating a request before sending it)."""

    account: str | None = None
    region: str | None = None

    @property
    def partition(self) -> str | None:
        """This region's partition (`aws`, `aws-cn`, `aws-us-gov`...); None without a region."""
        return None if self.region is None else partition_of(self.region)

    def check(self, what: str, account: str, region: str, partition: str | None = None) -> None:
        """Raises ValueError when `account`, `region` or an ARN's `partition` (when given) are
        not this origin's: an ARN of another partition names another AWS, whatever its account
        and region fields say."""
        if self.account is not None and account != self.account:
            raise ValueError(f"{what} is in account {account!r}, not {self.account}")
        if self.region is not None and region != self.region:
            raise ValueError(f"{what} is in region {region!r}, not {self.region}")
        if partition is not None and self.partition is not None and partition != self.partition:
            raise ValueError(f"{what} is in partition {partition!r}, not {self.partition}")


def origin_of(info: ValidationInfo) -> Origin:
    context = info.context if isinstance(info.context, dict) else {}
    origin = context.get(ORIGIN_CONTEXT)
    return origin if isinstance(origin, Origin) else Origin()


def _job_id(value: str, info: ValidationInfo) -> str:
    arn = _JOB_ARN.fullmatch(value)
    if arn:
        origin_of(info).check(
            f"job ARN {value!r}", arn.group("account"), arn.group("region"), arn.group("partition")
        )
        value = arn.group("id")
    if not _JOB_ID.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Batch job id (a UUID, `uuid:N` for an array child, "
            "`uuid#N` for a multi-node node) or a job ARN"
        )
    return value


def _queue(value: str, info: ValidationInfo) -> str:
    if any(c in value for c in "*?["):
        raise ValueError(
            f"{value!r} is a pattern: a selector names its queues exactly (name or ARN)"
        )
    arn = _QUEUE_ARN.fullmatch(value)
    if arn:
        origin_of(info).check(
            f"queue ARN {value!r}",
            arn.group("account"),
            arn.group("region"),
            arn.group("partition"),
        )
        return value
    if not _QUEUE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a job queue name or ARN")
    return value


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

    @property
    def min_age_or_zero(self) -> timedelta:
        return self.min_age or timedelta(0)


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

    @property
    def job_id_list(self) -> list[str]:
        """The ids a by-id request names, without duplicates, in order."""
        ids = [self.job_id] if self.job_id else list(self.job_ids or [])
        return list(dict.fromkeys(ids))

    @property
    def selector_limit(self) -> int:
        return self.limit if self.limit is not None else DEFAULT_SELECTOR_LIMIT
