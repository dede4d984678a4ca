"""Each measured run as a new Lambda container: the functions' one botocore session is made
anew, so it reads this run's environment (AWS_DATA_PATH picks the Batch model botocore loads;
a session keeps the loader it made first)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from batch_terminator import clients


@contextmanager
def new_container() -> Iterator[None]:
    """The functions' session is dropped before and after the block."""
    clients._session.cache_clear()
    try:
        yield
    finally:
        clients._session.cache_clear()
