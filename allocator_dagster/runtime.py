"""Process-level helpers for long loops over days (no Dagster import)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Run a loop over many days with the objects that already exist frozen out of the GC.

    A range run allocates many short-lived objects per day; without this every full collection
    also scans everything loaded before the loop (Dagster, pandas, cvxpy), which is most of the
    heap. Nothing is leaked: the objects are unfrozen afterwards. Left alone when something
    else in the process has frozen objects.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
