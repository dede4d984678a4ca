"""The emulated Batch, through boto3: it must be as unkind as AWS Batch, and say what really was.

Each test names the behaviour of real Batch it holds the emulator to (see
batch_terminator_cli/emulator/behaviour.py, jobs.py and shapes.py for the sources).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError
from moto import mock_aws

from batch_terminator_cli.emulator import BatchControl, Behaviour, install
from batch_terminator_cli.emulator.world import BatchWorld

REASON = "batch-terminator: test"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
JOB_SUMMARY_MEMBERS = set(
    botocore.session.get_session().get_service_model("batch").shape_for("JobSummary").members
)


@pytest.fixture
def emulated() -> Iterator[BatchWorld]:
    install()
    with mock_aws():
        yield BatchWorld(boto3.Session(region_name="us-east-1"))


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def listed(world: BatchWorld, **query: Any) -> list[dict[str, Any]]:
    return list(world.batch.list_jobs(**query)["jobSummaryList"])


def listed_on_the_wire(world: BatchWorld, **query: Any) -> list[dict[str, Any]]:
    """ListJobs' summaries as sent, before botocore's parser drops members the model lacks."""
    bodies: list[dict[str, Any]] = []

    def capture(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(json.loads(response_dict["body"]))

    events = world.batch.meta.events
    events.register("before-parse.batch.ListJobs", capture)
    try:
        world.batch.list_jobs(**query)
    finally:
        events.unregister("before-parse.batch.ListJobs", capture)
    return list(bodies[0]["jobSummaryList"])


def statuses(world: BatchWorld, job_id: str) -> str:
    return str(world.describe(job_id)["status"])


# -- ListJobs summaries ------------------------------------------------------------------------
def test_summaries_hold_only_job_summary_fields_and_some_lack_the_job_definition(
    emulated: BatchWorld,
) -> None:
    behaviour = emulated.control.behaviour
    jobs: list[str] = []
    # Enough jobs that both halves of the deterministic split are present.
    while len({behaviour.omits_job_definition(j) for j in jobs}) < 2 and len(jobs) < 64:
        jobs.append(emulated.job(f"j{len(jobs)}", "spot-cpu", tags={"team": "ml"}))

    summaries = {s["jobId"]: s for s in listed_on_the_wire(emulated, jobQueue="spot-cpu")}

    assert set(summaries) == set(jobs)
    for job_id, summary in summaries.items():
        assert set(summary) <= JOB_SUMMARY_MEMBERS
        assert "tags" not in summary
        assert "jobQueue" not in summary
        assert ("jobDefinition" in summary) is not behaviour.omits_job_definition(job_id)
    assert any("jobDefinition" not in s for s in summaries.values())
    assert any("jobDefinition" in s for s in summaries.values())
    detail = emulated.describe(jobs[0])
    assert detail["tags"] == {"team": "ml"}
    assert detail["jobQueue"].endswith(":job-queue/spot-cpu")
    assert detail["jobDefinition"].endswith(":job-definition/train-bert:1")


# -- TerminateJob: flagged at once, FAILED later ---------------------------------------------------
def test_terminated_job_lingers_in_its_status_until_settled(emulated: BatchWorld) -> None:
    job = emulated.job("train", "gpu", "RUNNING", age=timedelta(hours=3))

    emulated.batch.terminate_job(jobId=job, reason=REASON)

    described = emulated.describe(job)
    assert (described["status"], described["isTerminated"], described["isCancelled"]) == (
        "RUNNING",
        True,
        False,
    )
    assert "statusReason" not in described  # the old statusReason stays while it lingers
    truth = emulated.control.truth(job)
    assert (truth.status, truth.stopping) == ("RUNNING", True)

    assert emulated.control.settle() == [job]

    final = emulated.describe(job)
    assert (final["status"], final["statusReason"]) == ("FAILED", REASON)
    assert final["stoppedAt"] >= final["startedAt"]
    assert [a["statusReason"] for a in final["attempts"]] == [REASON]
    assert emulated.control.truth(job).stopping is False
    assert emulated.control.settle() == []


def test_linger_lasts_for_the_configured_number_of_reads_by_describe_or_list(
    emulated: BatchWorld,
) -> None:
    assert emulated.control.behaviour.linger_reads == 2
    job = emulated.job("etl", "spot-cpu", "RUNNABLE", age=timedelta(hours=9))
    emulated.batch.terminate_jobs(jobs=[job], reason=REASON)

    first = listed(emulated, jobQueue="spot-cpu", jobStatus="RUNNABLE")
    second = emulated.describe(job)
    third = emulated.describe(job)

    assert [(s["jobId"], s["status"], s["isCancelled"]) for s in first] == [(job, "RUNNABLE", True)]
    assert second["status"] == "RUNNABLE"
    assert (third["status"], third["statusReason"], third["isCancelled"]) == (
        "FAILED",
        REASON,
        True,
    )
    assert listed(emulated, jobQueue="spot-cpu", jobStatus="RUNNABLE") == []


def test_terminating_a_stopping_or_unknown_job_succeeds_and_stops_nothing(
    emulated: BatchWorld,
) -> None:
    job = emulated.job("train", "gpu", "RUNNING")
    unknown = "0f2d1f8e-0000-4000-8000-000000000000"
    emulated.batch.terminate_job(jobId=job, reason=REASON)

    again = emulated.batch.terminate_jobs(jobs=[job, unknown], reason="another reason")
    emulated.batch.terminate_job(jobId=unknown, reason=REASON)

    assert again["successful"] == [job, unknown]
    assert again["errors"] == []
    events = emulated.control.terminations()
    assert [(e.job_id, e.operation, e.reason) for e in events] == [(job, "TerminateJob", REASON)]
    assert events[0].before.status == "RUNNING"
    assert emulated.final(job)["statusReason"] == REASON


# -- DescribeJobs: eventually consistent ------------------------------------------------------------
def test_just_submitted_job_is_missing_from_the_first_describe_but_listed(
    emulated: BatchWorld,
) -> None:
    emulated.queue("spot-cpu")
    job = emulated.batch.submit_job(
        jobName="fresh", jobQueue="spot-cpu", jobDefinition=emulated.definition("etl")
    )["jobId"]

    assert emulated.batch.describe_jobs(jobs=[job])["jobs"] == []
    assert [s["jobId"] for s in listed(emulated, jobQueue="spot-cpu", jobStatus="SUBMITTED")] == [
        job
    ]
    assert [j["jobId"] for j in emulated.batch.describe_jobs(jobs=[job])["jobs"]] == [job]


def test_job_created_in_the_past_is_described_at_once(emulated: BatchWorld) -> None:
    job = emulated.job("old", "spot-cpu", "RUNNABLE", age=timedelta(minutes=5))

    assert [j["jobId"] for j in emulated.batch.describe_jobs(jobs=[job])["jobs"]] == [job]


def test_hidden_job_is_listed_but_not_described_for_the_given_calls(emulated: BatchWorld) -> None:
    hidden = emulated.job("a", "spot-cpu", "RUNNING")
    shown = emulated.job("b", "spot-cpu", "RUNNING")
    emulated.control.hide_from_describe(hidden, times=2)

    both = [hidden, shown]
    answers = [
        [j["jobId"] for j in emulated.batch.describe_jobs(jobs=both)["jobs"]] for _ in range(3)
    ]

    assert answers == [[shown], [shown], [hidden, shown]]
    assert {s["jobId"] for s in listed(emulated, jobQueue="spot-cpu")} == set(both)


# -- timestamps, attempts and retries ---------------------------------------------------------------
def test_starting_job_has_no_started_at_and_its_truth_knows_when_it_was_runnable(
    emulated: BatchWorld,
) -> None:
    job = emulated.job("wait", "spot-cpu", "STARTING", age=timedelta(minutes=20), now=NOW)

    described = emulated.describe(job)
    [summary] = listed(emulated, jobQueue="spot-cpu", jobStatus="STARTING")
    truth = emulated.control.truth(job)

    assert described["status"] == "STARTING"
    assert "startedAt" not in described
    assert "startedAt" not in summary
    assert described["attempts"] == []
    assert (truth.entered_at, truth.runnable_since, truth.created_at, truth.attempt) == (
        NOW - timedelta(minutes=20),
        NOW - timedelta(minutes=23),
        NOW - timedelta(minutes=23),
        0,
    )


def test_running_job_started_when_it_entered_running(emulated: BatchWorld) -> None:
    job = emulated.job("train", "gpu", "RUNNING", age=timedelta(hours=2), now=NOW)

    described = emulated.describe(job)
    truth = emulated.control.truth(job)

    assert described["startedAt"] == ms(NOW - timedelta(hours=2))
    assert described["createdAt"] == ms(NOW - timedelta(hours=2, minutes=3))
    assert "stoppedAt" not in described
    assert (truth.entered_at, truth.runnable_since) == (
        NOW - timedelta(hours=2),
        NOW - timedelta(hours=2, minutes=3),
    )


def test_retried_job_is_runnable_with_the_last_attempts_timestamps(emulated: BatchWorld) -> None:
    job = emulated.retried_job(
        "train",
        "gpu",
        created_ago=timedelta(hours=7),
        first_attempt_ran=timedelta(hours=6),
        reclaimed_ago=timedelta(minutes=2),
        now=NOW,
    )
    reclaimed, started = NOW - timedelta(minutes=2), NOW - timedelta(hours=6, minutes=2)

    described = emulated.describe(job)
    [summary] = listed(emulated, jobQueue="gpu", jobStatus="RUNNABLE")
    truth = emulated.control.truth(job)

    assert described["status"] == "RUNNABLE"
    assert described["retryStrategy"] == {"attempts": 2}
    [attempt] = described["attempts"]
    assert (attempt["startedAt"], attempt["stoppedAt"]) == (ms(started), ms(reclaimed))
    assert attempt["statusReason"].startswith("Host EC2 (instance i-")
    # The top level still shows the finished attempt: a RUNNABLE job that "started" 6 hours ago.
    assert (described["startedAt"], described["stoppedAt"]) == (ms(started), ms(reclaimed))
    assert summary["startedAt"] == ms(started)
    assert (truth.status, truth.attempt, truth.runnable_since, truth.entered_at) == (
        "RUNNABLE",
        1,
        reclaimed,
        reclaimed,
    )
    assert truth.created_at == NOW - timedelta(hours=7)

    assert [(e.status, e.entered_at, e.attempt) for e in emulated.control.history(job)] == [
        ("SUBMITTED", NOW - timedelta(hours=7), 0),
        ("RUNNABLE", NOW - timedelta(hours=7), 0),
        ("STARTING", started - timedelta(seconds=30), 0),
        ("RUNNING", started, 0),
        ("RUNNABLE", reclaimed, 1),
    ]

    emulated.control.set_state(job, "RUNNING", entered_at=NOW)
    again = emulated.describe(job)
    assert (again["startedAt"], len(again["attempts"])) == (ms(NOW), 1)
    assert emulated.control.truth(job).runnable_since == reclaimed


def test_retry_needs_a_retry_strategy_with_attempts_left(emulated: BatchWorld) -> None:
    once = emulated.job("once", "gpu", "RUNNING")
    twice = emulated.job("twice", "gpu", "RUNNING", retry_attempts=2)
    control = emulated.control

    with pytest.raises(ValueError, match="no attempts left"):
        control.retry(once)
    control.retry(twice)
    control.set_state(twice, "RUNNING")
    with pytest.raises(ValueError, match="no attempts left"):
        control.retry(twice)
    assert "retryStrategy" not in emulated.describe(once)


def test_depends_on_is_described(emulated: BatchWorld) -> None:
    first = emulated.job("extract", "spot-cpu", "RUNNING")
    then = emulated.job("load", "spot-cpu", "PENDING", depends_on=[first])

    assert emulated.describe(then)["dependsOn"] == [{"jobId": first}]
    emulated.queue("spot-cpu")
    typed = emulated.batch.submit_job(
        jobName="typed",
        jobQueue="spot-cpu",
        jobDefinition="train-bert",
        dependsOn=[{"jobId": first, "type": "SEQUENTIAL"}],
    )["jobId"]
    emulated.age(typed, "PENDING", timedelta(minutes=1))
    assert emulated.describe(typed)["dependsOn"] == [{"jobId": first, "type": "SEQUENTIAL"}]


# -- multi-node parallel jobs -----------------------------------------------------------------------
def test_multinode_job_is_listed_once_in_its_queue_and_its_nodes_by_its_id(
    emulated: BatchWorld,
) -> None:
    job = emulated.multinode_job("mpi", "gpu", "RUNNING", nodes=3)

    in_queue = listed(emulated, jobQueue="gpu")
    nodes = listed(emulated, multiNodeJobId=job)

    assert [s["jobId"] for s in in_queue] == [job]
    assert in_queue[0]["nodeProperties"]["numNodes"] == 3
    assert [s["jobId"] for s in nodes] == [f"{job}#0", f"{job}#1", f"{job}#2"]
    assert [s["nodeProperties"]["isMainNode"] for s in nodes] == [True, False, False]
    assert listed(emulated, arrayJobId=job) == []


def test_multinode_job_describes_its_nodes_and_nodes_carry_no_tags(emulated: BatchWorld) -> None:
    job = emulated.multinode_job("mpi", "gpu", "RUNNING", nodes=2, tags={"owner": "ana"})

    main = emulated.describe(job)
    node = emulated.describe(f"{job}#1")

    assert main["nodeProperties"]["numNodes"] == 2
    assert main["nodeProperties"]["mainNode"] == 0
    assert main["tags"] == {"owner": "ana"}
    assert "nodeDetails" not in main
    assert node["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False}
    assert "tags" not in node
    assert node["jobQueue"] == main["jobQueue"]
    truth = emulated.control.truth(f"{job}#1")
    assert (truth.main_node_job_id, truth.tags) == (job, {"owner": "ana"})


def test_multinode_job_follows_its_main_node_and_starts_it_first(emulated: BatchWorld) -> None:
    job = emulated.multinode_job("mpi", "gpu", "STARTING", nodes=2)

    assert statuses(emulated, job) == "STARTING"
    assert statuses(emulated, f"{job}#1") == "RUNNABLE"  # child nodes launch once main runs

    emulated.control.set_state(f"{job}#0", "FAILED")

    assert statuses(emulated, job) == "FAILED"
    assert statuses(emulated, f"{job}#1") == "FAILED"  # "All child nodes are then stopped."


def test_terminating_a_multinode_job_stops_every_node(emulated: BatchWorld) -> None:
    job = emulated.multinode_job("mpi", "gpu", "RUNNING", nodes=3)

    emulated.batch.terminate_job(jobId=job, reason=REASON)

    lingering = emulated.describe(job)  # one read of the job is one read of each node
    assert (lingering["status"], lingering["isTerminated"]) == ("RUNNING", True)
    assert sorted(emulated.control.settle()) == sorted(f"{job}#{i}" for i in range(3))
    assert {statuses(emulated, f"{job}#{i}") for i in range(3)} == {"FAILED"}
    final = emulated.describe(job)
    assert (final["status"], final["statusReason"]) == ("FAILED", REASON)
    events = emulated.control.terminations()
    assert [e.job_id for e in events] == [f"{job}#1", f"{job}#2", f"{job}#0"]  # main last
    assert {e.named_id for e in events} == {job}


def test_terminating_a_child_node_stops_that_node_only(emulated: BatchWorld) -> None:
    job = emulated.multinode_job("mpi", "gpu", "RUNNING", nodes=3)

    emulated.batch.terminate_job(jobId=f"{job}#2", reason=REASON)
    emulated.control.settle()

    assert [statuses(emulated, f"{job}#{i}") for i in range(3)] == ["RUNNING", "RUNNING", "FAILED"]
    assert statuses(emulated, job) == "RUNNING"


# -- arrays and the termination record --------------------------------------------------------------
def test_terminations_record_children_stopped_through_their_parent_with_their_state_before(
    emulated: BatchWorld,
) -> None:
    parent = emulated.job(
        "render", "spot-cpu", "RUNNABLE", array_size=3, tags={"team": "vfx"}, now=NOW
    )
    emulated.age(f"{parent}:1", "RUNNING", timedelta(hours=1))
    emulated.age(f"{parent}:2", "SUCCEEDED", timedelta(minutes=10))

    emulated.batch.terminate_jobs(jobs=[parent], reason=REASON)

    events = emulated.control.terminations()
    assert [(e.job_id, e.named_id, e.operation) for e in events] == [
        (f"{parent}:0", parent, "TerminateJobs"),
        (f"{parent}:1", parent, "TerminateJobs"),
    ]
    before = {e.job_id: e.before for e in events}
    assert (before[f"{parent}:0"].status, before[f"{parent}:0"].runnable_since) == (
        "RUNNABLE",
        NOW - timedelta(minutes=5),
    )
    assert before[f"{parent}:1"].status == "RUNNING"
    assert before[f"{parent}:1"].array_parent_id == parent
    assert before[f"{parent}:1"].tags == {"team": "vfx"}
    assert {e.reason for e in events} == {REASON}
    assert statuses(emulated, parent) == "PENDING"  # its children linger

    emulated.control.settle()

    assert [emulated.describe(f"{parent}:{i}")["status"] for i in range(3)] == [
        "FAILED",
        "FAILED",
        "SUCCEEDED",
    ]
    assert emulated.describe(f"{parent}:0")["isCancelled"] is True
    assert emulated.describe(f"{parent}:1")["isTerminated"] is True
    final = emulated.describe(parent)
    assert (final["status"], final["statusReason"]) == ("FAILED", REASON)
    assert final["arrayProperties"]["statusSummary"]["FAILED"] == 2


def test_array_children_are_listed_by_their_parent_and_described_with_its_queue(
    emulated: BatchWorld,
) -> None:
    parent = emulated.job("render", "spot-cpu", "RUNNABLE", array_size=2, tags={"team": "vfx"})

    queue = listed(emulated, jobQueue="spot-cpu", jobStatus="PENDING")
    children = listed(emulated, arrayJobId=parent, jobStatus="RUNNABLE")
    child = emulated.describe(f"{parent}:1")

    assert [s["jobId"] for s in queue] == [parent]
    assert queue[0]["arrayProperties"]["size"] == 2
    assert [s["arrayProperties"]["index"] for s in children] == [0, 1]
    assert child["jobQueue"].endswith(":job-queue/spot-cpu")
    assert child["tags"] == {"team": "vfx"}


# -- faults -----------------------------------------------------------------------------------------
def test_timed_out_call_raises_a_botocore_error_and_may_or_may_not_have_taken_effect(
    emulated: BatchWorld,
) -> None:
    job = emulated.job("train", "gpu", "RUNNING")
    control = emulated.control

    control.timeout("TerminateJobs")
    with pytest.raises(ReadTimeoutError) as lost:
        emulated.batch.terminate_jobs(jobs=[job], reason=REASON)
    assert isinstance(lost.value, BotoCoreError)
    assert not isinstance(lost.value, ClientError)
    assert control.truth(job).stopping is False

    control.timeout("TerminateJobs", applied=True)
    with pytest.raises(ReadTimeoutError):
        emulated.batch.terminate_jobs(jobs=[job], reason=REASON)
    assert control.truth(job).stopping is True
    assert control.calls()["TerminateJobs"] == 2

    control.timeout("DescribeJobs", times=2)
    for _ in range(2):
        with pytest.raises(ReadTimeoutError):
            emulated.describe(job)
    assert emulated.describe(job)["isTerminated"] is True


def test_timed_out_call_under_the_moto_server_closes_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.server import ThreadedMotoServer

    install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        world = BatchWorld(boto3.Session(region_name="us-east-1"), BatchControl())
        job = world.job("train", "gpu", "RUNNING")
        world.control.timeout("TerminateJobs")

        with pytest.raises(ConnectionClosedError) as lost:
            world.batch.terminate_jobs(jobs=[job], reason=REASON)

        assert isinstance(lost.value, BotoCoreError)
        assert world.control.truth(job).stopping is False
        assert world.batch.terminate_jobs(jobs=[job], reason=REASON)["successful"] == [job]
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()


def test_throttle_and_bulk_errors_still_work(emulated: BatchWorld) -> None:
    job = emulated.job("train", "gpu", "RUNNING")
    emulated.control.throttle("DescribeJobs")
    emulated.control.fail_in_bulk(job, "ClientException", "cannot")

    with pytest.raises(ClientError, match="TooManyRequestsException"):
        emulated.describe(job)
    answer = emulated.batch.terminate_jobs(jobs=[job], reason=REASON)

    assert answer["errors"] == [{"job": job, "code": "ClientException", "message": "cannot"}]
    assert emulated.control.terminations() == []


# -- switching realism off --------------------------------------------------------------------------
def test_kind_behaviour_turns_every_delay_and_omission_off(emulated: BatchWorld) -> None:
    assert emulated.control.behaviour == Behaviour()
    emulated.control.configure(Behaviour.kind())
    emulated.queue("spot-cpu")
    fresh = emulated.batch.submit_job(
        jobName="fresh", jobQueue="spot-cpu", jobDefinition=emulated.definition("etl")
    )["jobId"]
    running = [emulated.job(f"j{i}", "spot-cpu", "RUNNING") for i in range(8)]

    assert [j["jobId"] for j in emulated.batch.describe_jobs(jobs=[fresh])["jobs"]] == [fresh]
    assert all("jobDefinition" in s for s in listed(emulated, jobQueue="spot-cpu"))
    emulated.batch.terminate_jobs(jobs=running, reason=REASON)
    assert {statuses(emulated, j) for j in running} == {"FAILED"}
    assert emulated.control.settle() == []
