"""Fixtures that deploy the stack's runtime pieces on the emulator and drive the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_terminator.handlers import terminator
from batch_terminator_cli.emulator import BatchControl, install
from batch_terminator_cli.emulator.deployment import EmulatedDeployment, deploy
from batch_terminator_cli.emulator.lambda_runtime import Invocation, capture_logs, drain
from batch_terminator_cli.emulator.world import BatchWorld

install()

DEFAULT_POLICIES: dict[str, Any] = {
    "version": 1,
    "settings": {"jobQueues": ["gpu-training", "spot-cpu"], "protectTag": "batch-terminator:protect"},
    "policies": [],
}


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def control(aws: boto3.Session) -> BatchControl:
    return BatchControl()


@pytest.fixture
def world(aws: boto3.Session, control: BatchControl) -> BatchWorld:
    return BatchWorld(aws, control)


@pytest.fixture
def deployment(aws: boto3.Session) -> EmulatedDeployment:
    return deploy(aws)


@dataclass
class Pipeline:
    """The request queue and the terminator, as deployed: send, run, read the audit and the DLQ."""

    session: boto3.Session
    deployment: EmulatedDeployment
    audit: list[dict[str, Any]] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)

    @property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    def send(self, body: dict[str, Any] | str, source: str | None = None) -> str:
        attributes = {"source": {"DataType": "String", "StringValue": source}} if source else {}
        return str(
            self.sqs.send_message(
                QueueUrl=self.deployment.request_queue_url,
                MessageBody=body if isinstance(body, str) else json.dumps(body),
                MessageAttributes=attributes,
            )["MessageId"]
        )

    def put_event(self, detail: dict[str, Any], *, source: str = "batch-terminator") -> None:
        response = self.session.client("events").put_events(
            Entries=[
                {"Source": source, "DetailType": "Batch Job Termination Request", "Detail": json.dumps(detail)}
            ]
        )
        assert response["FailedEntryCount"] == 0

    def run(self, max_invocations: int = 20) -> list[Invocation]:
        with capture_logs(terminator.logger) as logs:
            invocations = drain(self.sqs, self.deployment.request_queue_url, terminator.handler, max_invocations=max_invocations)
        self.audit.extend(logs.audit())
        self.invocations.extend(invocations)
        return invocations

    def outcome(self, job_id: str) -> str:
        return str(self.decision(job_id)["outcome"])

    def decision(self, job_id: str) -> dict[str, Any]:
        matching = [line for line in self.audit if line["job_id"] == job_id]
        assert matching, f"no audit line for {job_id}"
        return matching[-1]

    def dlq(self) -> list[dict[str, Any]]:
        return list(
            self.sqs.receive_message(
                QueueUrl=self.deployment.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
        )

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.request_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def write_policies(path: Path, policies: dict[str, Any]) -> Path:
    path.write_text(json.dumps(policies), encoding="utf-8")
    return path


@pytest.fixture
def policies_path(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies.json", DEFAULT_POLICIES)


@pytest.fixture
def pipeline(
    aws: boto3.Session, deployment: EmulatedDeployment, policies_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pipeline]:
    monkeypatch.setenv("DLQ_URL", deployment.dlq_url)
    monkeypatch.setenv("POLICIES_FILE", str(policies_path))
    terminator.dependencies.cache_clear()
    yield Pipeline(aws, deployment)
    terminator.dependencies.cache_clear()
