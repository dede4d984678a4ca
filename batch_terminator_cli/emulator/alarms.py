"""CloudWatch alarm and AWS Budgets notifications in the shapes AWS delivers them, for the demo,
`local` and the benchmarks (tests compare them with the samples in tests/events).

- EventBridge `CloudWatch Alarm State Change` (CloudWatch user guide, "Alarm events and
  EventBridge"): `detail.alarmName`, `detail.state.{value,reason,timestamp}`.
- A Lambda alarm action's payload (CloudWatch user guide, "Lambda alarm actions"): `source`,
  `alarmArn`, `accountId`, `time`, `region`, `alarmData` (no `detail-type`).
- An SNS notification as a Lambda subscription receives it (`Records[].Sns`), whose `Message` is
  the alarm in JSON, or an AWS Budgets alert in prose with a `Budget Name:` line.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _cloudwatch_time(at: datetime) -> str:
    """CloudWatch's own format: `2026-11-29T08:10:00.000+0000`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _arn(name: str, account: str, region: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def _state(value: str, at: datetime) -> dict[str, Any]:
    return {
        "value": value,
        "reason": f"Threshold Crossed: the alarm is {value}.",
        "timestamp": _cloudwatch_time(at),
    }


def alarm_event(
    name: str, at: datetime, value: str = "ALARM", *, account: str = ACCOUNT, region: str = REGION
) -> dict[str, Any]:
    """The EventBridge event of an alarm entering `value` at `at`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [_arn(name, account, region)],
        "detail": {
            "alarmName": name,
            "state": _state(value, at),
            "previousState": _state("OK" if value == "ALARM" else "ALARM", at),
            "configuration": {"description": f"{name} (emulated)", "metrics": []},
        },
    }


def alarm_action(
    name: str, at: datetime, value: str = "ALARM", *, account: str = ACCOUNT, region: str = REGION
) -> dict[str, Any]:
    """What a Lambda alarm action invokes the function with."""
    return {
        "source": "aws.cloudwatch",
        "alarmArn": _arn(name, account, region),
        "accountId": account,
        "time": _cloudwatch_time(at),
        "region": region,
        "alarmData": {
            "alarmName": name,
            "state": _state(value, at),
            "previousState": _state("OK" if value == "ALARM" else "ALARM", at),
            "configuration": {"description": f"{name} (emulated)", "metrics": []},
        },
    }


def _sns_event(message: str, subject: str, sent: datetime, topic: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": sent.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
                    + f"{sent.microsecond // 1000:03d}Z",
                    "SignatureVersion": "1",
                    "Signature": "EMULATED",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/emulated.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def sns_alarm(
    name: str, at: datetime, value: str = "ALARM", *, account: str = ACCOUNT, region: str = REGION
) -> dict[str, Any]:
    """An alarm notification through SNS, as a Lambda subscription receives it."""
    message = {
        "AlarmName": name,
        "AlarmDescription": f"{name} (emulated)",
        "AWSAccountId": account,
        "NewStateValue": value,
        "NewStateReason": f"Threshold Crossed: the alarm is {value}.",
        "StateChangeTime": _cloudwatch_time(at),
        "Region": "US East (N. Virginia)",
        "AlarmArn": _arn(name, account, region),
        "OldStateValue": "OK" if value == "ALARM" else "ALARM",
    }
    topic = f"arn:aws:sns:{region}:{account}:batch-alarms"
    return _sns_event(json.dumps(message), f'{value}: "{name}"', at, topic)


def budgets_alert(
    budget: str, sent: datetime, *, account: str = ACCOUNT, region: str = REGION
) -> dict[str, Any]:
    """An AWS Budgets alert through SNS: prose, with its `Budget Name:` line."""
    message = (
        f"AWS Budget Notification {sent:%B %d, %Y}\nAWS Account {account}\n\nDear AWS Customer,"
        f"\n\nYou requested that we alert you when the ACTUAL Cost associated with your {budget} "
        "budget is greater than $8,000.00 for the current month.\n\n"
        f"Budget Name: {budget}\nBudget Type: Cost\nBudgeted Amount: $10,000.00\n"
        "Alert Type: ACTUAL\nAlert Threshold: > $8,000.00\nACTUAL Amount: $8,412.77\n"
    )
    topic = f"arn:aws:sns:{region}:{account}:budget-alerts"
    return _sns_event(
        message, f"AWS Budgets: {budget} has exceeded your alert threshold", sent, topic
    )
