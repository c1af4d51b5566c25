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
