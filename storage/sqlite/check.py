"""Is the SQLite file sound? The check `kawal serve` runs before it opens the file, and `kawal db check`.

`PRAGMA quick_check` reads every page and checks the b-trees (not that indexes match their tables, which
`integrity_check` adds at several times the cost). A damaged file fails here, at start, with a message that
names the file and the way back, instead of failing later on whatever page ingest touches first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.errors import StorageError


class DatabaseDamaged(StorageError):
    """The database file is damaged: Kawal refuses to run on it."""


def problems(path: Path, full: bool = False) -> list[str]:
    """What is wrong with the file (empty when it is sound); `full` runs the slower integrity_check."""
    try:
        conn = sqlite3.connect(path, timeout=30.0)
    except sqlite3.Error as e:
        return [str(e)]
    try:
        rows = conn.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as e:
        return [str(e)]
    finally:
        conn.close()
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


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
    if not path.exists() or path.stat().st_size == 0:
        return
    found = problems(path)
    if found:
        shown = "; ".join(found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
        raise DatabaseDamaged(f"the database {path} is damaged: {shown}. {recovery_steps(path)}")
