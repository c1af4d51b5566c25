"""Errors every backend raises, so the stages handle a failure the same way on SQLite and PostgreSQL.

Each backend maps its driver's exceptions onto these (the driver's exception stays as ``__cause__``).
"""

from __future__ import annotations


class StorageError(Exception):
    """Anything the database refused or failed to do."""


class IntegrityError(StorageError):
    """A constraint or a guarding trigger refused the change (unique key, append-only audit log)."""


class OperationalError(StorageError):
    """The database is unavailable for now (locked, busy, disk full, connection lost, serialisation
    conflict): the same work may succeed when retried."""


class CorruptError(OperationalError):
    """The database file is damaged. Retried like any unavailability (nothing is acknowledged meanwhile), but
    only a restore or a salvage by the operator ends it (`kawal db check`)."""


def storage_advice(error: str, n: int, where: str) -> str:
    """The one log line that tells an operator what to do when the store refuses writes."""
    text = error.lower()
    if "full" in text:
        todo = f"free space on the filesystem of {where}"
    elif "readonly" in text or "read-only" in text:
        todo = f"make {where} and its folder writable again"
    elif "malformed" in text or "not a database" in text:
        todo = f"stop Kawal: {where} is damaged; `kawal db check` says how and how to restore it"
    elif "locked" in text or "busy" in text:
        todo = f"stop whatever holds a lock on {where}"
    else:
        todo = f"check {where}"
    return (
        f"cannot store {n} messages: {error}. {todo.capitalize()}; nothing is acknowledged meanwhile (the broker "
        "keeps the messages) and Kawal retries by itself, /healthz answers 503 until then"
    )
