"""Admin commands: `kawal trips import`, `kawal token create`, `kawal audit verify`.

They work on the SQLite database directly (``--db`` or ``KAWAL_DB``), so they also work while the
service is stopped. A running service picks up imported trips within a few seconds, and tokens at once.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from kawal.timeutil import rfc3339
from storage import Database, is_url, open_database

if TYPE_CHECKING:
    from api.manifest import Format

DB_OPTION = click.option(
    "--db",
    "db_path",
    envvar="KAWAL_DB",
    default="./kawal.db",
    show_default=True,
    help="SQLite database file, or a postgresql:// URL (KAWAL_DB)",
)


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _open(db_path: str) -> Database:
    if not is_url(db_path) and not Path(db_path).exists():
        raise click.ClickException(f"no database at {db_path} (set --db or KAWAL_DB)")
    return open_database(db_path)


@click.group()
def trips() -> None:
    """Manage trips."""


@trips.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@DB_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "csv", "geojson"]),
    default="auto",
    show_default=True,
    help="manifest format; auto goes by the file name, then by the content",
)
@click.option("--actor", default=_default_actor, show_default="cli:<user>", help="name in the audit log")
@click.option("--dry-run", is_flag=True, help="validate only; import nothing")
def import_cmd(file: Path, db_path: str, fmt: str, actor: str, dry_run: bool) -> None:
    """Import trips from a CSV or GeoJSON manifest, one row or feature per trip.

    The whole file is checked first: if any row is invalid, each problem is printed with its line number
    (or feature index) and nothing is imported. Existing trips with the same trip_id are replaced.
    """
    from api.manifest import ManifestError, import_trips, parse_manifest

    data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    try:
        items = parse_manifest(data, cast("Format", fmt), file.name)
    except ManifestError as e:
        for where, what in e.problems:
            click.echo(f"{file}: {where}: {what}", err=True)
        raise click.ClickException(f"{len(e.problems)} problem(s) in {file}; nothing was imported") from None
    if dry_run:
        click.echo(f"{file}: {len(items)} valid trip(s); nothing imported (--dry-run)")
        return
    db = open_database(db_path)
    result = import_trips(db, items, actor=actor)
    click.echo(
        f"imported {len(result.trips)} trip(s) from {file} into {db.location}: "
        f"{result.created} created, {result.updated} replaced"
    )


@click.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option("--name", required=True, help="who holds the token; shown in the audit log")
@click.option("--role", required=True, type=click.Choice(["viewer", "operator", "admin"]))
@DB_OPTION
@click.option("--actor", default=_default_actor, show_default="cli:<user>", help="name in the audit log")
def token_create(name: str, role: str, db_path: str, actor: str) -> None:
    """Create a token and print it. It is shown only this once: only its hash is stored."""
    from api.auth import TokenExists, TokenStore

    store = TokenStore(open_database(db_path))
    try:
        secret = store.create(name, role, actor=actor)
    except (TokenExists, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(secret)
    click.echo(f"token {name!r} ({role}) created; it will not be shown again", err=True)


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@DB_OPTION
@click.option("--hash", "wanted", metavar="HASH", help="also confirm that this hash (on a receipt) is in the chain")
def audit_verify(db_path: str, wanted: str | None) -> None:
    """Check every record of the chain, and that every handover row matches its audit record. Exit code
    1 names the first broken record. With --hash, also confirm that the record of that hash is in the
    unbroken chain and print it."""
    from api.custody import verify_handovers
    from kawal.audit import AuditLog

    db = _open(db_path)
    log = AuditLog(db)
    result = log.verify()
    if not result.ok:
        click.echo(
            f"audit log BROKEN at record {result.first_bad_seq}: {result.reason} "
            f"({result.checked} record(s) before it are intact)",
            err=True,
        )
        sys.exit(1)
    problem = verify_handovers(db)
    if problem is not None:
        click.echo(f"audit log BROKEN at record {problem.audit_seq}: {problem.reason}", err=True)
        sys.exit(1)
    click.echo(f"audit log OK: {result.checked} record(s); head hash {result.head_hash or '-'}")
    if wanted:
        record = log.find_hash(wanted.strip().lower())
        if record is None:
            click.echo(f"hash {wanted} is not in the audit log", err=True)
            sys.exit(1)
        click.echo(
            f"hash {record.hash} is record {record.seq} of the unbroken chain: {record.action} {record.subject}"
            f" by {record.actor} at {rfc3339(record.at)}"
        )
