"""Pausing Python's cyclic garbage collector around the start's bulk loads."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside.

    Loading 100,000 trips and tracker states and replaying millions of stored readings allocates so many
    objects that the collector would walk the whole (large, long-lived) heap again and again: 10-25 % of
    the time in benchmarks/recovery.py. What the block frees is freed by reference counting anyway; the
    collector runs again when the block ends. Used only while the service starts, before the API and the
    ingest worker run: the switch is process-wide.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
