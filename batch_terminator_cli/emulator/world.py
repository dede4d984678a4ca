"""Build Batch scenes on the emulator through the real API: queues, definitions, jobs of any age,
array and multi-node jobs, retried jobs. Time and state, which Batch has no API for, are moved
with `BatchControl`; every job gets a consistent history (see `control.story`), and publishes
one Batch Job State Change event for the status it is put in (`BatchControl.staging`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_terminator_cli.emulator.control import HOST_TERMINATED, LAUNCH, BatchControl, story

_CONTAINER: dict[str, Any] = {
    "image": "public.ecr.aws/docker/library/busybox",
    "vcpus": 1,
    "memory": 512,
}


class BatchWorld:
    def __init__(self, session: Any, control: BatchControl | None = None) -> None:
        self.batch = session.client("batch")
        self._iam = session.client("iam")
        self.control = control or BatchControl(region=session.region_name)
        self._compute_environment: str | None = None
        self._queues: dict[str, str] = {}
        self._definitions: dict[str, str] = {}  # name -> type

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

    def definition(self, name: str, *, kind: str = "container") -> str:
        """A job definition: `container`, or `multinode` (nodes from nodeOverrides at submit)."""
        known = self._definitions.get(name)
        if known is not None:
            if known != kind:
                raise ValueError(f"job definition {name} is a {known} definition, not {kind}")
            return name
        if kind == "multinode":
            self.batch.register_job_definition(
                jobDefinitionName=name,
                type="multinode",
                nodeProperties={
                    "numNodes": 2,
                    "mainNode": 0,
                    "nodeRangeProperties": [{"targetNodes": "0:", "container": _CONTAINER}],
                },
            )
        else:
            self.batch.register_job_definition(
                jobDefinitionName=name, type="container", containerProperties=_CONTAINER
            )
        self._definitions[name] = kind
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
        depends_on: list[str] | None = None,
        retry_attempts: int | None = None,
        status_reason: str | None = None,
    ) -> str:
        """Submit a job and put it in `status`, in it for `age` (see `age`).

        An array job's children are all put in `status`; the parent follows them.
        `status_reason` (RUNNABLE jobs only): Batch then finds the job blocking its queue, after
        its state change event (`BatchControl.block`: statusReason and a Batch Job Queue
        Blocked event).
        """
        if status_reason is not None and (status != "RUNNABLE" or array_size):
            raise ValueError("status_reason is for RUNNABLE jobs that are not array jobs")
        request: dict[str, Any] = self._request(name, queue, self.definition(definition), tags)
        if array_size:
            request["arrayProperties"] = {"size": array_size}
        if depends_on:
            request["dependsOn"] = [{"jobId": job_id} for job_id in depends_on]
        if retry_attempts:
            request["retryStrategy"] = {"attempts": retry_attempts}
        job_id = str(self.batch.submit_job(**request)["jobId"])
        with self.control.staging():
            self.age(job_id, status, age, now=now)
            for index in range(array_size or 0):
                self.age(f"{job_id}:{index}", status, age, now=now)
        if status_reason is not None:
            self.control.block(job_id, status_reason, at=now)
        return job_id

    def multinode_job(
        self,
        name: str,
        queue: str,
        status: str = "RUNNING",
        *,
        nodes: int = 3,
        age: timedelta = timedelta(minutes=5),
        tags: dict[str, str] | None = None,
        definition: str = "train-mnp",
        now: datetime | None = None,
    ) -> str:
        """Submit a multi-node parallel job of `nodes` nodes (`X#0` is the main node) and put it
        in `status`; returns X."""
        request = self._request(name, queue, self.definition(definition, kind="multinode"), tags)
        request["nodeOverrides"] = {"numNodes": nodes}
        job_id = str(self.batch.submit_job(**request)["jobId"])
        with self.control.staging():
            self.age(job_id, status, age, now=now)
        return job_id

    def retried_job(
        self,
        name: str,
        queue: str,
        *,
        created_ago: timedelta,
        first_attempt_ran: timedelta,
        reclaimed_ago: timedelta,
        tags: dict[str, str] | None = None,
        definition: str = "train-bert",
        attempts: int = 2,
        reason: str = HOST_TERMINATED,
        now: datetime | None = None,
    ) -> str:
        """A job whose first attempt ran for about `first_attempt_ran` and was reclaimed
        `reclaimed_ago`, now RUNNABLE again for its second attempt. The first attempt starts no
        earlier than LAUNCH after creation, so it may have run a little less than asked."""
        now = now or datetime.now(UTC)
        created, reclaimed = now - created_ago, now - reclaimed_ago
        started = max(reclaimed - first_attempt_ran, created + LAUNCH)
        if started > reclaimed:
            raise ValueError("the job must be created before its first attempt was reclaimed")
        request = self._request(name, queue, self.definition(definition), tags)
        request["retryStrategy"] = {"attempts": attempts}
        job_id = str(self.batch.submit_job(**request)["jobId"])
        control = self.control
        with control.staging():
            control.set_state(job_id, "RUNNABLE", entered_at=created, created_at=created)
            control.set_state(job_id, "STARTING", entered_at=started - LAUNCH)
            control.set_state(job_id, "RUNNING", entered_at=started)
            control.retry(job_id, stopped_at=reclaimed, reason=reason)
        return job_id

    def age(self, job_id: str, status: str, age: timedelta, *, now: datetime | None = None) -> None:
        """Give the job a first-attempt history in which it entered `status` `age` ago.

        SUBMITTED/PENDING/RUNNABLE: created `age` ago. STARTING: RUNNABLE since created, 3 min
        before. RUNNING: created age + 3 min ago, RUNNABLE, STARTING briefly, RUNNING (startedAt)
        `age` ago. SUCCEEDED/FAILED: ran 3 min and stopped `age` ago. An array parent only gets
        its createdAt; its status is its children's.
        """
        created, steps = story(status, (now or datetime.now(UTC)) - age)
        control = self.control
        with control.staging():  # one event, for the status it ends in
            if control.job(job_id)._child_jobs:
                control.set_state(job_id, "PENDING", entered_at=created, created_at=created)
                return
            control.set_state(job_id, "SUBMITTED", entered_at=created, created_at=created)
            for step, at in steps:
                control.set_state(job_id, step, entered_at=at)

    def describe(self, job_id: str) -> dict[str, Any]:
        """One raw DescribeJobs read (it counts as a read, and may come back empty)."""
        jobs = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        return dict(jobs[0]) if jobs else {}

    def final(self, job_id: str) -> dict[str, Any]:
        """What the job became: lingering terminations land, then DescribeJobs (asked again
        while the describe lag hides it)."""
        self.control.settle()
        for _ in range(self.control.behaviour.describe_lag_reads):
            found = self.describe(job_id)
            if found:
                return found
        return self.describe(job_id)

    def _request(
        self, name: str, queue: str, definition: str, tags: dict[str, str] | None
    ) -> dict[str, Any]:
        self.queue(queue)
        request: dict[str, Any] = {"jobName": name, "jobQueue": queue, "jobDefinition": definition}
        if tags:
            request["tags"] = tags
        return request

    def _environment(self) -> str:
        if self._compute_environment is None:
            role = self._iam.create_role(
                # IAM is global: one service role per region the world has queues in.
                RoleName=f"batch-terminator-emulated-batch-service-{self.control.region}",
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
