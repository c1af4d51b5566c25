"""Is the SQLite file sound? The check `kawal serve` runs before it opens the file, and `kawal db check`.

`PRAGMA quick_check` reads every page and checks the b-trees (not that indexes match their tables, which
`integrity_check` adds at several times the cost). A damaged file fails here, at start, with a message that
names the file and the way back, instead of failing later on whatever page ingest touches first.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from storage.errors import StorageError


class DatabaseRefused(StorageError):
    """Kawal will not serve on this database file: the message says why and what to do."""


class DatabaseDamaged(DatabaseRefused):
    """The database file is damaged."""


class DatabaseUnusable(DatabaseRefused):
    """The database file cannot be opened for writing (read-only filesystem, permissions, locked)."""


def problems(path: Path, full: bool = False) -> list[str]:
    """What is damaged in the file (empty when it is sound); `full` runs the slower integrity_check.
    Raises DatabaseUnusable when the file cannot be opened or read at all (that is no damage)."""
    try:
        conn = sqlite3.connect(path, timeout=30.0)
        try:
            rows = conn.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as e:  # cannot open, read-only, locked: not the file's content
        raise DatabaseUnusable(f"cannot open the database {path}: {e}") from None
    except sqlite3.DatabaseError as e:  # not a database, malformed
        return [str(e)]
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


def ensure_writable(path: Path) -> None:
    """Kawal must store every reading it acknowledges: a database it cannot write is refused at start."""
    folder = path.parent if str(path.parent) else Path(".")
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise DatabaseUnusable(
            f"the database {path} is on a read-only filesystem. Remount it read-write (or point KAWAL_DB at a "
            "writable place); Kawal must store every reading before it acknowledges it"
        )
    for p in (folder, path):
        if p.exists() and not os.access(p, os.W_OK):
            raise DatabaseUnusable(
                f"the database {path} is not writable: {p} denies writing to this user. Fix its owner or "
                "permissions; Kawal must store every reading before it acknowledges it"
            )


def recovery_steps(path: Path) -> str:
    return (
        f"Kawal does not run on a damaged database. To recover: stop everything that uses {path}; "
        f"`kawal db check --db {path}` lists the damage; restore the latest backup (made with `kawal db backup`) "
        f"by copying it over {path} and deleting {path}-wal and {path}-shm; without a backup, salvage what is "
        f"readable with `sqlite3 {path} .recover | sqlite3 recovered.db` and point KAWAL_DB at recovered.db. "
        "Readings the broker still holds in Kawal's persistent session are delivered again once it runs."
    )


def ensure_sound(path: Path) -> None:
    """Raise DatabaseDamaged, naming the file and the recovery steps, unless the file is sound (or absent)."""
    if path.exists():
        ensure_writable(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    found = problems(path)
    if found:
        shown = "; ".join(found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
        raise DatabaseDamaged(f"the database {path} is damaged: {shown}. {recovery_steps(path)}")
