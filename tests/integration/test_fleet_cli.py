"""The CLI across the fleet: `plan`, `audit` and `status` with --profiles/--regions or --fleet ask
every member, and print one table (json: rows) with account and region first; a member that
cannot be asked is a row with its error, the others still answer, and the command exits 1.
`audit --central` answers for every member from the audit account's log group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batch_terminator.models.audit import AuditRecord
from batch_terminator_cli.demo import DEMO_POLICIES, demo_policies
from batch_terminator_cli.fleet_cli import split_values
from batch_terminator_cli.sandbox import Credentials, environment, fleet_sandbox
from tests.integration.cli_support import clean, run
from tests.integration.test_fleet_emulator import MEMBERS, OUTSIDER, TEAM_A, TEAM_B, Scene, act

# Profiles: each team's, the audit account's, one that is not configured, one whose endpoint
# is down, one that reaches an account where nothing is deployed, and one without credentials.
PROFILES = {
    "team-a": TEAM_A,
    "team-b": TEAM_B,
    "ghost": None,
    "down": TEAM_A,
    "empty": "555555555555",
    "nokeys": "",
}
REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture(scope="module")
def fleet_scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scene, Path]]:
    """The fleet of test_fleet_emulator after its members acted, and a directory with an AWS
    credentials file, a config file and a fleet file naming its profiles."""
    from batch_terminator_cli.sandbox import account_credentials

    policies = demo_policies()
    members = dict.fromkeys([*MEMBERS, (OUTSIDER, "us-east-1")], policies)
    home = tmp_path_factory.mktemp("aws")
    with fleet_sandbox(members, admitted=[TEAM_A, TEAM_B]) as fleet:
        scene = act(fleet)
        keys: dict[str, Credentials] = {m.account: m.credentials for m in fleet.members}
        keys[fleet.central.account] = fleet.central
        keys["555555555555"] = account_credentials("555555555555")
        credentials, config = [], []
        for name, account in [*PROFILES.items(), ("audit", fleet.central.account)]:
            if not account:
                continue
            key = keys[account]
            credentials += [
                f"[{name}]",
                f"aws_access_key_id = {key.access_key_id}",
                f"aws_secret_access_key = {key.secret_access_key}",
            ]
        # Nothing listens on port 9 (discard): the member's endpoint is down.
        config += ["[profile down]", "endpoint_url = http://127.0.0.1:9"]
        config += ["[profile nokeys]", "output = json"]
        (home / "credentials").write_text("\n".join(credentials) + "\n", encoding="utf-8")
        (home / "config").write_text("\n".join(config) + "\n", encoding="utf-8")
        (home / "fleet.yaml").write_text(
            "version: 1\n"
            f"central: {{account: '{fleet.central.account}', region: us-east-1, profile: audit}}\n"
            "members:\n"
            f"  - {{account: '{TEAM_A}', regions: [us-east-1, eu-west-1], profile: team-a}}\n"
            f"  - {{account: '{TEAM_B}', regions: [eu-west-1], profile: team-b}}\n",
            encoding="utf-8",
        )
        with environment(
            {
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
                "AWS_CONFIG_FILE": str(home / "config"),
                "AWS_MAX_ATTEMPTS": "1",
                # No instance metadata here: a profile without keys has no credentials at once.
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        ):
            yield scene, home


def _json(result: Any) -> list[dict[str, Any]]:
    start = result.stdout.index("[")
    return list(json.loads(result.stdout[start:]))


def _expected(profile: str, region: str) -> str:
    """What asking `profile` in `region` gives: `ok`, or the error row's kind."""
    account = PROFILES[profile]
    if account is None:
        return "could not be found"
    if not account:
        return "no AWS credentials"
    if profile == "down":
        return "cannot reach the AWS endpoint"
    if (account, region) not in MEMBERS:
        return "does not exist"
    return "ok"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@example(profiles=["team-a", "ghost", "down", "empty", "nokeys", "team-b"], regions=REGIONS)
@given(
    profiles=st.lists(st.sampled_from(sorted(PROFILES)), min_size=1, max_size=4, unique=True),
    regions=st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2, unique=True),
)
def test_the_fan_out_keeps_going_when_members_cannot_be_reached(
    fleet_scene: tuple[Scene, Path], profiles: list[str], regions: list[str]
) -> None:
    """Every profile x region has its row, in order: the state of each member that answered, one
    error line for each that could not be asked (unknown profile, endpoint down, no stack);
    exit 1 exactly when one could not."""
    result = run(
        "status",
        "--profiles",
        ",".join(profiles),
        *[option for region in regions for option in ("--regions", region)],
        "--output",
        "json",
    )
    clean(result)
    rows = _json(result)
    asked = [(p, r) for p in profiles for r in regions]
    assert [row["region"] for row in rows] == [r for _, r in asked]
    for (profile, region), row in zip(asked, rows, strict=True):
        expected = _expected(profile, region)
        if expected == "ok":
            assert "error" not in row, row
            assert row["account"] == PROFILES[profile]
            assert row["paused"] is False
            assert set(row["queues"]) == {"requestQueue", "deadLetterQueue"}
        else:
            assert expected in row["error"], row
            assert row["profile"] == profile
            assert "\n" not in row["error"]
    failed = any(_expected(p, r) != "ok" for p, r in asked)
    assert result.exit_code == (1 if failed else 0)


def test_an_unreachable_member_is_a_row_in_the_table(fleet_scene: tuple[Scene, Path]) -> None:
    result = run(
        "plan", "--policies", str(DEMO_POLICIES), "--profiles", "team-a,ghost", "--regions",
        "us-east-1",
    )  # fmt: skip
    clean(result)
    assert result.exit_code == 1
    assert "unreachable" in result.stdout
    assert "profile ghost" in result.stdout
    assert TEAM_A in result.stdout
    assert "1 of 2 members answered; 1 could not be asked" in result.output


def test_audit_json_rows_carry_account_and_region(fleet_scene: tuple[Scene, Path]) -> None:
    """`audit --fleet`: every member's decisions, each row keyed by the member it came from."""
    scene, home = fleet_scene
    result = run("audit", "--fleet", str(home / "fleet.yaml"), "--output", "json", "--limit", "500")
    clean(result)
    assert result.exit_code == 0, result.output
    rows = _json(result)
    assert rows
    keys = [
        "account",
        "region",
        "timestamp",
        *(f.name for f in AuditRecord.__dataclass_fields__.values()),
    ]
    for row in rows:
        assert list(row)[:2] == ["account", "region"]
        assert set(row) == set(keys)
    terminated = {
        (row["account"], row["region"], row["job_id"])
        for row in rows
        if row["outcome"] == "terminated"
    }
    assert terminated == {
        (account, region, job)
        for (account, region), jobs in scene.terminated.items()
        if (account, region) in MEMBERS
        for job in jobs
    }


def test_plan_text_rows_start_with_account_and_region(fleet_scene: tuple[Scene, Path]) -> None:
    result = run(
        "plan", "--policies", str(DEMO_POLICIES), "--profiles", "team-a,team-b", "--regions",
        "us-east-1,eu-west-1", "--output", "text",
    )  # fmt: skip
    clean(result)
    for line in result.stdout.splitlines():
        account, region, *_ = line.split("\t")
        assert account in (TEAM_A, TEAM_B)
        assert region in REGIONS


def test_audit_central_answers_what_was_terminated_everywhere_and_why(
    fleet_scene: tuple[Scene, Path],
) -> None:
    """One query of the audit account: the jobs terminated in the last 24 hours in both accounts
    and both regions, each with its account, region, policy or reason, and nothing from the
    account the central bus does not admit."""
    scene, home = fleet_scene
    result = run(
        "audit", "--central", "--fleet", str(home / "fleet.yaml"), "--since", "24h",
        "--outcome", "terminated", "--limit", "500", "--output", "json",
    )  # fmt: skip
    clean(result)
    assert result.exit_code == 0, result.output
    rows = _json(result)
    found = {(row["account"], row["region"], row["job_id"]): row for row in rows}
    wanted = {
        (account, region, job): source
        for (account, region), jobs in scene.terminated.items()
        if (account, region) in MEMBERS
        for job, source in jobs.items()
    }
    assert set(found) == set(wanted)
    assert {(a, r) for a, r, _ in found} == set(MEMBERS)
    for key, row in found.items():
        assert row["outcome"] == "terminated"
        assert row["source"] == wanted[key]
        assert row["reason"]
        assert row["timestamp"]
    assert not [row for row in rows if row["account"] == OUTSIDER]


def test_audit_central_filters_by_policy_with_profile_and_region(
    fleet_scene: tuple[Scene, Path],
) -> None:
    scene, _home = fleet_scene
    result = run(
        "audit", "--central", "--profile", "audit", "--region", "us-east-1",
        "--policy", "spend-brake", "--output", "json",
    )  # fmt: skip
    clean(result)
    rows = _json(result)
    assert rows
    assert {row["policy"] for row in rows} == {"spend-brake"}
    assert {(row["account"], row["region"]) for row in rows} == {(TEAM_A, "us-east-1")}
    braked = {row["job_id"] for row in rows if row["outcome"] == "terminated"}
    assert braked == set(scene.terminated[(TEAM_A, "us-east-1")])


def test_audit_central_with_another_account_is_one_line(fleet_scene: tuple[Scene, Path]) -> None:
    """A fleet file whose central profile reaches another account: one line, exit 1."""
    _scene, home = fleet_scene
    fleet = home / "wrong-central.yaml"
    fleet.write_text(
        (home / "fleet.yaml")
        .read_text(encoding="utf-8")
        .replace("profile: audit", "profile: team-a"),
        encoding="utf-8",
    )
    result = run("audit", "--central", "--fleet", str(fleet))
    clean(result)
    assert result.exit_code == 1
    assert "not the central account" in result.output


@pytest.mark.parametrize(
    "arguments",
    [
        ["status", "--fleet", "fleet.yaml", "--profiles", "team-a"],
        ["status", "--profile", "team-a", "--profiles", "team-b"],
        ["status", "--regions", "nowhere-1x"],
        ["status", "0f2d1f8e-5b7a-4c1e-9d3a-000000000000", "--profiles", "team-a"],
        ["audit", "--central", "--profiles", "team-a"],
    ],
)
def test_contradicting_fleet_options_are_usage_errors(arguments: list[str]) -> None:
    result = run(*arguments)
    clean(result)
    assert result.exit_code == 2


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", " ", ""]), max_size=4), max_size=4))
def test_split_values_takes_commas_and_repeats_alike(options: list[list[str]]) -> None:
    given_values = [",".join(parts) for parts in options]
    flat = [p.strip() for parts in options for p in parts if p.strip()]
    assert split_values(given_values) == list(dict.fromkeys(flat))


def test_plan_fleet_uses_each_members_own_policies_file(fleet_scene: tuple[Scene, Path]) -> None:
    """A member with `policiesFile` is planned with it (relative to the fleet file), the others
    with --policies."""
    _scene, home = fleet_scene
    own = home / "team-b-policies.yaml"
    own.write_text(
        DEMO_POLICIES.read_text(encoding="utf-8").replace(
            "name: gpu-runtime-cap", "name: team-b-runtime-cap"
        ),
        encoding="utf-8",
    )
    fleet = home / "own-policies.yaml"
    fleet.write_text(
        (home / "fleet.yaml")
        .read_text(encoding="utf-8")
        .replace("profile: team-b}", "profile: team-b, policiesFile: team-b-policies.yaml}"),
        encoding="utf-8",
    )
    result = run(
        "plan", "--fleet", str(fleet), "--policies", str(DEMO_POLICIES), "--output", "json"
    )
    clean(result)
    assert result.exit_code == 0, result.output
    policies = {(row["account"], row["policy"]) for row in _json(result)}
    assert (TEAM_B, "team-b-runtime-cap") in policies
    assert (TEAM_B, "gpu-runtime-cap") not in policies
    assert (TEAM_A, "team-b-runtime-cap") not in policies
