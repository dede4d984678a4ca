"""AWS clients for the CLI, pointed at an endpoint when one is given (e.g. `batch-terminator local`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard"}, user_agent_extra="batch-terminator-cli")


@dataclass(frozen=True)
class Aws:
    session: boto3.Session
    endpoint_url: str | None = None

    @classmethod
    def connect(cls, endpoint_url: str | None = None, region: str | None = None) -> Aws:
        return cls(boto3.Session(region_name=region), endpoint_url)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, config=_CONFIG)
