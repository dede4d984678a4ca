"""Build Batch scenes on the emulator through the real API: queues, definitions, jobs of any age."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_terminator_cli.emulator.batch import BatchControl


class BatchWorld:
    def __init__(self, session: Any, control: BatchControl | None = None) -> None:
        self.batch = session.client("batch")
        self._iam = session.client("iam")
        self.control = control or BatchControl(region=session.region_name)
        self._compute_environment: str | None = None
        self._queues: dict[str, str] = {}
        self._definitions: set[str] = set()

    def queue(self, name: str) -> str:
        """The queue's ARN, creating it (and a compute environment) on first use."""
        if name not in self._queues:
            self._queues[name] = self.batch.create_job_queue(
                jobQueueName=name,
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": self._environment()}],
            )["jobQueueArn"]
        return self._queues[name]

    def definition(self, name: str) -> str:
        if name not in self._definitions:
            self.batch.register_job_definition(
                jobDefinitionName=name,
                type="container",
                containerProperties={
                    "image": "public.ecr.aws/docker/library/busybox",
                    "vcpus": 1,
                    "memory": 512,
                },
            )
            self._definitions.add(name)
        return name

    def job(
        self,
        name: str,
        queue: str,
        status: str = "RUNNING",
        *,
        age: timedelta = timedelta(minutes=5),
        tags: dict[str, str] | None = None,
        definition: str = "train-bert",
        array_size: int | None = None,
        now: datetime | None = None,
    ) -> str:
        """Submit a job and put it in `status`, `age` old by the clock that status is measured on."""
        self.queue(queue)
        request: dict[str, Any] = {
            "jobName": name,
            "jobQueue": queue,
            "jobDefinition": self.definition(definition),
        }
        if tags:
            request["tags"] = tags
        if array_size:
            request["arrayProperties"] = {"size": array_size}
        job_id = str(self.batch.submit_job(**request)["jobId"])
        self.age(job_id, status, age, now=now)
        return job_id

    def age(self, job_id: str, status: str, age: timedelta, *, now: datetime | None = None) -> None:
        """RUNNING/STARTING: started `age` ago; earlier states: created `age` ago."""
        moment = (now or datetime.now(UTC)) - age
        if status in ("STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
            self.control.set_state(
                job_id, status, created_at=moment - timedelta(minutes=3), started_at=moment
            )
        else:
            self.control.set_state(job_id, status, created_at=moment)

    def describe(self, job_id: str) -> dict[str, Any]:
        jobs = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        return dict(jobs[0]) if jobs else {}

    def _environment(self) -> str:
        if self._compute_environment is None:
            role = self._iam.create_role(
                RoleName="batch-terminator-emulated-batch-service",
                AssumeRolePolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "batch.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            )["Role"]["Arn"]
            self._compute_environment = self.batch.create_compute_environment(
                computeEnvironmentName="emulated", type="UNMANAGED", serviceRole=role
            )["computeEnvironmentArn"]
        return self._compute_environment
