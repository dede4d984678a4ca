"""Stack outputs: the ids the CLI reads with CloudFormation DescribeStacks."""

from __future__ import annotations

from aws_cdk.assertions import Template

from tests.infra.support import Synthesized, logical_id


def test_outputs(template: Template) -> None:
    request_queue = logical_id(template, "AWS::SQS::Queue", "IntakeRequestQueue")
    dlq = logical_id(template, "AWS::SQS::Queue", "IntakeDeadLetterQueue")
    function = logical_id(template, "AWS::Lambda::Function", "TerminatorFunction")
    terminator_logs = logical_id(template, "AWS::Logs::LogGroup", "TerminatorLogGroup")
    sweeper_logs = logical_id(template, "AWS::Logs::LogGroup", "PoliciesLogGroup")
    ledger = logical_id(template, "AWS::DynamoDB::Table", "LedgerTable")
    deadline = logical_id(template, "AWS::Lambda::Function", "DeadlinesFunction")
    deadline_logs = logical_id(template, "AWS::Logs::LogGroup", "DeadlinesLogGroup")
    brake = logical_id(template, "AWS::Lambda::Function", "BrakeFunction")
    brake_logs = logical_id(template, "AWS::Logs::LogGroup", "BrakeLogGroup")
    group = logical_id(template, "AWS::Scheduler::ScheduleGroup", "DeadlinesScheduleGroup")
    events_queue = logical_id(template, "AWS::SQS::Queue", "DeadlinesEventsQueue")
    dashboard = logical_id(template, "AWS::CloudWatch::Dashboard", "Dashboard")
    outputs = {key: value["Value"] for key, value in template.find_outputs("*").items()}
    assert outputs == {
        "RequestQueueUrl": {"Ref": request_queue},
        "RequestQueueArn": {"Fn::GetAtt": [request_queue, "Arn"]},
        "DeadLetterQueueUrl": {"Ref": dlq},
        "EventSource": "batch-terminator",
        "EventDetailType": "Batch Job Termination Request",
        "TerminatorFunctionName": {"Ref": function},
        "TerminatorLogGroupName": {"Ref": terminator_logs},
        "SweeperLogGroupName": {"Ref": sweeper_logs},
        "LedgerTableName": {"Ref": ledger},
        "DeadlineFunctionName": {"Ref": deadline},
        "DeadlineLogGroupName": {"Ref": deadline_logs},
        "BrakeFunctionName": {"Ref": brake},
        "BrakeLogGroupName": {"Ref": brake_logs},
        "ScheduleGroupName": {"Ref": group},
        "EventsQueueUrl": {"Ref": events_queue},
        "DashboardName": {"Ref": dashboard},
    }


def test_stack_name_follows_context(synth: Synthesized, overridden: Synthesized) -> None:
    assert synth.stack.stack_name == "BatchTerminator"
    assert overridden.stack.stack_name == "BatchTerminatorTest"
