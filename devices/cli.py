"""`kawal devices`: provision trackers and Kawal's own MQTT account (see devices/provision.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import click

from devices.provision import Credentials, Provisioner, ProvisionError

PASSWORD_FILE_ENV = "KAWAL_MOSQUITTO_PASSWORD_FILE"
ACL_FILE_ENV = "KAWAL_MOSQUITTO_ACL_FILE"
RELOAD_HINT = (
    "Reload the broker so it reads the new files: `kill -HUP <mosquitto pid>`, "
    "`systemctl reload mosquitto`, or `docker compose kill -s SIGHUP mosquitto`."
)


def _files(f: Any) -> Any:
    f = click.option("--acl-file", type=click.Path(dir_okay=False, path_type=Path), envvar=ACL_FILE_ENV,
                     default=Path("mosquitto/acl"), show_default=True,
                     help=f"Mosquitto ACL file to update ({ACL_FILE_ENV})")(f)
    f = click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
                     envvar=PASSWORD_FILE_ENV, default=Path("mosquitto/passwd"), show_default=True,
                     help=f"Mosquitto password file to update ({PASSWORD_FILE_ENV})")(f)
    return f


def _create_dirs_option(f: Any) -> Any:
    return click.option("--create-dirs", is_flag=True,
                        help="create the folders of the password and ACL files if they do not exist")(f)


def _written(prov: Provisioner) -> None:
    click.echo(f"Updated {prov.password_file} and {prov.acl_file}.", err=True)


def _db_option(f: Any) -> Any:
    return click.option("--db", help="Kawal's SQLite file or postgresql:// URL (KAWAL_DB, default ./kawal.db)")(f)


def _open_db(db: str | None) -> Any:
    from kawal.settings import Settings
    from storage import open_database

    return open_database(db if db is not None else Settings.model_validate({}).db)


def _print_credentials(creds: Credentials, as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps({"username": creds.username, "password": creds.password, "role": creds.role,
                               "rotated": creds.rotated, **extra}))
        return
    for key, value in {**extra, "username": creds.username, "password": creds.password}.items():
        click.echo(f"{key + ':':<10}{value}")
    click.echo("The password is shown only this once: store it now.", err=True)


@click.group()
def devices() -> None:
    """Provision trackers: registry entry, MQTT password and ACL for Mosquitto."""


@devices.command("add")
@click.argument("tracker_id")
@click.option("--crate", "crate_id", help="the crate this tracker is fixed to")
@click.option("--rotate", is_flag=True, help="issue a new password for a tracker that already has one")
@click.option("--owntracks", is_flag=True,
              help="a phone running OwnTracks: TRACKER_ID is USER.DEVICE, the MQTT user is USER")
@click.option("--json", "as_json", is_flag=True, help="print the credentials as JSON")
@click.option("--agent-config", type=click.Path(dir_okay=False, path_type=Path),
              help="also write the config file of `kawal agent` (TOML, or JSON for a .json name)")
@click.option("--broker-url", help="mqtt://host:port or mqtts://host:port the agent connects to")
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA certificate of the broker, for an mqtts:// broker URL")
@_files
@_create_dirs_option
@_db_option
def add(tracker_id: str, crate_id: str | None, rotate: bool, owntracks: bool, as_json: bool,
        agent_config: Path | None, broker_url: str | None, ca_file: Path | None,
        password_file: Path, acl_file: Path, create_dirs: bool, db: str | None) -> None:
    """Register TRACKER_ID and give it an MQTT account that may publish only to kawal/v1/TRACKER_ID/#."""
    if agent_config is not None and (owntracks or not broker_url):
        raise click.ClickException("--agent-config needs --broker-url, and is for native trackers only")
    if agent_config is None and (broker_url or ca_file):
        raise click.ClickException("--broker-url and --ca go with --agent-config")
    if agent_config is not None:
        _check_agent_values(tracker_id, broker_url)  # before any password is issued
    prov = Provisioner(password_file, acl_file, _open_db(db), create_dirs=create_dirs)
    try:
        creds = prov.add_tracker(tracker_id, crate_id, rotate, owntracks=owntracks)
    except ProvisionError as e:
        raise click.ClickException(str(e)) from e
    extra: dict[str, Any] = {"tracker": tracker_id}
    if crate_id:
        extra["crate"] = crate_id
    extra["topic"] = ("owntracks/{}/{}".format(*tracker_id.split(".", 1)) if owntracks
                      else f"kawal/v1/{tracker_id}/telemetry")
    if agent_config is not None:
        assert broker_url is not None
        _write_agent_config(agent_config, tracker_id, broker_url, creds, ca_file)
        extra["agent_config"] = str(agent_config.absolute())
    _print_credentials(creds, as_json, extra)
    _written(prov)
    click.echo(RELOAD_HINT, err=True)


def _check_agent_values(tracker_id: str, broker_url: str | None) -> None:
    from pydantic import ValidationError

    from devices.agent.config import AgentConfig

    try:
        AgentConfig.model_validate({"tracker_id": tracker_id, "broker_url": broker_url})
    except ValidationError as e:
        raise click.ClickException(f"agent config: {e.errors()[0]['msg']}") from e


def _write_agent_config(path: Path, tracker_id: str, broker_url: str, creds: Credentials, ca: Path | None) -> None:
    from pydantic import ValidationError

    from devices.agent.config import write_config

    values = {"tracker_id": tracker_id, "broker_url": broker_url, "username": creds.username,
              "password": creds.password, "ca_file": ca.resolve() if ca else None}
    try:
        write_config(path, values)
    except (ValidationError, OSError) as e:
        raise click.ClickException(f"the agent config was not written: {e}") from e


def _account_from_url(url: str | None) -> tuple[str, str]:
    if not url:
        raise click.ClickException("--from-mqtt-url needs KAWAL_MQTT_URL (mqtt://user:password@host:port)")
    parts = urlsplit(url)
    if not parts.username or not parts.password:
        raise click.ClickException("KAWAL_MQTT_URL has no user:password@ part to provision")
    return unquote(parts.username), unquote(parts.password)


@devices.command("add-service-account")
@click.argument("name", required=False)
@click.option("--rotate", is_flag=True, help="issue a new password for an existing account")
@click.option("--from-mqtt-url", is_flag=True,
              help="make the broker accept the user and password named in KAWAL_MQTT_URL (idempotent)")
@click.option("--json", "as_json", is_flag=True, help="print the credentials as JSON")
@_files
@_create_dirs_option
@_db_option
def add_service_account(name: str | None, rotate: bool, from_mqtt_url: bool, as_json: bool,
                        password_file: Path, acl_file: Path, create_dirs: bool, db: str | None) -> None:
    """Give Kawal itself (NAME, default `kawal`) an account that reads kawal/v1/# and owntracks/#."""
    from kawal.settings import Settings

    password = None
    if from_mqtt_url:
        url_user, password = _account_from_url(Settings.model_validate({}).mqtt_url)
        if name is not None and name != url_user:
            raise click.ClickException(f"NAME {name!r} is not the user in KAWAL_MQTT_URL ({url_user!r})")
        name, rotate = url_user, True
    name = name or "kawal"
    prov = Provisioner(password_file, acl_file, _open_db(db), create_dirs=create_dirs)
    try:
        creds = prov.add_service_account(name, rotate, password)
    except ProvisionError as e:
        raise click.ClickException(str(e)) from e
    if from_mqtt_url:
        click.echo(f"service account {name!r} set to the password in KAWAL_MQTT_URL")
    else:
        _print_credentials(creds, as_json, {"account": name})
        if not as_json:
            click.echo(f"Use it as KAWAL_MQTT_URL=mqtt://{name}:{creds.password}@<broker>:1883", err=True)
    _written(prov)
    click.echo(RELOAD_HINT, err=True)


@devices.command("revoke")
@click.argument("username")
@_files
@_db_option
def revoke(username: str, password_file: Path, acl_file: Path, db: str | None) -> None:
    """Remove USERNAME's password and ACL entries (the registry keeps the tracker and its history)."""
    prov = Provisioner(password_file, acl_file, _open_db(db))
    try:
        removed = prov.revoke(username)
    except ProvisionError as e:
        raise click.ClickException(str(e)) from e
    if not removed:
        raise click.ClickException(f"{username!r} is not in {prov.password_file} or {prov.acl_file}")
    click.echo(f"revoked {username}")
    _written(prov)
    click.echo(RELOAD_HINT, err=True)


@devices.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON lines")
@_files
@_db_option
def list_(as_json: bool, password_file: Path, acl_file: Path, db: str | None) -> None:
    """List registered trackers and MQTT accounts, and whether each tracker has a password."""
    from devices.registry import TrackerRegistry

    prov = Provisioner(password_file, acl_file)
    accounts = prov.accounts()
    with_account = prov.tracker_ids_with_accounts()
    rows: list[dict[str, Any]] = []
    for t in TrackerRegistry(_open_db(db)).list():
        rows.append({**t, "account": t["tracker_id"] in with_account})
    known = {r["tracker_id"] for r in rows}
    services = [u for u, role in accounts.items() if role == "service"]
    orphans = sorted(with_account - known)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        for u in services:
            click.echo(json.dumps({"service_account": u}))
        return
    click.echo(f"{'TRACKER':<24}{'CRATE':<24}{'ACCOUNT':<9}{'STATUS':<9}LAST STATUS")
    for r in rows:
        at = "-"
        if r["status_at"]:
            at = datetime.fromtimestamp(r["status_at"], UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(f"{r['tracker_id']:<24}{r['crate_id'] or '-':<24}{'yes' if r['account'] else 'no':<9}"
                   f"{r['status'] or '-':<9}{at}")
    if services:
        click.echo(f"service accounts: {', '.join(services)}")
    if orphans:
        click.echo(f"accounts without a registry entry: {', '.join(orphans)}")
