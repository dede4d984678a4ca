"""The fleet file: a valid file reads as one Member per account and region; every kind of invalid
file is one FleetFileError whose message is a single line naming the file, the key and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_terminator.contract import DECISION_DETAIL_TYPE, FLEET_BUS_NAME
from batch_terminator_cli.fleet_file import (
    DEFAULT_CENTRAL_LOG_RETENTION_DAYS,
    FLEET_QUERIES,
    MAX_FILE_BYTES,
    TERMINATED_EVERYWHERE,
    Central,
    Fleet,
    FleetFileError,
    Member,
    load_fleet,
    parse_fleet,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

VALID = """\
version: 1
central:
  account: "111111111111"
  region: us-east-1
  profile: audit
members:
  - account: "222222222222"
    regions: [us-east-1, eu-west-1]
    profile: team-a
    policiesFile: team-a.yaml
  - account: "111111111111"
    regions: [ap-southeast-2]
"""

MEMBER = '{account: "222222222222", regions: [us-east-1]}'


def test_valid_file_reads_one_member_per_account_and_region() -> None:
    fleet = parse_fleet(VALID)
    assert fleet == Fleet(
        central=Central(
            account="111111111111",
            region="us-east-1",
            profile="audit",
            log_retention_days=DEFAULT_CENTRAL_LOG_RETENTION_DAYS,
        ),
        organization_id=None,
        members=(
            Member("222222222222", "us-east-1", "team-a", "team-a.yaml"),
            Member("222222222222", "eu-west-1", "team-a", "team-a.yaml"),
            Member("111111111111", "ap-southeast-2", None, None),
        ),
    )
    assert fleet.accounts == ("222222222222", "111111111111")
    assert fleet.central_bus_arn() == (
        f"arn:aws:events:us-east-1:111111111111:event-bus/{FLEET_BUS_NAME}"
    )


def test_organization_and_retention_and_partition() -> None:
    fleet = parse_fleet(
        "version: 1\norganizationId: o-a1b2c3d4e5\n"
        'central: {account: "111111111111", region: cn-north-1, logRetentionDays: 731}\n'
        'members: [{account: "222222222222", regions: [cn-north-1, cn-northwest-1]}]\n'
    )
    assert fleet.organization_id == "o-a1b2c3d4e5"
    assert fleet.central is not None
    assert fleet.central.log_retention_days == 731
    assert fleet.central_bus_arn() == (
        f"arn:aws-cn:events:cn-north-1:111111111111:event-bus/{FLEET_BUS_NAME}"
    )


def test_no_central_means_no_bus() -> None:
    assert parse_fleet(f"version: 1\nmembers: [{MEMBER}]\n").central_bus_arn() is None


def test_example_fleet_is_three_accounts_in_two_regions() -> None:
    fleet = load_fleet(PROJECT_ROOT / "fleet.example.yaml")
    assert fleet.central is not None
    assert (fleet.central.account, fleet.central.region) == ("111111111111", "us-east-1")
    assert fleet.accounts == ("222222222222", "333333333333", "444444444444")
    assert {(m.account, m.region) for m in fleet.members} == {
        (account, region) for account in fleet.accounts for region in ("us-east-1", "eu-west-1")
    }


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("", "", "file is empty"),
        ("[", "line 1", "not valid YAML"),
        ("- 1\n", "line 1", "expected a mapping"),
        (f"members: [{MEMBER}]\n", "line 1", "missing key 'version'"),
        (f"version: 2\nmembers: [{MEMBER}]\n", "version (line 1)", "must be 1"),
        (f"version: true\nmembers: [{MEMBER}]\n", "version (line 1)", "whole number"),
        ("version: 1\n", "line 1", "missing key 'members'"),
        ("version: 1\nmembers: []\n", "members (line 2)", "must not be empty"),
        (f"version: 1\nmembrs: [{MEMBER}]\n", "line 2", "unknown key 'membrs'"),
        (f"version: 1\nversion: 1\nmembers: [{MEMBER}]\n", "version (line 2)", "given twice"),
        (
            "version: 1\nmembers:\n  - {account: 222222222222, regions: [us-east-1]}\n",
            "members[0].account (line 3)",
            "write accounts in quotes",
        ),
        (
            'version: 1\nmembers:\n  - {account: "2222", regions: [us-east-1]}\n',
            "members[0].account (line 3)",
            "12 digits",
        ),
        (
            'version: 1\nmembers:\n  - {account: "222222222222", regions: [Europe]}\n',
            "members[0].regions[0] (line 3)",
            "not a region name",
        ),
        (
            'version: 1\nmembers:\n  - {account: "222222222222", regions: us-east-1}\n',
            "members[0].regions (line 3)",
            "expected a list",
        ),
        (
            'version: 1\nmembers:\n  - {account: "222222222222", regions: []}\n',
            "members[0].regions (line 3)",
            "must not be empty",
        ),
        (
            'version: 1\nmembers:\n  - {account: "222222222222", regions: [us-east-1]}\n'
            '  - {account: "222222222222", regions: [eu-west-1, us-east-1]}\n',
            "members[1].regions[1] (line 4)",
            "listed twice (also members[0].regions[0])",
        ),
        (
            f"version: 1\nmembers: [{MEMBER}]\n"
            'central: {account: "111111111111", region: us-east-1, logRetentionDays: 2}\n',
            "central.logRetentionDays (line 3)",
            "not a CloudWatch Logs retention",
        ),
        (
            f'version: 1\nmembers: [{MEMBER}]\ncentral: {{account: "111111111111"}}\n',
            "central (line 3)",
            "missing key 'region'",
        ),
        (
            f"version: 1\nmembers: [{MEMBER}]\norganizationId: o-1\n",
            "organizationId (line 3)",
            "organization id",
        ),
        (
            'version: 1\nmembers:\n  - {account: "222222222222", regions: [us-east-1], '
            "profile: null}\n",
            "members[0] (line 3)",
            "'profile' is null",
        ),
        ("version: !Ref One\n", "line 1", "not valid YAML"),
        (
            "version: 1\nregions: &r [us-east-1]\nmembers:\n"
            '  - {account: "222222222222", regions: *r}\n',
            "line 4",
            "aliases",
        ),
    ],
)
def test_invalid_file_is_one_clear_line(text: str, where: str, what: str) -> None:
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(text, "fleet.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"fleet.yaml: {where}: " if where else "fleet.yaml: ")
    assert what in message
    assert caught.value.where == where


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(FleetFileError, match=r"missing\.yaml: cannot read: No such file"):
        load_fleet(missing)
    with pytest.raises(FleetFileError, match="cannot read"):
        load_fleet(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\n\xff\xfe")
    with pytest.raises(FleetFileError, match="not UTF-8"):
        load_fleet(binary)
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(FleetFileError, match="too large"):
        load_fleet(huge)


accounts = st.from_regex(r"\A[0-9]{12}\Z")
regions = st.from_regex(r"\A[a-z]{2}(-[a-z]{1,9}){1,2}-[0-9]\Z")


@given(
    st.dictionaries(
        accounts,
        st.lists(regions, min_size=1, max_size=4, unique=True),
        min_size=1,
        max_size=6,
    )
)
def test_accounts_and_regions_round_trip(layout: dict[str, list[str]]) -> None:
    """Any layout written out (JSON is YAML) reads back as exactly one Member per account and
    region, in the file's order, and `accounts` is the distinct accounts in order."""
    text = json.dumps(
        {
            "version": 1,
            "members": [
                {"account": account, "regions": regions_} for account, regions_ in layout.items()
            ],
        }
    )
    fleet = parse_fleet(text)
    assert [(m.account, m.region) for m in fleet.members] == [
        (account, region) for account, regions_ in layout.items() for region in regions_
    ]
    assert fleet.accounts == tuple(layout)


@given(accounts, regions, st.lists(accounts, max_size=3, unique=True))
def test_a_repeated_account_and_region_is_refused(
    account: str, region: str, between: list[str]
) -> None:
    """However many other members come between, the second listing of an account in a region
    is refused, at that listing."""
    others = [{"account": other, "regions": [region]} for other in between if other != account]
    members = [
        {"account": account, "regions": [region]},
        *others,
        {"account": account, "regions": [region]},
    ]
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(json.dumps({"version": 1, "members": members}))
    assert caught.value.where.startswith(f"members[{len(others) + 1}].regions[0]")
    assert "listed twice (also members[0].regions[0])" in caught.value.message


def test_queries_read_the_decision_events() -> None:
    names = [query.name for query in FLEET_QUERIES]
    assert len(set(names)) == len(names)
    for query in FLEET_QUERIES:
        assert DECISION_DETAIL_TYPE in query.query
    assert 'detail.outcome = "terminated"' in TERMINATED_EVERYWHERE.query
    assert "detail.reason" in TERMINATED_EVERYWHERE.query
