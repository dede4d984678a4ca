"""terminateOnlyTagged through the real terminator: a job without the stack's required tag is
skipped with why, by id, by selector and as an array or multi-node job, and Batch never sees a
call for it (the IAM condition would only be the backstop)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batch_terminator.contract import TERMINATE_ONLY_TAGGED_ENV
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.sandbox import Sandbox, sandbox

TEAM = {"team": "ml-platform"}
WHY = "not tagged team=ml-platform (terminateOnlyTagged)"


@pytest.fixture
def box(policies: PoliciesFile) -> Iterator[Sandbox]:
    with sandbox(policies, {TERMINATE_ONLY_TAGGED_ENV: "team=ml-platform"}) as running:
        yield running


def test_only_tagged_jobs_are_terminated_by_id(box: Sandbox) -> None:
    tagged = box.world.job("tagged", "spot-cpu", "RUNNING", tags=TEAM)
    untagged = box.world.job("untagged", "spot-cpu", "RUNNING")
    other_team = box.world.job("other", "spot-cpu", "RUNNING", tags={"team": "ml"})

    box.send({"jobIds": [tagged, untagged, other_team], "reason": "only tagged"})
    box.run_terminator()

    assert box.outcome(tagged) == "terminated"
    for job in (untagged, other_team):
        assert box.outcome(job) == "skipped"
        assert box.decision(job)["skip_reason"] == WHY
    assert {e.job_id for e in box.control.terminations()} == {tagged}


def test_selector_and_array_and_multinode_follow_their_parent_tag(box: Sandbox) -> None:
    array = box.world.job("array", "gpu-training", "RUNNING", array_size=2)
    tagged_array = box.world.job("tagged-array", "gpu-training", "RUNNING", array_size=2, tags=TEAM)
    mnp = box.world.multinode_job("mnp", "gpu-training", "RUNNING")

    box.send({"selector": {"jobQueues": ["gpu-training"]}, "reason": "sweep the queue"})
    box.run_terminator()

    stopped = {e.job_id for e in box.control.terminations()}
    assert stopped == {f"{tagged_array}:0", f"{tagged_array}:1"}
    for job in (array, f"{array}:0", f"{array}:1"):
        assert box.decision(job)["skip_reason"] == WHY, job
    assert box.outcome(mnp) == "skipped"
    assert box.decision(mnp)["skip_reason"] == WHY


def test_dry_run_says_the_tag_rule_would_skip(box: Sandbox) -> None:
    untagged = box.world.job("untagged", "spot-cpu", "RUNNING")

    box.send({"jobIds": [untagged], "reason": "dry", "dryRun": True})
    box.run_terminator()

    assert box.decision(untagged)["skip_reason"] == WHY
    assert box.control.terminations() == []
