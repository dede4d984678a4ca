"""The fleet file (`fleet.yaml`): the accounts and regions batch-terminator is deployed to, and the
audit account that collects their decisions. Read by the CDK app (`fleetFile` context) and the CLI.

Also the Logs Insights queries over the fleet's central log group, shared by the central stack's
dashboard and saved queries and by the CLI's `audit --central`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import AfterValidator, Field, StrictInt, StrictStr, ValidationError, field_validator

from batch_terminator.contract import (
    ACCOUNT_ID_PATTERN,
    DECISION_DETAIL_TYPE,
    FLEET_BUS_NAME,
    REGION_PATTERN,
)
from batch_terminator.models.base import ContractModel
from batch_terminator.models.request import partition_of
from batch_terminator_cli.policies_file import UNKNOWN_KEY, duplicate_keys, node_at

# A fleet file lists a few hundred members at most; anything larger is refused unread.
MAX_FILE_BYTES: Final = 256 * 1024
DEFAULT_CENTRAL_LOG_RETENTION_DAYS: Final = 400
# The values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy,
# retentionInDays).
LOG_RETENTION_CHOICES: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip

_ACCOUNT = re.compile(ACCOUNT_ID_PATTERN)
_REGION = re.compile(REGION_PATTERN)
# AWS Organizations: "The regex pattern for an organization ID string requires "o-" followed by
# from 10 to 32 lowercase letters or digits" (Organization.Id, Organizations API reference).
_ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")


class FleetFileError(Exception):
    """A fleet file that cannot be used. str() is one line: `<file>: <where>: <what>`."""

    def __init__(self, source: str, where: str, message: str) -> None:
        self.source = source
        self.where = where
        self.message = message
        super().__init__(f"{source}: {where}: {message}" if where else f"{source}: {message}")


@dataclass(frozen=True)
class Member:
    """One deployment: an account (12 digits) in one region. `profile` is the AWS CLI profile that
    reaches it (CLI only); `policies_file` its own policies file (None: the cdk.json one)."""

    account: str
    region: str
    profile: str | None
    policies_file: str | None


@dataclass(frozen=True)
class Central:
    """The audit account and region holding the fleet bus, its log group and dashboard."""

    account: str
    region: str
    profile: str | None
    log_retention_days: int


@dataclass(frozen=True)
class Fleet:
    """A parsed fleet file. `members` holds one Member per account and region, in file order."""

    central: Central | None
    organization_id: str | None
    members: tuple[Member, ...]

    @property
    def accounts(self) -> tuple[str, ...]:
        """The distinct member accounts, in file order."""
        return tuple(dict.fromkeys(member.account for member in self.members))

    def central_bus_arn(self) -> str | None:
        """The ARN of the central bus members forward their decisions to (None: no central)."""
        if self.central is None:
            return None
        partition = partition_of(self.central.region)
        return (
            f"arn:{partition}:events:{self.central.region}:{self.central.account}"
            f":event-bus/{FLEET_BUS_NAME}"
        )


def _account(value: str) -> str:
    if not _ACCOUNT.fullmatch(value):
        raise ValueError(f"an account is 12 digits, got {value!r}")
    return value


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError(f"not a region name (like us-east-1), got {value!r}")
    return value


_Account = Annotated[StrictStr, AfterValidator(_account)]
_Region = Annotated[StrictStr, AfterValidator(_region)]
_Text = Annotated[StrictStr, Field(min_length=1)]


class _MemberModel(ContractModel):
    account: _Account
    regions: Annotated[list[_Region], Field(min_length=1)]
    profile: _Text | None = None
    policies_file: _Text | None = None


class _CentralModel(ContractModel):
    account: _Account
    region: _Region
    profile: _Text | None = None
    log_retention_days: StrictInt = DEFAULT_CENTRAL_LOG_RETENTION_DAYS

    @field_validator("log_retention_days")
    @classmethod
    def _check_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_CHOICES:
            allowed = ", ".join(str(choice) for choice in LOG_RETENTION_CHOICES)
            raise ValueError(f"{days} is not a CloudWatch Logs retention ({allowed})")
        return days


class _FleetModel(ContractModel):
    version: StrictInt
    central: _CentralModel | None = None
    organization_id: StrictStr | None = None
    members: Annotated[list[_MemberModel], Field(min_length=1)]

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"must be 1, got {value}")
        return value

    @field_validator("organization_id")
    @classmethod
    def _check_organization(cls, value: str) -> str:
        if not _ORGANIZATION_ID.match(value):
            raise ValueError(f"an organization id is o- and 10 to 32 letters or digits: {value!r}")
        return value


def load_fleet(path: str | Path) -> Fleet:
    """Read and check a fleet file. Raises FleetFileError (one line) if it is missing,
    unreadable, not YAML or not a valid fleet; never anything else."""
    source = str(path)
    try:
        with Path(path).open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FleetFileError(source, "", f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise FleetFileError(source, "", f"too large: more than {MAX_FILE_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FleetFileError(source, "", f"not UTF-8 text (byte {exc.start} is not)") from exc
    return parse_fleet(text, source)


def parse_fleet(text: str, source: str = "fleet.yaml") -> Fleet:
    """Check a fleet file's text. Raises FleetFileError (one line) naming the key and its line."""
    root = _compose(text, source)
    data = _construct(root, source)
    try:
        model = _FleetModel.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        where, message = _locate(root, errors[0])
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        raise FleetFileError(source, where, message) from exc
    return _fleet(model, root, source)


def _fleet(model: _FleetModel, root: yaml.Node, source: str) -> Fleet:
    members: list[Member] = []
    seen: dict[tuple[str, str], str] = {}
    for index, entry in enumerate(model.members):
        for position, region in enumerate(entry.regions):
            path = f"members[{index}].regions[{position}]"
            earlier = seen.get((entry.account, region))
            if earlier is not None:
                where, _ = _locate(root, {"loc": ("members", index, "regions", position)})
                raise FleetFileError(
                    source,
                    where,
                    f"account {entry.account} in {region} is listed twice (also {earlier})",
                )
            seen[(entry.account, region)] = path
            members.append(
                Member(
                    account=entry.account,
                    region=region,
                    profile=entry.profile,
                    policies_file=entry.policies_file,
                )
            )
    if model.central is not None:
        _one_partition(model.central.region, model, root, source)
    central = (
        Central(
            account=model.central.account,
            region=model.central.region,
            profile=model.central.profile,
            log_retention_days=model.central.log_retention_days,
        )
        if model.central is not None
        else None
    )
    return Fleet(central=central, organization_id=model.organization_id, members=tuple(members))


def _one_partition(central_region: str, model: _FleetModel, root: yaml.Node, source: str) -> None:
    """EventBridge delivers to a bus of another account or region within one partition only
    (EventBridge user guide, "Sending and receiving events between AWS accounts"; cross-region
    targets likewise): a member in another partition than the central account could never
    forward its decisions. Raises FleetFileError naming the member."""
    central = partition_of(central_region)
    for index, entry in enumerate(model.members):
        for position, region in enumerate(entry.regions):
            if partition_of(region) != central:
                where, _ = _locate(root, {"loc": ("members", index, "regions", position)})
                raise FleetFileError(
                    source,
                    where,
                    f"{region} is in partition {partition_of(region)}, the central account's "
                    f"{central_region} in {central}: EventBridge forwards decisions "
                    "within one partition only (give that partition a fleet file of its own)",
                )


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing aliases (a fleet file has no use for them, and an alias bomb
    would otherwise be walked node by node)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here", event.start_mark
            )
        return super().compose_node(parent, index)


def _compose(text: str, source: str) -> yaml.Node:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FleetFileError(source, where, f"not valid YAML: {problem}") from exc
    except RecursionError as exc:
        raise FleetFileError(source, "", "nested too deeply") from exc
    finally:
        loader.dispose()
    if root is None:
        raise FleetFileError(source, "", "file is empty: it needs `version: 1` and `members`")
    for twice in duplicate_keys(root, ""):
        raise FleetFileError(source, f"{twice.path} (line {twice.line})", twice.message)
    return root


def _construct(root: yaml.Node, source: str) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(root)
    except yaml.YAMLError as exc:  # tags (`!Ref`), unhashable keys
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FleetFileError(source, where, f"not valid YAML: {problem}") from exc
    finally:
        loader.dispose()


# pydantic's wording for the error kinds a fleet file meets, in the file's own terms.
_PLAIN_MESSAGES: Final = {
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
    "list_type": "expected a list",
    "too_short": "must not be empty",
    "int_type": "expected a whole number",
}


def _locate(root: yaml.Node, error: Any) -> tuple[str, str]:
    """(where, what) for a pydantic error: the key path and the line of the node it names."""
    node, path = node_at(root, error["loc"])
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    kind = error.get("type")
    if kind == "missing":
        message = f"missing key {error['loc'][-1]!r}"
    elif kind in _PLAIN_MESSAGES:
        message = _PLAIN_MESSAGES[kind]
    elif kind == "string_type":
        message = "expected a string"
        if isinstance(node, yaml.ScalarNode):
            message = f"expected a quoted string, got {node.value}"
            if path.endswith("account"):
                message += ' (write accounts in quotes: "012345678901")'
    unknown = UNKNOWN_KEY.search(message)
    if unknown and isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if key.value == unknown.group(1):
                node = key
                break
    if node is None:
        return path or "(file)", message
    line = node.start_mark.line + 1
    return (f"{path} (line {line})" if path else f"line {line}"), message


# --- The central log group's Logs Insights queries --------------------------------------------
# EventBridge's CloudWatch Logs target stores the whole event as the message, so Logs Insights
# sees the event's `account`, `region` and `detail.*` fields. `detail-type` needs backquotes.


@dataclass(frozen=True)
class FleetQuery:
    """A Logs Insights query over FLEET_LOG_GROUP: `name` (a saved query's name, a dashboard
    widget's title) and `query` (the query string; the time range is given with the query)."""

    name: str
    query: str


_DECISIONS = f'filter `detail-type` = "{DECISION_DETAIL_TYPE}"'

# What was terminated, everywhere, and why (the CLI's `audit --central` runs this one).
TERMINATED_EVERYWHERE: Final = FleetQuery(
    name="batch-terminator/fleet/terminated",
    query=(
        "fields @timestamp, account, region, detail.job_id, detail.job_name, detail.job_queue, "
        "detail.policy, detail.source, detail.reason, detail.requested_by, detail.age_seconds\n"
        f'| {_DECISIONS} and detail.outcome = "terminated"\n'
        "| sort @timestamp desc\n"
        "| limit 10000"
    ),
)
# Every decision, newest first (the CLI's `audit --central` with other outcomes).
ALL_DECISIONS: Final = FleetQuery(
    name="batch-terminator/fleet/decisions",
    query=(
        "fields @timestamp, account, region, detail.outcome, detail.job_id, detail.job_name, "
        "detail.job_queue, detail.policy, detail.source, detail.reason, detail.skip_reason, "
        "detail.error, detail.requested_by, detail.dry_run\n"
        f"| {_DECISIONS}\n"
        "| sort @timestamp desc\n"
        "| limit 10000"
    ),
)
DECISIONS_BY_OUTCOME: Final = FleetQuery(
    name="batch-terminator/fleet/by-account-region-policy-outcome",
    query=(
        f"{_DECISIONS}\n"
        "| stats count(*) as decisions by account, region, detail.policy, detail.outcome\n"
        "| sort decisions desc"
    ),
)
FAILURES: Final = FleetQuery(
    name="batch-terminator/fleet/failures",
    query=(
        "fields @timestamp, account, region, detail.job_id, detail.policy, detail.source, "
        "detail.error\n"
        f'| {_DECISIONS} and detail.outcome = "failed"\n'
        "| sort @timestamp desc\n"
        "| limit 1000"
    ),
)
CAPS_HIT: Final = FleetQuery(
    name="batch-terminator/fleet/caps-hit",
    query=(
        f'{_DECISIONS} and detail.outcome = "skipped" '
        "and detail.skip_reason like /^policy cap reached/\n"
        "| stats count(*) as caps by account, region, detail.policy\n"
        "| sort caps desc"
    ),
)
# A brake that fired is one (policy, request) pair of source "alarm": the first stats groups the
# pairs, the second counts them (Logs Insights runs a stats over a stats' results).
BRAKES_FIRED: Final = FleetQuery(
    name="batch-terminator/fleet/brakes-fired",
    query=(
        f'{_DECISIONS} and detail.source = "alarm"\n'
        "| stats count(*) as decisions by account, region, detail.policy, detail.request_id\n"
        "| stats count(*) as brakes by account, region, detail.policy\n"
        "| sort brakes desc"
    ),
)
FLEET_QUERIES: Final = (
    TERMINATED_EVERYWHERE,
    ALL_DECISIONS,
    DECISIONS_BY_OUTCOME,
    FAILURES,
    CAPS_HIT,
    BRAKES_FIRED,
)
