"""An emulated account with the stack's runtime pieces deployed and the real handlers wired in.

Shared by `demo`, `local` and the benchmarks: the same emulator, resources and handler wiring
that the integration tests use.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.sqs.models import sqs_backends

from batch_terminator.contract import EVENT_SOURCE, REQUEST_DETAIL_TYPE
from batch_terminator.handlers import brake, deadline, sweeper, terminator
from batch_terminator.models.policies import PoliciesFile
from batch_terminator.pausing import Pause, clear_pause, write_pause
from batch_terminator_cli.emulator import BatchControl, install, scheduler
from batch_terminator_cli.emulator.deployment import EmulatedDeployment, deploy, ship_logs
from batch_terminator_cli.emulator.lambda_runtime import (
    Invocation,
    LambdaContext,
    capture_logs,
    drain,
)
from batch_terminator_cli.emulator.world import BatchWorld

REGION = "us-east-1"
MAX_RECEIVE_COUNT = 3
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "emulated",
    "AWS_SECRET_ACCESS_KEY": "emulated",
    "AWS_DEFAULT_REGION": REGION,
}
# Tracing has no daemon here; one attempt per call keeps injected faults visible.
HANDLER_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1"}


@dataclass
class Sandbox:
    session: boto3.Session
    policies: PoliciesFile
    deployment: EmulatedDeployment
    world: BatchWorld
    control: BatchControl
    audit: list[dict[str, Any]] = field(default_factory=list)
    # EMF blobs the handlers printed (CloudWatch turns these into metrics).
    metrics: list[dict[str, Any]] = field(default_factory=list)
    sweeper_logs: list[dict[str, Any]] = field(default_factory=list)
    # What the deadline and brake functions logged (their lines, in order).
    trigger_logs: list[dict[str, Any]] = field(default_factory=list)

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

    def put_event(self, detail: dict[str, Any], source: str = EVENT_SOURCE) -> None:
        response = self.session.client("events").put_events(
            Entries=[
                {"Source": source, "DetailType": REQUEST_DETAIL_TYPE, "Detail": json.dumps(detail)}
            ]
        )
        if response["FailedEntryCount"]:
            raise RuntimeError(f"PutEvents failed: {response['Entries']}")

    def run_terminator(
        self,
        max_invocations: int = 100,
        context: Callable[[], Any] = LambdaContext,
        *,
        settle_before_redelivery: bool = True,
    ) -> list[Invocation]:
        """Let the event source mapping feed the terminator until the request queue is empty;
        `context` makes each invocation's Lambda context (its remaining time, for one).

        SQS delivers a failed message again only after its visibility timeout (6 times the
        function's timeout: 12 minutes), by when Batch has long stopped the jobs it was stopping
        (ECS stops a container within its stop timeout, at most 2 minutes): lingering
        terminations settle before each redelivery, unless `settle_before_redelivery` is off."""
        printed = io.StringIO()
        with capture_logs(terminator.logger) as logs, redirect_stdout(printed):
            invocations = drain(
                self.sqs,
                self.deployment.request_queue_url,
                terminator.handler,
                max_invocations=max_invocations,
                context=context,
                time_passes=self.control.settle if settle_before_redelivery else None,
            )
        self.audit.extend(logs.audit())
        ship_logs(self.session, self.deployment.terminator_log_group, logs.lines())
        self.metrics.extend(
            json.loads(line) for line in printed.getvalue().splitlines() if '"_aws"' in line
        )
        return invocations

    def pause(self, reason: str, paused_by: str = "sandbox") -> None:
        """Pause every policy path, as `batch-terminator pause` does (`pausing.py`)."""
        write_pause(
            self.session.client("dynamodb"),
            self.deployment.ledger_table,
            Pause(paused_by=paused_by, paused_at=int(time.time()), reason=reason),
        )

    def resume(self) -> bool:
        """Resume the policy paths; True if they were paused."""
        return clear_pause(self.session.client("dynamodb"), self.deployment.ledger_table)

    def run_sweeper(self) -> dict[str, Any]:
        """Invoke the sweeper as its schedule would, and return its summary log line (its
        `paused` line while the system is paused)."""
        event = scheduled_event(self.session.region_name)
        printed = io.StringIO()
        with capture_logs(sweeper.logger) as logs, redirect_stdout(printed):
            sweeper.handler(event, LambdaContext(function_name="batch-terminator-sweeper"))
        self.metrics.extend(
            json.loads(line) for line in printed.getvalue().splitlines() if '"_aws"' in line
        )
        self.sweeper_logs.extend(logs.lines())
        [summary] = [
            line for line in logs.lines() if line.get("message") in ("policy run", "paused")
        ]
        return summary

    # -- the event triggers ----------------------------------------------------------------
    def run_deadlines(self, max_invocations: int = 100) -> list[Invocation]:
        """Let the events queue's event source mapping feed the deadline function until the
        queue is empty (batches of 100, failed items delivered again up to the redrive)."""
        printed = io.StringIO()
        with capture_logs(deadline.logger) as logs, redirect_stdout(printed):
            invocations = drain(
                self.sqs,
                self.deployment.events_queue_url,
                deadline.handler,
                max_invocations=max_invocations,
            )
        self._keep(logs.lines(), printed.getvalue())
        return invocations

    def run_brake(self, event: Any, request_id: str | None = None) -> dict[str, Any]:
        """Invoke the brake function with `event`, as EventBridge, an alarm action or SNS
        would (asynchronously: an error propagates; see `run_brake_async` for Lambda's
        retries)."""
        context = LambdaContext(function_name="batch-terminator-brake")
        if request_id is not None:
            context.aws_request_id = request_id
        printed = io.StringIO()
        with capture_logs(brake.logger) as logs, redirect_stdout(printed):
            try:
                return dict(brake.handler(event, context))
            finally:
                self._keep(logs.lines(), printed.getvalue())

    def run_brake_async(
        self, event: Any, between: Callable[[], object] | None = None
    ) -> list[dict[str, Any] | str]:
        """An asynchronous invocation: on an error Lambda runs the function twice more with the
        same event and the same request id ("Asynchronous invocation", Lambda developer guide);
        `between` runs before each retry. Returns each attempt's result or its error."""
        request_id = str(uuid.uuid4())
        results: list[dict[str, Any] | str] = []
        for _ in range(3):
            try:
                results.append(self.run_brake(event, request_id))
                break
            except Exception as exc:
                results.append(f"{type(exc).__name__}: {exc}")
                if between is not None:
                    between()
        return results

    def run_alarm_inbox(self) -> list[dict[str, Any]]:
        """Deliver what the stack's alarm rule routed (here, to the alarm inbox) to the brake."""
        url = self.deployment.alarm_inbox_url
        if not url:
            return []
        results = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                results.append(self.run_brake(json.loads(message["Body"])))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return results

    def _keep(self, lines: list[dict[str, Any]], printed: str) -> None:
        self.trigger_logs.extend(lines)
        self.metrics.extend(json.loads(line) for line in printed.splitlines() if '"_aws"' in line)

    def fire_schedules(self, now: datetime | None = None) -> list[scheduler.Firing]:
        """EventBridge Scheduler runs: every one-time schedule due at `now` (default: the real
        time, which `advance` moves on) sends its message; see `emulator/scheduler.py`."""
        return scheduler.fire_due(self.session, now)

    def advance(self, delta: timedelta) -> None:
        """Let `delta` pass without sleeping: jobs age and schedules come due by `delta`
        (`emulator/clock.py`)."""
        self.control.advance(delta)

    def event_messages(self) -> list[dict[str, Any]]:
        """The Batch events in the events queue (their EventBridge envelopes), oldest first,
        in flight or not; reading them is no SQS receive (which would count towards the
        queue's redrive)."""
        return [json.loads(body) for body in self.queue_bodies(self.deployment.events_queue_url)]

    def alarm_messages(self) -> list[dict[str, Any]]:
        """The alarm events in the alarm inbox (none when no policy names an alarm), read as
        `event_messages` reads."""
        url = self.deployment.alarm_inbox_url
        return [json.loads(body) for body in self.queue_bodies(url)] if url else []

    def queue_bodies(self, url: str) -> list[str]:
        """The bodies of every message a queue holds, straight from the emulator."""
        backend = sqs_backends[self.deployment.account_id][self.deployment.region]
        queue = backend.get_queue(url.rsplit("/", 1)[-1])
        return [str(message.body) for message in list(queue._messages)]

    def decisions(self, job_id: str) -> list[dict[str, Any]]:
        return [line for line in self.audit if line["job_id"] == job_id]

    def decision(self, job_id: str) -> dict[str, Any]:
        """The latest audit line for a job."""
        found = self.decisions(job_id)
        if not found:
            raise LookupError(f"no audit line for job {job_id}")
        return found[-1]

    def outcome(self, job_id: str) -> str:
        return str(self.decision(job_id)["outcome"])

    def queued(self) -> int:
        """Messages still in the request queue, visible or in flight."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.request_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def metric_totals(self) -> dict[str, float]:
        """Sums of the metrics the handlers emitted without a policy dimension."""
        totals: dict[str, float] = {}
        for blob in self.metrics:
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                if directive["Dimensions"] != [["service"]]:
                    continue
                for metric in directive["Metrics"]:
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                        blob[metric["Name"]]
                    )
        return totals

    def dead_letters(self) -> list[dict[str, Any]]:
        """Read the DLQ without consuming it (messages stay visible for the next reader)."""
        sqs, url = self.sqs, self.deployment.dlq_url
        messages: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=30,
            ).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        for message in messages:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return messages


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def sandbox(
    policies: PoliciesFile, extra_environment: dict[str, str] | None = None
) -> Iterator[Sandbox]:
    """Start the in-process emulator, deploy the runtime pieces, point the handlers at them.

    Every handler gets the stack's environment (`EmulatedDeployment.function_environment`):
    the queues, and the ledger table (LEDGER_TABLE), which the sweeper and the brake read the
    pause switch from as the terminator does. `extra_environment` is set for the handlers as a
    function's environment would be (for example AWS_DATA_PATH, to give botocore other API
    models)."""
    from moto import mock_aws

    install()
    with tempfile.TemporaryDirectory(prefix="batch-terminator-") as scratch:
        policies_json = Path(scratch) / "policies.json"
        policies_json.write_text(policies.model_dump_json(exclude_none=True), encoding="utf-8")
        handler_environment = {
            **FAKE_CREDENTIALS,
            **HANDLER_ENVIRONMENT,
            **(extra_environment or {}),
            "POLICIES_FILE": str(policies_json),
        }
        with environment(handler_environment), mock_aws():
            session = boto3.Session(region_name=REGION)
            deployment = deploy(session, policies, max_receive_count=MAX_RECEIVE_COUNT)
            control = BatchControl(region=REGION)
            with environment(deployment.function_environment()):
                _clear_caches()
                try:
                    yield Sandbox(
                        session, policies, deployment, BatchWorld(session, control), control
                    )
                finally:
                    _clear_caches()


def _clear_caches() -> None:
    """Handlers build clients and read policies once per container; each sandbox is a new one."""
    for handler in (terminator, sweeper, deadline, brake):
        handler.dependencies.cache_clear()


def scheduled_event(region: str) -> dict[str, Any]:
    """The event an EventBridge schedule rule delivers to its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/batch-terminator-sweep"],
        "detail": {},
    }


# ---- a fleet: several accounts and regions on one emulator -----------------------------------------
#
# moto serves every account at once and picks the account of each request from its access key:
# a key that an account's IAM created belongs to that account (PRIO 3 of moto's
# `BaseResponse.get_current_account`; an unknown key is the default account 123456789012). So
# each emulated account gets an IAM user with an access key, made while MOTO_ACCOUNT_ID names the
# account, and a session (or a function's environment) with that key acts in that account; the
# region is the client's, as in AWS. EventBridge's delivery between them is `emulator/eventbridge`.

CENTRAL_ACCOUNT = "111111111111"
# The member's rule that sends its decision events to the central bus, and the central bus's rule
# that stores them (infra/constructs/forwarding.py and fleet_log.py; the CDK names them there).
FORWARD_RULE_NAME = "batch-terminator-decisions-to-fleet"
CENTRAL_RULE_NAME = "batch-terminator-fleet-decisions"


@dataclass(frozen=True)
class Credentials:
    """An access key of one emulated account (12 digits): requests signed with it act there."""

    account: str
    access_key_id: str
    secret_access_key: str

    def session(self, region: str) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=region,
        )


def account_credentials(account_id: str) -> Credentials:
    """A new IAM user with an access key in `account_id` (inside a running emulator)."""
    with environment({"MOTO_ACCOUNT_ID": account_id}):
        iam = boto3.client("iam", region_name=REGION)
        name = f"batch-terminator-operator-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(account_id, str(key["AccessKeyId"]), str(key["SecretAccessKey"]))


@dataclass
class FleetMember:
    """One member deployment (an account in a region): its sandbox (whose session acts in the
    account), its credentials, and the environment its functions run with."""

    box: Sandbox
    credentials: Credentials
    function_environment: dict[str, str]

    @property
    def account(self) -> str:
        return self.credentials.account

    @property
    def region(self) -> str:
        return str(self.box.session.region_name)


@dataclass
class FleetSandbox:
    """Member deployments and the central account's bus and log group, on one emulator.

    The handlers read their account, region, queues and credentials from the environment, as in
    Lambda: run a member's functions inside `acting_as(member)`."""

    central: Credentials
    central_region: str
    members: list[FleetMember]
    bus_arn: str

    def member(self, account: str, region: str) -> FleetMember:
        for member in self.members:
            if (member.account, member.region) == (account, region):
                return member
        raise KeyError(f"{account} {region}")

    @contextmanager
    def acting_as(self, member: FleetMember) -> Iterator[Sandbox]:
        """The member's functions' environment (credentials, region, resources), with fresh
        handler containers."""
        with environment(member.function_environment):
            _clear_caches()
            try:
                yield member.box
            finally:
                _clear_caches()

    def central_session(self) -> boto3.Session:
        return self.central.session(self.central_region)

    def central_events(self) -> list[dict[str, Any]]:
        """Every event the central log group holds (each message is the whole event), oldest
        first."""
        from batch_terminator.contract import FLEET_LOG_GROUP

        logs = self.central_session().client("logs")
        found = []
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=FLEET_LOG_GROUP):
            found += [(e["timestamp"], json.loads(e["message"])) for e in page.get("events", [])]
        return [event for _, event in sorted(found, key=lambda pair: pair[0])]


def deploy_central(
    credentials: Credentials,
    region: str,
    admitted: list[str],
    organization_id: str | None = None,
    retention_days: int = 400,
) -> str:
    """The central account's pieces: the fleet bus, whose resource policy admits exactly the
    `admitted` accounts (or, with `organization_id`, the organization), its rule for decision
    events, and the log group that rule stores them in. Returns the bus's ARN."""
    from batch_terminator.contract import (
        FLEET_BUS_NAME,
        FLEET_LOG_GROUP,
        decision_event_pattern,
    )

    session = credentials.session(region)
    events, logs = session.client("events"), session.client("logs")
    bus_arn = str(events.create_event_bus(Name=FLEET_BUS_NAME)["EventBusArn"])
    if organization_id:
        statement: dict[str, Any] = {
            "Sid": "FleetOrganizationPutEvents",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "events:PutEvents",
            "Resource": bus_arn,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization_id}},
        }
    else:
        statement = {
            "Sid": "FleetMembersPutEvents",
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in admitted]},
            "Action": "events:PutEvents",
            "Resource": bus_arn,
        }
    events.put_permission(
        EventBusName=FLEET_BUS_NAME,
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    logs.create_log_group(logGroupName=FLEET_LOG_GROUP)
    logs.put_retention_policy(logGroupName=FLEET_LOG_GROUP, retentionInDays=retention_days)
    group_arn = f"arn:aws:logs:{region}:{credentials.account}:log-group:{FLEET_LOG_GROUP}:*"
    # EventBridge writes to a log group only as its CloudWatch Logs resource policy allows
    # (infra/constructs/fleet_log.py writes the same statement).
    logs.put_resource_policy(
        policyName="batch-terminator-fleet-decisions",
        policyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {
                            "Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]
                        },
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": group_arn,
                    }
                ],
            }
        ),
    )
    events.put_rule(
        Name=CENTRAL_RULE_NAME,
        EventBusName=FLEET_BUS_NAME,
        EventPattern=json.dumps(decision_event_pattern()),
        State="ENABLED",
    )
    events.put_targets(
        Rule=CENTRAL_RULE_NAME,
        EventBusName=FLEET_BUS_NAME,
        Targets=[{"Id": "fleet-log-group", "Arn": group_arn}],
    )
    return bus_arn


def forward_decisions(session: Any, bus_arn: str) -> None:
    """A member's rule on its default bus that sends its decision events to the fleet bus."""
    from batch_terminator.contract import decision_event_pattern

    events = session.client("events")
    events.put_rule(
        Name=FORWARD_RULE_NAME, EventPattern=json.dumps(decision_event_pattern()), State="ENABLED"
    )
    account = session.client("sts").get_caller_identity()["Account"]
    events.put_targets(
        Rule=FORWARD_RULE_NAME,
        Targets=[
            {
                "Id": "fleet-bus",
                "Arn": bus_arn,
                "RoleArn": f"arn:aws:iam::{account}:role/batch-terminator-decisions-to-fleet",
            }
        ],
    )


def deploy_fleet(
    members: dict[tuple[str, str], PoliciesFile],
    scratch: Path,
    *,
    central: tuple[str, str] = (CENTRAL_ACCOUNT, REGION),
    admitted: list[str] | None = None,
    organization_id: str | None = None,
    stack_name: str = "BatchTerminator",
) -> FleetSandbox:
    """In a running emulator (in process, or the one AWS_ENDPOINT_URL names in this process):
    one deployment per (account, region) of `members`, each with its policies (written to
    `scratch`), its stack outputs published as `stack_name` for the CLI, and its rule forwarding
    decision events to the central bus; and the central account's bus, admitting `admitted`
    (default: every member account) or the organization `organization_id`, and its log group."""
    from batch_terminator.contract import PUBLISH_DECISIONS_ENV
    from batch_terminator_cli.local_server import publish_stack_outputs

    central_account, central_region = central
    accounts = list(dict.fromkeys(account for account, _ in members))
    credentials = {a: account_credentials(a) for a in dict.fromkeys([*accounts, central_account])}
    bus_arn = deploy_central(
        credentials[central_account],
        central_region,
        accounts if admitted is None else admitted,
        organization_id,
    )
    fleet_members = []
    for index, ((account, region), policies) in enumerate(members.items()):
        keys = credentials[account]
        session = keys.session(region)
        deployment = deploy(session, policies, max_receive_count=MAX_RECEIVE_COUNT)
        publish_stack_outputs(session, deployment.outputs(), stack_name)
        forward_decisions(session, bus_arn)
        policies_json = scratch / f"policies-{index}.json"
        policies_json.write_text(policies.model_dump_json(exclude_none=True), encoding="utf-8")
        control = BatchControl(account_id=account, region=region)
        box = Sandbox(session, policies, deployment, BatchWorld(session, control), control)
        function_environment = {
            "AWS_ACCESS_KEY_ID": keys.access_key_id,
            "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "POLICIES_FILE": str(policies_json),
            PUBLISH_DECISIONS_ENV: "true",
            **deployment.function_environment(),
        }
        fleet_members.append(FleetMember(box, keys, function_environment))
    return FleetSandbox(credentials[central_account], central_region, fleet_members, bus_arn)


@contextmanager
def fleet_sandbox(
    members: dict[tuple[str, str], PoliciesFile],
    *,
    central: tuple[str, str] = (CENTRAL_ACCOUNT, REGION),
    admitted: list[str] | None = None,
    organization_id: str | None = None,
    organizations: dict[str, str] | None = None,
    stack_name: str = "BatchTerminator",
) -> Iterator[FleetSandbox]:
    """Start the in-process emulator and `deploy_fleet` on it. With `organization_id` the bus
    admits the accounts `organizations` (account -> organization id) puts in it."""
    from moto import mock_aws

    from batch_terminator_cli.emulator import eventbridge

    install()
    with (
        tempfile.TemporaryDirectory(prefix="batch-terminator-fleet-") as scratch,
        environment({**FAKE_CREDENTIALS, **HANDLER_ENVIRONMENT}),
        mock_aws(),
    ):
        eventbridge.leave_organizations()
        for account, organization in (organizations or {}).items():
            eventbridge.join_organization(account, organization)
        try:
            yield deploy_fleet(
                members,
                Path(scratch),
                central=central,
                admitted=admitted,
                organization_id=organization_id,
                stack_name=stack_name,
            )
        finally:
            _clear_caches()
            eventbridge.leave_organizations()
