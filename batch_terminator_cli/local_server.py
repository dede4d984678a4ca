"""`batch-terminator local`: the emulator as a server on 127.0.0.1, with the terminator consuming.

boto3, the AWS CLI and `batch-terminator --endpoint-url` can be pointed at it. The terminator runs
in this process, polling the emulated request queue as the event source mapping would.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

import boto3

from batch_terminator.handlers import terminator
from batch_terminator.models.policies import PoliciesFile
from batch_terminator_cli.emulator import BatchControl, install
from batch_terminator_cli.emulator.deployment import EmulatedDeployment, deploy
from batch_terminator_cli.emulator.lambda_runtime import capture_logs, drain
from batch_terminator_cli.emulator.world import BatchWorld
from batch_terminator_cli.sandbox import FAKE_CREDENTIALS, HANDLER_ENVIRONMENT, REGION, environment

AuditSink = Callable[[dict[str, Any]], None]


class LocalServer:
    def __init__(self, policies: PoliciesFile, port: int = 5050, poll_seconds: float = 1.0) -> None:
        from moto.server import ThreadedMotoServer

        install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._policies = policies
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._consumer: threading.Thread | None = None
        self._environment: Any = None
        self.deployment: EmulatedDeployment | None = None
        self.world: BatchWorld | None = None

    def start(self, scratch: str, on_audit: AuditSink) -> EmulatedDeployment:
        self._server.start()
        policies_json = f"{scratch}/policies.json"
        with open(policies_json, "w", encoding="utf-8") as out:
            out.write(self._policies.model_dump_json(exclude_none=True))
        values = {**FAKE_CREDENTIALS, **HANDLER_ENVIRONMENT, "AWS_ENDPOINT_URL": self.endpoint_url}
        self._environment = environment({**values, "POLICIES_FILE": policies_json})
        self._environment.__enter__()
        session = boto3.Session(region_name=REGION)
        self.deployment = deploy(session)
        self.world = BatchWorld(session, BatchControl(region=REGION))
        with environment({"DLQ_URL": self.deployment.dlq_url}):
            terminator.dependencies.cache_clear()
            terminator.dependencies()  # resolve DLQ_URL while it is set
        self._consumer = threading.Thread(
            target=self._consume, args=(session, on_audit), daemon=True
        )
        self._consumer.start()
        return self.deployment

    def _consume(self, session: Any, on_audit: AuditSink) -> None:
        sqs = session.client("sqs")
        assert self.deployment is not None
        while not self._stop.is_set():
            with capture_logs(terminator.logger) as logs, redirect_stdout(io.StringIO()):
                drain(
                    sqs, self.deployment.request_queue_url, terminator.handler, max_invocations=10
                )
            for line in logs.audit():
                on_audit(line)
            self._stop.wait(self._poll_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._consumer is not None:
            self._consumer.join(timeout=10)
        self._server.stop()
        if self._environment is not None:
            self._environment.__exit__(None, None, None)
        terminator.dependencies.cache_clear()
