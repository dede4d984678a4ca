"""What the stack's functions share: asset, runtime, architecture, Powertools layer, IAM pieces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from batch_terminator.contract import (
    ACCOUNT_ID_ENV,
    EVENT_SOURCE,
    METRICS_NAMESPACE,
    PUBLISH_DECISIONS_ENV,
    SERVICE_NAME,
)
from infra.asset import AWS_DATA_PATH
from infra.nag import acknowledge
from infra.settings import PYTHON_RUNTIME, SettingsError, StackSettings

# Powertools publishes its layers from this account in the `aws` partition; other partitions
# (aws-cn, GovCloud) publish from other accounts, so this stack supports the `aws` partition only.
POWERTOOLS_LAYER_ACCOUNT: Final = "017000801446"

_ARCHITECTURES: Final = {
    "arm64": lambda_.Architecture.ARM_64,
    "x86_64": lambda_.Architecture.X86_64,
}


def powertools_layer_name(python_runtime: str, architecture: str) -> str:
    """`AWSLambdaPowertoolsPythonV3-python313-arm64` for python3.13 on arm64."""
    return f"AWSLambdaPowertoolsPythonV3-{python_runtime.replace('.', '')}-{architecture}"


def base_environment() -> dict[str, str]:
    """Environment every function gets, before its own queue URLs."""
    return {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # The runtime's botocore may predate Batch's bulk TerminateJobs; the asset ships the model.
        "AWS_DATA_PATH": AWS_DATA_PATH,
        # Standard mode backs off on Batch's 429 TooManyRequestsException.
        "AWS_RETRY_MODE": "standard",
    }


TRACING_OFF_REASON: Final = (
    "Tracing is off by choice, with the tracing context key set to 'off': Lambda's active "
    "tracing records each invocation's segment in X-Ray at X-Ray's per-trace price; a "
    "deployment that does not want that cost or data turns it off. The functions carry no "
    "tracing SDK either way, so nothing else changes; 'active' turns it back on."
)


@dataclass(frozen=True)
class LambdaPackage:
    code: lambda_.Code
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    powertools_layer: lambda_.ILayerVersion
    log_retention: logs.RetentionDays
    # Lambda's active tracing (TracingConfig Active): the invocation segments, no SDK in code.
    tracing_active: bool = True
    # Every function publishes its decisions on the account's default bus (publishDecisions).
    publish_decisions: bool = True

    @classmethod
    def create(cls, scope: Construct, settings: StackSettings, asset_dir: Path) -> LambdaPackage:
        stack = Stack.of(scope)
        layer_arn = (
            f"arn:{stack.partition}:lambda:{stack.region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
            f"{powertools_layer_name(settings.python_runtime, settings.architecture)}:"
            f"{settings.powertools_layer_version}"
        )
        return cls(
            code=lambda_.Code.from_asset(str(asset_dir)),
            runtime=_python_runtime(settings.python_runtime),
            architecture=_ARCHITECTURES[settings.architecture],
            powertools_layer=lambda_.LayerVersion.from_layer_version_arn(
                scope, "PowertoolsLayer", layer_arn
            ),
            log_retention=_retention(settings.log_retention_days),
            tracing_active=settings.tracing_active,
            publish_decisions=settings.publish_decisions,
        )

    def tracing_statements(self) -> list[iam.PolicyStatement]:
        """The X-Ray statement when tracing is active; nothing when it is off."""
        return [xray_statement()] if self.tracing_active else []

    def decision_statements(self, scope: Construct) -> list[iam.PolicyStatement]:
        """events:PutEvents on this account's and region's default bus, where the functions
        publish their decisions; nothing when publishDecisions is false."""
        return [publish_decisions_statement(scope)] if self.publish_decisions else []

    def function(
        self,
        scope: Construct,
        *,
        handler: str,
        memory_size: int,
        timeout: Duration,
        reserved_concurrency: int,
        log_group: logs.ILogGroup,
        role: iam.Role,
        environment: dict[str, str],
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> lambda_.Function:
        """A function of this package: its layer, its tracing mode (Active, or none when off),
        its own log group and a fixed role."""
        function = lambda_.Function(
            scope,
            "Function",
            code=self.code,
            handler=handler,
            runtime=self.runtime,
            architecture=self.architecture,
            layers=[self.powertools_layer],
            memory_size=memory_size,
            timeout=timeout,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE if self.tracing_active else lambda_.Tracing.DISABLED,
            log_group=log_group,
            role=fixed(role),
            dead_letter_queue=dead_letter_queue,
            environment={
                **base_environment(),
                PUBLISH_DECISIONS_ENV: "true" if self.publish_decisions else "false",
                # Every function that publishes names its account in each decision: Lambda sets
                # AWS_REGION but no account variable ("Defined runtime environment variables").
                ACCOUNT_ID_ENV: Stack.of(scope).account,
                **environment,
            },
        )
        drop_redundant_role_dependency(function)
        self.acknowledge_runtime(function)
        if not self.tracing_active:
            acknowledge(function, "Serverless-LambdaTracing", TRACING_OFF_REASON)
        return function

    def acknowledge_runtime(self, function: lambda_.Function) -> None:
        if self.runtime.name == _latest_python().name:
            return
        reason = (
            f"{self.runtime.name} is pinned with the {PYTHON_RUNTIME} context key: the runtime "
            "selects the Powertools layer build (named after it), so runtime, layer build and "
            "layer version change together in one reviewed context change, not whenever Lambda "
            "adds a runtime."
        )
        acknowledge(function, "AwsSolutions-L1", reason)
        acknowledge(function, "Serverless-LambdaLatestVersion", reason)


def function_role(
    scope: Construct, construct_id: str, statements: list[iam.PolicyStatement]
) -> iam.Role:
    """A role with exactly these statements inline: no managed policies, nothing added later."""
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        inline_policies={"Permissions": iam.PolicyDocument(statements=statements)},
    )


def fixed(role: iam.Role) -> iam.IRole:
    """The role as the function sees it: grants CDK would add on its own (event sources,
    tracing, DLQ) become no-ops, so the inline statements stay the whole policy."""
    return role.without_policy_updates()


def drop_redundant_role_dependency(function: lambda_.Function) -> None:
    """CDK adds DependsOn: role for a role's separate default policy; these roles have none, and
    the function's GetAtt of the role ARN already orders it after the role (cfn-lint W3005)."""
    cfn_function = function.node.default_child
    assert isinstance(cfn_function, lambda_.CfnFunction)
    cfn_function.add_deletion_override("DependsOn")


def log_group_statement(log_group: logs.ILogGroup) -> iam.PolicyStatement:
    # The stack creates the group: no logs:CreateLogGroup, and streams of this group only.
    return iam.PolicyStatement(
        sid="WriteOwnLogGroup",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group.log_group_arn],
    )


def default_bus_arn(scope: Construct) -> str:
    """`arn:<partition>:events:<region>:<account>:event-bus/default` of the scope's stack."""
    return Stack.of(scope).format_arn(
        service="events",
        resource="event-bus",
        resource_name="default",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def publish_decisions_statement(scope: Construct) -> iam.PolicyStatement:
    """PutEvents on the default bus only, and only events whose source is batch-terminator: the
    EventBridge user guide's condition keys list `events:source` for PutEvents ("Using IAM policy
    conditions in Amazon EventBridge"), so the functions cannot publish as anything else."""
    return iam.PolicyStatement(
        sid="PublishDecisions",
        actions=["events:PutEvents"],
        resources=[default_bus_arn(scope)],
        conditions={"StringEquals": {"events:source": EVENT_SOURCE}},
    )


def xray_statement() -> iam.PolicyStatement:
    """What Lambda's active tracing needs of the function's role: X-Ray takes only '*'."""
    return iam.PolicyStatement(
        sid="XRayTracing",
        actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        resources=["*"],
    )


def batch_read_statement() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="ReadBatchJobs",
        actions=["batch:DescribeJobs", "batch:ListJobs"],
        resources=["*"],
    )


def batch_queue_discovery_statement() -> iam.PolicyStatement:
    """Resolve job queue names to queues: the sweeper matches settings.jobQueues (names, ARNs,
    globs) against the account's queues, the terminator a selector request's queue names."""
    return iam.PolicyStatement(
        sid="FindJobQueues",
        actions=["batch:DescribeJobQueues"],
        resources=["*"],
    )


WILDCARD_RESOURCE_REASON: Final = (
    "Resource '*' appears only with actions that have no resource-level permissions: "
    "batch:DescribeJobs, batch:ListJobs and batch:DescribeJobQueues (Batch defines no resource "
    "type for them) and, when tracing is active, "
    "xray:PutTraceSegments / xray:PutTelemetryRecords (X-Ray accepts only '*')."
)


def acknowledge_role_wildcards(role: iam.Role) -> None:
    # AwsSolutions reports each wildcard string; Serverless reports the role once for any '*'.
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", WILDCARD_RESOURCE_REASON)
    acknowledge(role, "Serverless-LambdaStarPermissions", WILDCARD_RESOURCE_REASON)


def _python_runtime(name: str) -> lambda_.Runtime:
    for runtime in lambda_.Runtime.ALL:
        if runtime.name == name and runtime.family == lambda_.RuntimeFamily.PYTHON:
            return runtime
    raise SettingsError(f"{PYTHON_RUNTIME}: {name!r} is not a Python runtime this CDK knows")


def _latest_python() -> lambda_.Runtime:
    pythons = [r for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON]
    return max(pythons, key=lambda runtime: _python_version(runtime.name))


def _python_version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.removeprefix("python").split("."))


RETENTION_BY_DAYS: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    # Settings already restrict the value to these; the lookup only translates it.
    return RETENTION_BY_DAYS[days]
