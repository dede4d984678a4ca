"""moto's DynamoDB, made atomic under concurrent callers as DynamoDB is.

DynamoDB applies each item write as one step: "conditional writes are idempotent ... and
atomic" and a condition expression is checked against the item as it is when the write is
applied ("Condition expressions" and "Conditional writes", Amazon DynamoDB developer guide);
TransactWriteItems applies all of its writes or none ("Amazon DynamoDB Transactions: How it
works"). moto checks a condition and then writes the item in plain Python, with no lock, so two
threads can both pass one condition (two invocations claiming one job) and a Query or Scan can
walk a table while another thread changes it.

`install()` serialises moto's item operations behind one process-wide lock. That is stricter
than DynamoDB (atomic per item, concurrent across items) and never weaker: every outcome it
allows is one DynamoDB allows. BatchGetItem and BatchWriteItem are served by moto through
`get_item`, `put_item` and `delete_item`, one item at a time, each atomic as in DynamoDB (a
batch is not atomic as a whole there either).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Final

# The operations of moto's DynamoDBBackend that read or write items.
ITEM_OPERATIONS: Final = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "transact_write_items",
)

_lock = threading.RLock()
_installed = False


def install() -> None:
    """Serialise moto's DynamoDB item operations (idempotent; any time, also under a mock)."""
    global _installed  # noqa: PLW0603 - one process-wide switch, like moto's own registry
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in ITEM_OPERATIONS:
        setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
    _installed = True


def _atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    return atomic
