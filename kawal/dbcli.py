"""`kawal db check` and `kawal db backup`: the health of the SQLite file, and a consistent copy of it.

`backup` uses SQLite's online backup API in one step: one read transaction, which in WAL mode never blocks
Kawal's writes, so ingest goes on while it runs and the copy is one consistent snapshot. (Copying a few pages
at a time would restart from the first page after every write by Kawal, and might never finish.)
A PostgreSQL store is backed up with pg_dump (docs/deploy.md).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import click

from storage import is_url
from storage.sqlite.check import DatabaseUnusable, problems, recovery_steps


def _sqlite_path(db: str) -> Path:
    if is_url(db):
        raise click.ClickException(
            "KAWAL_DB is a PostgreSQL URL: check it with PostgreSQL's own tools and back it up with pg_dump, "
            "e.g. `pg_dump --format=custom --file kawal.dump URL` (docs/deploy.md)"
        )
    path = Path(db)
    if not path.exists():
        raise click.ClickException(f"no database at {path}")
    return path


@click.group()
def db() -> None:
    """Check or back up the database (SQLite)."""


@db.command()
@click.option("--db", "target", envvar="KAWAL_DB", default="./kawal.db", show_default=True, help="(KAWAL_DB)")
@click.option("--full", is_flag=True, help="integrity_check (also indexes against tables; slower)")
def check(target: str, full: bool) -> None:
    """Say whether the database file is sound; exit status 1 when it is damaged."""
    path = _sqlite_path(target)
    t0 = time.monotonic()
    try:
        found = problems(path, full=full)
    except DatabaseUnusable as e:
        raise click.ClickException(str(e)) from None
    took = time.monotonic() - t0
    if not found:
        click.echo(f"{path}: ok ({'integrity' if full else 'quick'}_check, {took:.1f} s)")
        return
    for line in found[:50]:
        click.echo(f"{path}: {line}", err=True)
    if len(found) > 50:
        click.echo(f"{path}: ... and {len(found) - 50} more", err=True)
    raise click.ClickException(f"{path} is damaged. {recovery_steps(path)}")


@db.command()
@click.argument("destination", type=click.Path(path_type=Path))
@click.option("--db", "target", envvar="KAWAL_DB", default="./kawal.db", show_default=True, help="(KAWAL_DB)")
def backup(destination: Path, target: str) -> None:
    """Copy the database to DESTINATION while Kawal runs (SQLite online backup), then check the copy."""
    path = _sqlite_path(target)
    if destination.exists():
        raise click.ClickException(f"{destination} exists; give a new file name")
    t0 = time.monotonic()
    src = sqlite3.connect(path, timeout=30.0)
    dst = sqlite3.connect(destination)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    try:
        found = problems(destination)
    except DatabaseUnusable as e:
        raise click.ClickException(str(e)) from None
    if found:
        raise click.ClickException(f"the copy {destination} fails its check: {'; '.join(found[:3])}")
    size = destination.stat().st_size
    click.echo(f"backed up {path} to {destination} ({size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)")
