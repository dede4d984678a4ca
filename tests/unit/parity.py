"""One check shared by the parity tests: what the functions' pydantic-free code read equals what
the reference pydantic model read."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel


def same(read: Any, model: Any, where: str = "") -> None:
    """`read` (plain dataclasses) holds exactly what `model` (pydantic models) holds: the same
    fields, equal values, and in lists the same items of the same types. Raises AssertionError
    naming the field path (`.policies.0.when.status`)."""
    if dataclasses.is_dataclass(read):
        assert isinstance(model, BaseModel), where
        assert {f.name for f in dataclasses.fields(read)} == set(type(model).model_fields), where
        for f in dataclasses.fields(read):
            same(getattr(read, f.name), getattr(model, f.name), f"{where}.{f.name}")
    elif isinstance(read, list):
        assert isinstance(model, list), where
        assert len(read) == len(model), where
        for i, (a, b) in enumerate(zip(read, model, strict=True)):
            same(a, b, f"{where}.{i}")
    else:
        assert read == model, where
        assert type(read) is type(model), where
