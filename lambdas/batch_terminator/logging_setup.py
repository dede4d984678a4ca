"""Powertools Logger set up so audit lines keep a stable schema."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from batch_terminator.contract import SERVICE_NAME
from batch_terminator.models.audit import AuditRecord

AUDIT_KEYS: Final = frozenset(f.name for f in fields(AuditRecord))


class AuditFormatter(LambdaPowertoolsFormatter):
    """Powertools drops keys whose value is None; audit lines keep every key, null or not,
    so Logs Insights queries and downstream parsers see one schema."""

    @staticmethod
    def _strip_none_records(records: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in records.items() if v is not None or k in AUDIT_KEYS}


def make_logger() -> Logger:
    return Logger(service=SERVICE_NAME, logger_formatter=AuditFormatter())
