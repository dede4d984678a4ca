"""`batch-terminator local`: the emulator as a server on 127.0.0.1, with the handlers running.

boto3, the AWS CLI and `batch-terminator --endpoint-url` can be pointed at it. The terminator
consumes the emulated request queue as the event source mapping would, the sweeper runs on
its interval, and EventBridge Scheduler fires the schedules that are due every few seconds, all
in this process.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import requests

from batch_terminator.handlers import brake, deadline, sweeper, terminator
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl, install, scheduler
from batch_terminator_cli.emulator.deployment import EmulatedDeployment, deploy, ship_logs
from batch_terminator_cli.emulator.lambda_runtime import LambdaContext, capture_logs, drain
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import (
    FAKE_CREDENTIALS,
    HANDLER_ENVIRONMENT,
    REGION,
    environment,
    scheduled_event,
)

Sink = Callable[[dict[str, Any]], None]
# How often EventBridge Scheduler looks for due schedules here (it fires them when they are due).
SCHEDULE_SECONDS = 5.0


def _ignore(_line: dict[str, Any]) -> None:
    return None


class PortInUse(OSError):
    """The local endpoint's port is taken by another process."""


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on 127.0.0.1 is in use: pick another with --port"
            ) from exc


STACK_NAME = "BatchTerminator"


def publish_stack_outputs(
    session: Any, outputs: dict[str, str], stack_name: str = STACK_NAME
) -> None:
    """A CloudFormation stack whose outputs name the emulated resources, as the deployed stack's
    do: the CLI finds queues, table and log group with its default --stack-name."""
    import warnings

    template = {
        # A resource without side effects; moto warns that it does not model it.
        "Resources": {"Outputs": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session.client("cloudformation").create_stack(
            StackName=stack_name, TemplateBody=json.dumps(template)
        )


def _deliver_alarms(sqs: Any, inbox: str | None) -> None:
    """Invoke the brake with each alarm event the stack's alarm rule routed (here, to the alarm
    inbox), as the rule would."""
    while inbox and (
        messages := sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    ):
        for message in messages:
            try:
                brake.handler(
                    json.loads(message["Body"]),
                    LambdaContext(function_name="batch-terminator-brake"),
                )
            except Exception:  # Lambda would retry it; `local` logs and goes on
                logging.getLogger(__name__).exception("brake invocation failed")
            finally:
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])


class LocalServer:
    def __init__(
        self,
        policies: PoliciesFile,
        port: int = 5050,
        poll_seconds: float = 1.0,
        sweep_seconds: float | None = None,
    ) -> None:
        from moto.server import ThreadedMotoServer

        install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._policies = policies
        self._poll_seconds = poll_seconds
        # None: sweep at the policies' own interval; 0: only when asked (sweep_now).
        interval = policies.settings.sweep_interval.total_seconds()
        self._sweep_seconds = interval if sweep_seconds is None else sweep_seconds
        self._next_sweep = time.monotonic() + self._sweep_seconds
        self._next_schedules = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._consumer: threading.Thread | None = None
        self._context = ExitStack()
        self._session: Any = None
        self._on_audit: Sink = _ignore
        self._on_sweep: Sink = _ignore
        self.deployment: EmulatedDeployment | None = None
        self.world: BatchWorld | None = None

    def start(
        self, scratch: str, on_audit: Sink = _ignore, on_sweep: Sink = _ignore
    ) -> EmulatedDeployment:
        """Raises PortInUse when the port is taken (the server thread would die silently)."""
        _check_port_free(self.port)
        self._server.start()
        # The emulator's state lives in this process: start from an empty account every time.
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        policies_json = Path(scratch) / "policies.json"
        policies_json.write_text(
            self._policies.model_dump_json(exclude_none=True), encoding="utf-8"
        )
        # The handlers' boto3 clients take the endpoint from the environment, as in Lambda.
        self._context.enter_context(
            environment(
                {
                    **FAKE_CREDENTIALS,
                    **HANDLER_ENVIRONMENT,
                    "AWS_ENDPOINT_URL": self.endpoint_url,
                    "POLICIES_FILE": str(policies_json),
                    # EMF lines would go to this process's stdout; redirecting stdout from a
                    # background thread would steal the console from the foreground.
                    "POWERTOOLS_METRICS_DISABLED": "true",
                }
            )
        )
        self._session = boto3.Session(region_name=REGION)
        self.deployment = deploy(self._session, self._policies)
        publish_stack_outputs(self._session, self.deployment.outputs())
        self.world = BatchWorld(self._session, BatchControl(region=REGION))
        self._context.enter_context(environment(self.deployment.function_environment()))
        for handler in (terminator, sweeper, deadline, brake):
            handler.dependencies.cache_clear()
        self._on_audit, self._on_sweep = on_audit, on_sweep
        self._consumer = threading.Thread(target=self._run, daemon=True)
        self._consumer.start()
        return self.deployment

    def process_requests(self) -> None:
        """Let the terminator consume the request queue until it is empty."""
        assert self.deployment is not None
        with self._lock:
            with capture_logs(terminator.logger) as logs:
                drain(
                    self._session.client("sqs"),
                    self.deployment.request_queue_url,
                    terminator.handler,
                    max_invocations=10,
                )
            ship_logs(self._session, self.deployment.terminator_log_group, logs.lines())
            for line in logs.audit():
                self._on_audit(line)

    def sweep_now(self) -> dict[str, Any]:
        """Run the sweeper as its schedule would; returns its summary line."""
        with self._lock:
            with capture_logs(sweeper.logger) as logs:
                sweeper.handler(
                    scheduled_event(REGION), LambdaContext(function_name="batch-terminator-sweeper")
                )
            [summary] = [line for line in logs.lines() if line.get("message") == "policy run"]
        self._on_sweep(summary)
        return summary

    def fire_schedules(self) -> list[scheduler.Firing]:
        """EventBridge Scheduler: send the message of every schedule that is due now."""
        with self._lock:
            return scheduler.fire_due(self._session)

    def process_events(self) -> None:
        """The deadline function consumes the events queue (Batch events), the brake function
        the alarm inbox (what the stack's alarm rule would invoke it with)."""
        assert self.deployment is not None
        sqs = self._session.client("sqs")
        with self._lock, capture_logs(deadline.logger), capture_logs(brake.logger):
            drain(sqs, self.deployment.events_queue_url, deadline.handler, max_invocations=10)
            _deliver_alarms(sqs, self.deployment.alarm_inbox_url)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._sweep_seconds and time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self._sweep_seconds
                self._step(self.sweep_now)
            if time.monotonic() >= self._next_schedules:
                self._next_schedules = time.monotonic() + SCHEDULE_SECONDS
                self._step(self.fire_schedules)
            self._step(self.process_events)
            self._step(self.process_requests)
            self._stop.wait(self._poll_seconds)

    @staticmethod
    def _step(step: Callable[[], object]) -> None:
        """One step of the loop; a failure is logged and the loop goes on, as Lambda would
        invoke the next batch."""
        try:
            step()
        except Exception:
            logging.getLogger(__name__).exception("%s failed", getattr(step, "__name__", step))

    def stop(self) -> None:
        self._stop.set()
        if self._consumer is not None:
            self._consumer.join(timeout=10)
        self._server.stop()
        self._context.close()
        for handler in (terminator, sweeper, deadline, brake):
            handler.dependencies.cache_clear()


class LocalFleetServer:
    """`batch-terminator local --fleet`: the emulator on 127.0.0.1 with a whole fleet deployed:
    one deployment per member account and region, each running its functions (terminator,
    deadline, brake, sweeper) and forwarding its decision events to the central account's bus
    and log group. AWS CLI profiles, one per account, reach them (`write_profiles`)."""

    def __init__(
        self,
        members: dict[tuple[str, str], PoliciesFile],
        *,
        central: tuple[str, str],
        organization_id: str | None = None,
        port: int = 5050,
        poll_seconds: float = 1.0,
        sweep_seconds: float | None = None,
    ) -> None:
        from moto.server import ThreadedMotoServer

        install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._members = members
        self._central = central
        self._organization_id = organization_id
        self._poll_seconds = poll_seconds
        self._sweep_seconds = sweep_seconds
        self._next_sweeps: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._consumer: threading.Thread | None = None
        self._context = ExitStack()
        self._on_audit: Sink = _ignore
        self.fleet: Any = None

    def start(self, scratch: str, on_audit: Sink = _ignore) -> Any:
        """Serve the emulator and deploy the fleet; returns the `sandbox.FleetSandbox` (`run`
        starts its functions). Raises PortInUse when the port is taken."""
        from batch_terminator_cli.emulator import eventbridge
        from batch_terminator_cli.sandbox import deploy_fleet

        _check_port_free(self.port)
        self._server.start()
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        self._context.enter_context(
            environment(
                {
                    **FAKE_CREDENTIALS,
                    **HANDLER_ENVIRONMENT,
                    "AWS_ENDPOINT_URL": self.endpoint_url,
                    "POWERTOOLS_METRICS_DISABLED": "true",
                }
            )
        )
        eventbridge.leave_organizations()
        if self._organization_id:
            for account, _region in self._members:
                eventbridge.join_organization(account, self._organization_id)
        self.fleet = deploy_fleet(
            self._members,
            Path(scratch),
            central=self._central,
            organization_id=self._organization_id,
        )
        now = time.monotonic()
        for member in self.fleet.members:
            interval = member.box.policies.settings.sweep_interval.total_seconds()
            every = interval if self._sweep_seconds is None else self._sweep_seconds
            self._next_sweeps[(member.account, member.region)] = now + every if every else 0
        self._on_audit = on_audit
        return self.fleet

    def run(self) -> None:
        """Start the members' functions in a background thread (after `start`, once the
        foreground has printed what it prints: the functions' logs are captured meanwhile)."""
        self._consumer = threading.Thread(target=self._run, daemon=True)
        self._consumer.start()

    def write_profiles(self, directory: Path, names: dict[str, str]) -> tuple[Path, Path]:
        """An AWS credentials file and config file with one profile per account (`names`:
        account -> profile name) whose endpoint is this server. Returns (credentials, config)."""
        keys = {m.account: m.credentials for m in self.fleet.members}
        keys[self.fleet.central.account] = self.fleet.central
        credentials, config = [], []
        for account, name in names.items():
            key = keys[account]
            credentials += [
                f"[{name}]",
                f"aws_access_key_id = {key.access_key_id}",
                f"aws_secret_access_key = {key.secret_access_key}",
            ]
            config += [f"[profile {name}]", f"endpoint_url = {self.endpoint_url}"]
        files = (directory / "credentials", directory / "config")
        files[0].write_text("\n".join(credentials) + "\n", encoding="utf-8")
        files[1].write_text("\n".join(config) + "\n", encoding="utf-8")
        return files

    def serve_once(self) -> None:
        """One turn of every member's functions, in the caller's thread (see `_serve`)."""
        for member in self.fleet.members:
            self._serve(member)

    def _run(self) -> None:
        while not self._stop.is_set():
            for member in self.fleet.members:
                if self._stop.is_set():
                    break
                LocalServer._step(functools.partial(self._serve, member))
            self._stop.wait(self._poll_seconds)

    def _serve(self, member: Any) -> None:
        """One turn of a member's functions, each in the member's environment: a sweep when
        due, the due schedules, the Batch events and alarms, then the requests. Nothing here
        redirects stdout (EMF is off): the foreground keeps the console."""
        where = (member.account, member.region)
        with self.fleet.acting_as(member) as box:
            session, deployment = box.session, box.deployment
            sqs = session.client("sqs")
            due = self._next_sweeps.get(where, 0)
            if due and time.monotonic() >= due:
                interval = box.policies.settings.sweep_interval.total_seconds()
                every = interval if self._sweep_seconds is None else self._sweep_seconds
                self._next_sweeps[where] = time.monotonic() + every
                with capture_logs(sweeper.logger):
                    sweeper.handler(
                        scheduled_event(member.region),
                        LambdaContext(function_name="batch-terminator-sweeper"),
                    )
            scheduler.fire_due(session)
            with capture_logs(deadline.logger), capture_logs(brake.logger):
                drain(sqs, deployment.events_queue_url, deadline.handler, max_invocations=10)
                _deliver_alarms(sqs, deployment.alarm_inbox_url)
            with capture_logs(terminator.logger) as logs:
                drain(sqs, deployment.request_queue_url, terminator.handler, max_invocations=10)
            ship_logs(session, deployment.terminator_log_group, logs.lines())
            for line in logs.audit():
                self._on_audit(line)

    def stop(self) -> None:
        from batch_terminator_cli.emulator import eventbridge

        self._stop.set()
        if self._consumer is not None:
            self._consumer.join(timeout=30)
        self._server.stop()
        self._context.close()
        eventbridge.leave_organizations()
        for handler in (terminator, sweeper, deadline, brake):
            handler.dependencies.cache_clear()
