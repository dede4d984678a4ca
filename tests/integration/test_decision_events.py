"""Decision events on the emulator: every audit line, and every capped run, reaches the default
bus as `Batch Job Termination Decision` with the audit record's keys plus account and region."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from batch_terminator.contract import PUBLISH_DECISIONS_ENV, decision_event_pattern
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.sandbox import Sandbox, sandbox

POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"]},
    "policies": [
        {
            "name": "gpu-runtime-cap",
            "match": {"jobQueues": ["gpu-training"]},
            "when": {"status": "RUNNING", "olderThan": "12h"},
            "maxPerRun": 2,
        }
    ],
}


@pytest.fixture
def published() -> Iterator[tuple[Sandbox, str]]:
    """A pipeline whose functions publish decisions, and an SQS queue a default-bus rule with
    the decision pattern delivers them to (as a member's forwarding rule would match them)."""
    environment = {PUBLISH_DECISIONS_ENV: "true"}
    with sandbox(PoliciesFile.model_validate(POLICIES), environment) as pipeline:
        sqs = pipeline.session.client("sqs")
        events = pipeline.session.client("events")
        url = sqs.create_queue(QueueName="decisions")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="decisions", EventPattern=json.dumps(decision_event_pattern()))
        events.put_targets(Rule="decisions", Targets=[{"Id": "q", "Arn": arn}])
        yield pipeline, url


def received(pipeline: Sandbox, url: str) -> list[dict[str, Any]]:
    return [json.loads(body) for body in pipeline.queue_bodies(url)]


def test_every_audit_line_is_published_with_account_and_region(
    published: tuple[Sandbox, str],
) -> None:
    pipeline, url = published
    world = pipeline.world
    jobs = [
        world.job(f"train-{i}", "gpu-training", "RUNNING", age=timedelta(hours=1)) for i in range(3)
    ]
    pipeline.send({"reason": "by request", "jobIds": jobs})
    pipeline.send("{not json")
    pipeline.run_terminator()

    events = received(pipeline, url)
    lines = pipeline.audit
    assert len(lines) == 4
    assert len(events) == len(lines)
    account, region = pipeline.deployment.account_id, pipeline.deployment.region
    for event in events:
        assert (event["account"], event["region"]) == (account, region)
    details = sorted((e["detail"] for e in events), key=lambda d: (d["job_id"] or "", d["outcome"]))
    expected = sorted(
        (
            {k: line[k] for k in details[0] if k not in ("account", "region")}
            | {
                "account": account,
                "region": region,
            }
            for line in lines
        ),
        key=lambda d: (d["job_id"] or "", d["outcome"]),
    )
    assert details == expected
    by_job = {e["detail"]["job_id"]: e for e in events}
    for job in jobs:
        assert by_job[job]["resources"] == [f"arn:aws:batch:{region}:{account}:job/{job}"]


def test_a_capped_sweep_publishes_its_cap(published: tuple[Sandbox, str]) -> None:
    pipeline, url = published
    for i in range(5):
        pipeline.world.job(f"train-{i}", "gpu-training", "RUNNING", age=timedelta(hours=13))
    pipeline.run_sweeper()

    caps = [e["detail"] for e in received(pipeline, url)]
    assert len(caps) == 1
    assert caps[0]["policy"] == "gpu-runtime-cap"
    assert caps[0]["source"] == "sweep"
    assert caps[0]["outcome"] == "skipped"
    assert caps[0]["job_id"] is None
    assert caps[0]["skip_reason"].startswith("policy cap reached")
    assert "3 more" in caps[0]["skip_reason"]
    # The cap is an audit line in the sweeper's own log too, the same record as the event.
    [line] = [line for line in pipeline.sweeper_logs if line.get("message") == "termination"]
    assert {k: line[k] for k in caps[0] if k not in ("account", "region")} == {
        k: v for k, v in caps[0].items() if k not in ("account", "region")
    }


def test_without_the_switch_nothing_is_published() -> None:
    with sandbox(PoliciesFile.model_validate(POLICIES), {PUBLISH_DECISIONS_ENV: "false"}) as p:
        sqs = p.session.client("sqs")
        url = sqs.create_queue(QueueName="decisions")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = p.session.client("events")
        events.put_rule(Name="decisions", EventPattern=json.dumps(decision_event_pattern()))
        events.put_targets(Rule="decisions", Targets=[{"Id": "q", "Arn": arn}])
        job = p.world.job("train", "gpu-training", "RUNNING", age=timedelta(hours=1))
        p.send({"reason": "by request", "jobId": job})
        p.run_terminator()
        assert p.outcome(job) == "terminated"
        assert p.queue_bodies(url) == []
