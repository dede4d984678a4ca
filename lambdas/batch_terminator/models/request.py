"""The termination request (SQS message body, EventBridge `detail`, CLI payload), validated
without pydantic.

`validate_request` is the one validator: the terminator and the CLI both use it. It keeps the
rules and the error texts of `models.request_schema` (the request's pydantic model, the
reference): tests/unit/test_request_validator.py checks, over generated and mutated
bodies, that both accept the same bodies, read them alike and write the same canonical JSON
(the ledger key of a request). Importing pydantic and building its models is a third of a cold
start, which the terminator's first invocation would pay anyway.

Stricter than pydantic's lax mode in one place: `createdBefore`/`createdAfter` take ISO 8601
text with a time zone only, never a number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Final

from batch_terminator.contract import (
    ACTIVE_STATUSES,
    MAX_JOB_IDS_PER_REQUEST,
    MAX_REASON_LENGTH,
    JobStatus,
)
from batch_terminator.logic.bodies import InvalidRequest
from batch_terminator.logic.durations import format_limit, parse_duration
from batch_terminator.logic.policy_rules import check_active
from batch_terminator.logic.texts import (
    POLICY_NAME_PATTERN,
    no_control_characters,
    unknown_keys_message,
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
_POLICY_NAME: Final = re.compile(POLICY_NAME_PATTERN)
DEFAULT_SELECTOR_LIMIT: Final = 100
MAX_SELECTOR_LIMIT: Final = 1_000
MAX_SELECTOR_QUEUES: Final = 50
MAX_LABEL_LENGTH: Final = 256
MAX_TEXT_LENGTH: Final = 1024


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


def check_job_id(value: str, origin: Origin) -> str:
    """A job id, or a job ARN of `origin` reduced to its id. Raises ValueError."""
    arn = _JOB_ARN.fullmatch(value)
    if arn:
        origin.check(
            f"job ARN {value!r}", arn.group("account"), arn.group("region"), arn.group("partition")
        )
        value = arn.group("id")
    if not _JOB_ID.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Batch job id (a UUID, `uuid:N` for an array child, "
            "`uuid#N` for a multi-node node) or a job ARN"
        )
    return value


def check_queue(value: str, origin: Origin) -> str:
    """A job queue's name, or its ARN in `origin`; never a pattern. Raises ValueError."""
    if any(c in value for c in "*?["):
        raise ValueError(
            f"{value!r} is a pattern: a selector names its queues exactly (name or ARN)"
        )
    arn = _QUEUE_ARN.fullmatch(value)
    if arn:
        origin.check(
            f"queue ARN {value!r}",
            arn.group("account"),
            arn.group("region"),
            arn.group("partition"),
        )
        return value
    if not _QUEUE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a job queue name or ARN")
    return value


@dataclass(frozen=True)
class Selector:
    """Which jobs a selector request names; every key given must match. Array children are
    matched on their own (status, age); an array parent is never matched by its PENDING."""

    job_queues: list[str]
    statuses: list[JobStatus]
    job_name_prefix: str | None = None
    job_definition: str | None = None
    tags: dict[str, str] | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    # Time in the current status, measured as policies measure it (README).
    min_age: timedelta | None = None

    @property
    def min_age_or_zero(self) -> timedelta:
        return self.min_age or timedelta(0)


@dataclass(frozen=True)
class TerminationRequest:
    """Exactly one of `jobId`, `jobIds` or `selector`, and a `reason`. Build it with
    `validate_request`, never directly: that is where the rules are."""

    reason: str
    job_id: str | None = None
    job_ids: list[str] | None = None
    selector: Selector | None = None
    limit: int | None = None
    requested_by: str | None = None
    request_id: str | None = None
    dry_run: bool = False
    if_status: list[JobStatus] | None = None
    policy: str | None = None

    @property
    def job_id_list(self) -> list[str]:
        """The ids a by-id request names, without duplicates, in order."""
        ids = [self.job_id] if self.job_id else list(self.job_ids or [])
        return list(dict.fromkeys(ids))

    @property
    def selector_limit(self) -> int:
        return self.limit if self.limit is not None else DEFAULT_SELECTOR_LIMIT

    def to_json(self) -> str:
        """The canonical JSON of the request: camelCase keys in the contract's order, defaults
        written, None left out, durations as text, times in ISO 8601 (`Z` for UTC). Equal
        requests have equal JSON: its hash is the request's ledger key."""
        return json.dumps(_canonical(self), separators=(",", ":"), ensure_ascii=False)


# --- the validator -------------------------------------------------------------------------------

REQUEST_KEYS: Final = (
    "jobId",
    "jobIds",
    "selector",
    "reason",
    "limit",
    "requestedBy",
    "requestId",
    "dryRun",
    "ifStatus",
    "policy",
)
SELECTOR_KEYS: Final = (
    "jobQueues",
    "statuses",
    "jobNamePrefix",
    "jobDefinition",
    "tags",
    "createdBefore",
    "createdAfter",
    "minAge",
)
_STATUS_CHOICES: Final = (
    ", ".join(f"'{s.value}'" for s in list(JobStatus)[:-1]) + f" or '{list(JobStatus)[-1].value}'"
)


# A check of one value: (value, its key path, the error list) → the value read, or None after
# adding its items' errors to the list; raises _Problem for an error of the value itself.
Check = Callable[[Any, str, list[str]], Any]


def _leaf(check: Callable[[Any], Any]) -> Check:
    """A check of a single value (no items of its own) as a Check."""
    return lambda value, _loc, _errors: check(value)


class RequestRefused(InvalidRequest):
    """A request the contract refuses: `problems` one line each (`loc: message`), and the
    exception's text all of them joined with `; `."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class _Problem(Exception):
    """One field's error: its message, as pydantic words it."""


def validate_request(payload: Any, origin: Origin | None = None) -> TerminationRequest:
    """The request `payload` (a parsed JSON object) states. Job and queue ARNs of another
    account, region or partition than `origin`'s are refused. Raises InvalidRequest with every
    problem in one line: `loc: message; loc: message`, `loc` the key path (`selector.jobQueues`,
    `jobIds.3`); it is a RequestRefused, whose `problems` lists them one by one."""
    errors: list[str] = []
    request = _request(payload, origin or Origin(), errors)
    if request is None:
        raise RequestRefused(errors)
    return request


def _object(data: Any, allowed: tuple[str, ...], kind: str, where: str, errors: list[str]) -> bool:
    """Whether `data` is an object with only `allowed` keys and no nulls; else its one error."""
    if not isinstance(data, dict):
        _add(errors, where, f"Input should be a valid dictionary or instance of {kind}")
        return False
    unknown = [key for key in data if key not in allowed]
    if unknown:
        _add(errors, where, unknown_keys_message(unknown, sorted(allowed)))
        return False
    nulls = [key for key, value in data.items() if value is None]
    if nulls:
        _add(
            errors,
            where,
            "; ".join(f"{key!r} is null: give a value or leave the key out" for key in nulls),
        )
        return False
    return True


def _add(errors: list[str], where: str, message: str) -> None:
    errors.append(f"{where}: {message}" if where else message)


def _field(
    data: dict[str, Any],
    key: str,
    check: Check,
    where: str,
    errors: list[str],
    default: Any = None,
    *,
    required: bool = False,
) -> Any:
    """`check(value, loc, errors)` on data[key] when given; `default` when not (an error when
    `required`). A check raises _Problem for an error at `loc`, or adds item errors itself and
    returns None."""
    loc = f"{where}.{key}" if where else key
    if key not in data:
        if required:
            _add(errors, loc, "Field required")
        return default
    try:
        return check(data[key], loc, errors)
    except _Problem as problem:
        _add(errors, loc, str(problem))
        return None


def _request(payload: Any, origin: Origin, errors: list[str]) -> TerminationRequest | None:
    if not _object(payload, REQUEST_KEYS, "TerminationRequest", "", errors):
        return None
    before = len(errors)
    label = _leaf(_text(min_length=1, max_length=MAX_LABEL_LENGTH, plain=True, shows=True))
    values = {
        "job_id": _field(payload, "jobId", _leaf(_in_origin(check_job_id, origin)), "", errors),
        "job_ids": _field(payload, "jobIds", _job_ids(origin), "", errors),
        "selector": _field(payload, "selector", _selector(origin), "", errors),
        "reason": _field(
            payload,
            "reason",
            _leaf(_text(min_length=1, max_length=MAX_REASON_LENGTH, plain=True, shows=True)),
            "",
            errors,
            required=True,
        ),
        "limit": _field(payload, "limit", _leaf(_limit), "", errors),
        "requested_by": _field(payload, "requestedBy", label, "", errors),
        "request_id": _field(payload, "requestId", label, "", errors),
        "dry_run": _field(payload, "dryRun", _leaf(_boolean), "", errors, default=False),
        "if_status": _field(payload, "ifStatus", _active_statuses, "", errors),
        "policy": _field(payload, "policy", _leaf(_policy_name), "", errors),
    }
    if len(errors) > before:
        return None
    given = [
        key
        for key, name in (("jobId", "job_id"), ("jobIds", "job_ids"), ("selector", "selector"))
        if values[name] is not None
    ]
    if len(given) != 1:
        errors.append(
            "give exactly one of jobId, jobIds or selector"
            + (f" (got {', '.join(given)})" if given else "")
        )
        return None
    if values["limit"] is not None and values["selector"] is None:
        errors.append("limit applies to selector requests only")
        return None
    return TerminationRequest(**values)


def _text(
    *, min_length: int, max_length: int | None, plain: bool, shows: bool
) -> Callable[[Any], str]:
    """A strict string of `min_length` to `max_length` characters; `plain`: no control
    characters; `shows`: something visible."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Problem("Input should be a valid string")
        _unicode(value)
        if len(value) < min_length:
            plural = "" if min_length == 1 else "s"
            raise _Problem(f"String should have at least {min_length} character{plural}")
        if max_length is not None and len(value) > max_length:
            plural = "" if max_length == 1 else "s"
            raise _Problem(f"String should have at most {max_length} character{plural}")
        try:
            if plain:
                no_control_characters(value)
            if shows:
                visible(value)
        except ValueError as exc:
            raise _Problem(str(exc)) from exc
        return value

    return check


def _unicode(value: str) -> None:
    """Text that is Unicode: a lone surrogate (U+D800 to U+DFFF, from a `\\ud800` escape or a
    shell argument that is not UTF-8) can be neither logged nor hashed nor sent to Batch."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Problem(
            "Input should be a valid string, unable to parse raw data as a unicode string"
        ) from exc


_non_empty = _text(min_length=1, max_length=MAX_TEXT_LENGTH, plain=True, shows=False)


def _in_origin(check: Callable[[str, Origin], str], origin: Origin) -> Callable[[Any], str]:
    """A strict string passed to `check(value, origin)` (a job id or queue, name or ARN)."""

    def checked(value: Any) -> str:
        if not isinstance(value, str):
            raise _Problem("Input should be a valid string")
        try:
            return check(value, origin)
        except ValueError as exc:
            raise _Problem(str(exc)) from exc

    return checked


def _list_of(item: Check, min_length: int, max_length: int | None, noun: str = "List") -> Check:
    """A list whose items all pass `item`, of `min_length` to `max_length` items (counted as
    pydantic counts them: after validation). `noun` as pydantic's message has it: `Value` where
    the length is checked after a before-validator (one status or a list)."""

    def check(value: Any, loc: str, errors: list[str]) -> list[Any] | None:
        if not isinstance(value, list):
            raise _Problem("Input should be a valid list")
        if max_length is not None and len(value) > max_length:
            raise _Problem(
                f"{noun} should have at most {max_length} item{'' if max_length == 1 else 's'} "
                f"after validation, not {len(value)}"
            )
        before = len(errors)
        items = []
        for index, element in enumerate(value):
            try:
                items.append(item(element, f"{loc}.{index}", errors))
            except _Problem as problem:
                _add(errors, f"{loc}.{index}", str(problem))
        if len(errors) > before:
            return None
        if len(items) < min_length:
            raise _Problem(
                f"{noun} should have at least {min_length} item{'' if min_length == 1 else 's'} "
                f"after validation, not {len(items)}"
            )
        return items

    return check


def _job_ids(origin: Origin) -> Check:
    return _list_of(_leaf(_in_origin(check_job_id, origin)), 1, MAX_JOB_IDS_PER_REQUEST)


def _status(value: Any) -> JobStatus:
    if isinstance(value, str):
        for status in JobStatus:
            if status.value == value:
                return status
    raise _Problem(f"Input should be {_STATUS_CHOICES}")


def _active_statuses(value: Any, loc: str, errors: list[str]) -> list[JobStatus] | None:
    """One status or a list of them, none of them final."""
    statuses = _list_of(_leaf(_status), 1, None, noun="Value")(
        [value] if isinstance(value, str) else value, loc, errors
    )
    if statuses is None:
        return None
    try:
        check_active(statuses)
    except ValueError as exc:
        raise _Problem(str(exc)) from exc
    return list(statuses)


def _limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem("Input should be a valid integer")
    if value < 1:
        raise _Problem("Input should be greater than or equal to 1")
    if value > MAX_SELECTOR_LIMIT:
        raise _Problem(f"Input should be less than or equal to {MAX_SELECTOR_LIMIT}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Problem("Input should be a valid boolean")
    return value


def _policy_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _Problem("Input should be a valid string")
    if not _POLICY_NAME.fullmatch(value):
        raise _Problem(f"String should match pattern '{POLICY_NAME_PATTERN}'")
    return value


def _tags(value: Any, loc: str, errors: list[str]) -> dict[str, str] | None:
    if not isinstance(value, dict):
        raise _Problem("Input should be a valid dictionary")
    before = len(errors)
    for key, item in value.items():
        for part, checked in (("[key]", key), ("", item)):
            where = f"{loc}.{key}{'.' + part if part else ''}"
            try:
                _non_empty(checked)
            except _Problem as problem:
                _add(errors, where, str(problem))
    return None if len(errors) > before else dict(value)


# RFC 3339 date-times as pydantic reads them (its `speedate` parser): a `T`, `t`, `_` or space
# between date and time; seconds and their fraction (after `.` or `,`, cut to microseconds)
# optional; the offset `Z`, `z`, `±HH:MM` or `±HHMM`. Python's `datetime.fromisoformat` takes more
# (week dates, basic format, offsets with seconds), so the shape is checked here first.
_DATE_TIME: Final = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt_ ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?)?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<offset_hours>[0-9]{2}):?(?P<offset_minutes>[0-9]{2}))?"
)


def _aware_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _Problem("Input should be a valid datetime (RFC 3339 text with a time zone)")
    shape = _DATE_TIME.fullmatch(value)
    if shape is None:
        raise _Problem(
            "Input should be a valid datetime, expected RFC 3339 such as 2026-01-01T00:00:00Z"
        )
    if shape["utc"] is None and shape["sign"] is None:
        raise _Problem("Input should have timezone info")
    hours, minutes = int(shape["offset_hours"] or 0), int(shape["offset_minutes"] or 0)
    if hours > 23 or minutes > 59:
        raise _Problem("Input should be a valid datetime, time zone offset out of range")
    offset = timedelta(hours=hours, minutes=minutes) * (-1 if shape["sign"] == "-" else 1)
    try:
        return datetime.combine(
            date.fromisoformat(shape["date"]),
            time(
                int(shape["hour"]),
                int(shape["minute"]),
                int(shape["second"] or 0),
                int((shape["fraction"] or "0")[:6].ljust(6, "0")),
            ),
            tzinfo=timezone(offset),
        )
    except ValueError as exc:
        raise _Problem(f"Input should be a valid datetime, {exc}") from exc


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise _Problem("a duration must be a string such as 90m, 6h or 2d")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _Problem(str(exc)) from exc


def _selector(origin: Origin) -> Check:
    def check(value: Any, loc: str, errors: list[str]) -> Selector | None:
        if not _object(value, SELECTOR_KEYS, "Selector", loc, errors):
            return None
        before = len(errors)
        values = {
            "job_queues": _field(
                value,
                "jobQueues",
                _list_of(_leaf(_in_origin(check_queue, origin)), 1, MAX_SELECTOR_QUEUES),
                loc,
                errors,
                required=True,
            ),
            "statuses": _field(
                value, "statuses", _active_statuses, loc, errors, default=list(ACTIVE_STATUSES)
            ),
            "job_name_prefix": _field(value, "jobNamePrefix", _leaf(_non_empty), loc, errors),
            "job_definition": _field(value, "jobDefinition", _leaf(_non_empty), loc, errors),
            "tags": _field(value, "tags", _tags, loc, errors),
            "created_before": _field(value, "createdBefore", _leaf(_aware_datetime), loc, errors),
            "created_after": _field(value, "createdAfter", _leaf(_aware_datetime), loc, errors),
            "min_age": _field(value, "minAge", _leaf(_duration), loc, errors),
        }
        if len(errors) > before:
            return None
        return Selector(**values)

    return check


# --- the canonical JSON --------------------------------------------------------------------------


def _canonical(request: TerminationRequest) -> dict[str, Any]:
    selector = request.selector
    document: dict[str, Any] = {
        "jobId": request.job_id,
        "jobIds": request.job_ids,
        "selector": None
        if selector is None
        else {
            "jobQueues": selector.job_queues,
            "statuses": [s.value for s in selector.statuses],
            "jobNamePrefix": selector.job_name_prefix,
            "jobDefinition": selector.job_definition,
            "tags": selector.tags,
            "createdBefore": _iso(selector.created_before),
            "createdAfter": _iso(selector.created_after),
            "minAge": None if selector.min_age is None else format_limit(selector.min_age),
        },
        "reason": request.reason,
        "limit": request.limit,
        "requestedBy": request.requested_by,
        "requestId": request.request_id,
        "dryRun": request.dry_run,
        "ifStatus": None if request.if_status is None else [s.value for s in request.if_status],
        "policy": request.policy,
    }
    if document["selector"] is not None:
        document["selector"] = {k: v for k, v in document["selector"].items() if v is not None}
    return {k: v for k, v in document.items() if v is not None}


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 as pydantic writes it: `Z` for a zero offset, microseconds only when any."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
