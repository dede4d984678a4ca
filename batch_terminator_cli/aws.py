"""AWS clients for the CLI: the AWS CLI's `--profile`, `--region` and `--endpoint-url`, and the
deployed stack's outputs (CloudFormation DescribeStacks), read once per command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Bounded calls: an endpoint that accepts and never answers must not hold a command (or one
# member of a fan-out) for the SDK's default 60 s read timeout on each of its attempts.
_CONFIG = Config(
    retries={"mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="batch-terminator-cli",
)
# STS GetCallerIdentity answers in milliseconds: who a profile is, asked first of every member
# in a fan-out, gives up after 2 attempts of 3 s to connect and 5 s to read.
_IDENTITY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2},
    connect_timeout=3,
    read_timeout=5,
    user_agent_extra="batch-terminator-cli",
)


class StackOutputMissing(LookupError):
    """The stack does not exist (here), or does not (yet) have the output the CLI needs."""


@dataclass(frozen=True)
class Aws:
    """A boto3 session (profile and region resolved as the AWS CLI does) and an endpoint."""

    session: boto3.Session
    endpoint_url: str | None = None
    _outputs: dict[str, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def connect(
        cls, endpoint_url: str | None = None, region: str | None = None, profile: str | None = None
    ) -> Aws:
        """Raises botocore's ProfileNotFound when `profile` is not configured."""
        return cls(boto3.Session(profile_name=profile, region_name=region), endpoint_url)

    def client(self, service: str) -> Any:
        """A boto3 client with bounded timeouts (STS's shorter still); raises botocore's
        NoRegionError when no region is configured."""
        config = _IDENTITY_CONFIG if service == "sts" else _CONFIG
        return self.session.client(service, endpoint_url=self.endpoint_url, config=config)

    def stack_outputs(self, stack_name: str) -> dict[str, str]:
        """The stack's outputs (OutputKey -> OutputValue), read once.

        Raises StackOutputMissing when the stack does not exist in this account and region, and
        botocore errors for anything else."""
        if stack_name not in self._outputs:
            try:
                stacks = self.client("cloudformation").describe_stacks(StackName=stack_name)
            except ClientError as error:
                message = error.response.get("Error", {}).get("Message", "")
                if "does not exist" not in message:
                    raise
                raise StackOutputMissing(
                    f"stack {stack_name} does not exist in {self.session.region_name}: "
                    "deploy it, or give --stack-name, --region or --profile"
                ) from error
            outputs = stacks["Stacks"][0].get("Outputs", [])
            self._outputs[stack_name] = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        return self._outputs[stack_name]

    def stack_output(self, stack_name: str, key: str) -> str:
        """One output of the deployed stack; raises StackOutputMissing saying what to do."""
        outputs = self.stack_outputs(stack_name)
        if key not in outputs:
            raise StackOutputMissing(
                f"stack {stack_name} has no output {key}: is it deployed (and done updating), "
                "and is --stack-name right?"
            )
        return outputs[key]
