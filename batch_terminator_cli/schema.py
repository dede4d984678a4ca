"""The JSON Schema of policies.yaml, generated from the model, so editors complete and check it."""

from __future__ import annotations

import json

from batch_terminator.models.policies_schema import PoliciesFile


def policies_schema() -> dict[str, object]:
    schema = PoliciesFile.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://batch-terminator.dev/policies.schema.json",
        "title": "batch-terminator policies file",
        **schema,
    }


def policies_schema_json() -> str:
    return json.dumps(policies_schema(), indent=2, sort_keys=False) + "\n"
