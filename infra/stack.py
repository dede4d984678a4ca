"""BatchTerminatorStack: intake, ledger, terminator, policies, deadlines, brake and monitoring,
with the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from batch_terminator.contract import EVENT_SOURCE, REQUEST_DETAIL_TYPE
from batch_terminator.models.policies import PoliciesFile
from infra.constructs.brake import Brake
from infra.constructs.dashboard import Dashboard
from infra.constructs.deadlines import Deadlines
from infra.constructs.forwarding import DecisionForwarding
from infra.constructs.intake import Intake
from infra.constructs.lambda_package import LambdaPackage
from infra.constructs.ledger import Ledger
from infra.constructs.monitoring import Monitoring, Watched
from infra.constructs.policies import Policies
from infra.constructs.terminator import Terminator
from infra.settings import StackSettings


class BatchTerminatorStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        policies: PoliciesFile,
        asset_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=settings.stack_name,
            description="batch-terminator: terminates AWS Batch jobs by policy or on request",
            **kwargs,
        )
        package = LambdaPackage.create(self, settings, asset_dir)
        self.intake = Intake(self, "Intake", settings=settings)
        self.ledger = Ledger(self, "Ledger")
        self.terminator = Terminator(
            self,
            "Terminator",
            package=package,
            settings=settings,
            request_queue=self.intake.queue,
            dead_letter_queue=self.intake.dead_letter_queue,
            ledger=self.ledger,
        )
        self.policies = Policies(
            self,
            "Policies",
            package=package,
            policies=policies,
            request_queue=self.intake.queue,
            ledger=self.ledger,
        )
        self.deadlines = Deadlines(
            self,
            "Deadlines",
            package=package,
            settings=settings,
            policies=policies,
            request_queue=self.intake.queue,
            ledger=self.ledger,
        )
        self.brake = Brake(
            self,
            "Brake",
            package=package,
            settings=settings,
            policies=policies,
            request_queue=self.intake.queue,
            ledger=self.ledger,
        )
        self.forwarding = (
            DecisionForwarding(self, "DecisionForwarding", central_bus_arn=settings.central_bus_arn)
            if settings.central_bus_arn
            else None
        )
        forwarding_queues = (
            {
                "DecisionForwardingFailed": (
                    self.forwarding.dead_letter_queue,
                    "Decision events EventBridge could not forward to the fleet's central bus "
                    "after 24 hours of retries: they are missing from the central audit (this "
                    "account's audit log still has them). Check that the central bus admits "
                    "this account.",
                )
            }
            if self.forwarding
            else {}
        )
        watched = Watched(
            failure_queues={
                **forwarding_queues,
                "DeadLetterQueueNotEmpty": (
                    self.intake.dead_letter_queue,
                    "Termination requests are in the dead-letter queue: rejected (invalid) or "
                    "failed after retries. See the queue's messages and the rejected-and-failed "
                    "saved query.",
                ),
                "SweepFailuresQueued": (
                    self.policies.failure_queue,
                    "A scheduled policy sweep failed after retries: scheduled policies did not run.",
                ),
                "EventsDeadLetterQueueNotEmpty": (
                    self.deadlines.events_dead_letter_queue,
                    "Batch job events the deadline function could not process after retries (or "
                    "that EventBridge could not deliver): their deadlines may not be scheduled. "
                    "The sweeper still catches those jobs; see the queue's messages and the "
                    "deadline log group.",
                ),
                "ScheduleDeadLettersQueued": (
                    self.deadlines.schedule_dead_letter_queue,
                    "A deadline schedule could not send its termination request to the request "
                    "queue after retries: that deadline was missed (the sweeper remains the net).",
                ),
                "BrakeFailuresQueued": (
                    self.brake.failure_queue,
                    "An alarm brake failed after retries, or its alarm could not be delivered: "
                    "the alarm-triggered policies may not have run.",
                ),
            },
            functions={
                "Terminator": self.terminator.function,
                "Sweeper": self.policies.function,
                "Deadline": self.deadlines.function,
                "Brake": self.brake.function,
            },
            sweeper=self.policies.function,
            schedule_group=self.deadlines.schedule_group,
            audit_log_group=self.terminator.log_group,
            deadline_log_group=self.deadlines.log_group,
            log_groups=[
                self.terminator.log_group,
                self.policies.log_group,
                self.deadlines.log_group,
                self.brake.log_group,
            ],
        )
        self.monitoring = Monitoring(
            self, "Monitoring", watched=watched, alarm_topic_arn=settings.alarm_topic_arn
        )
        self.dashboard = Dashboard(self, "Dashboard", watched=watched)
        self._outputs()

    def _outputs(self) -> None:
        # The CLI finds the deployed stack through these ids (CloudFormation DescribeStacks).
        outputs = {
            "RequestQueueUrl": self.intake.queue.queue_url,
            "RequestQueueArn": self.intake.queue.queue_arn,
            "DeadLetterQueueUrl": self.intake.dead_letter_queue.queue_url,
            "EventSource": EVENT_SOURCE,
            "EventDetailType": REQUEST_DETAIL_TYPE,
            "TerminatorFunctionName": self.terminator.function.function_name,
            "TerminatorLogGroupName": self.terminator.log_group.log_group_name,
            "SweeperLogGroupName": self.policies.log_group.log_group_name,
            "LedgerTableName": self.ledger.table.table_name,
            "DeadlineFunctionName": self.deadlines.function.function_name,
            "DeadlineLogGroupName": self.deadlines.log_group.log_group_name,
            "BrakeFunctionName": self.brake.function.function_name,
            "BrakeLogGroupName": self.brake.log_group.log_group_name,
            "ScheduleGroupName": self.deadlines.schedule_group_name,
            "EventsQueueUrl": self.deadlines.events_queue.queue_url,
            "DashboardName": self.dashboard.dashboard.dashboard_name,
        }
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)
