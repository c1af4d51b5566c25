"""The `kawal` command. Subcommands live next to the code they drive and are loaded on first use."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from typing import Any

import click

from kawal import __version__

# name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "demo": "kawal.demo:demo",
    "simulate": "simulators.cli:simulate",
    "evaluate": "simulators.cli:evaluate",
    "trips": "api.commands:trips",
    "token": "api.commands:token",
    "audit": "api.commands:audit",
    "custody": "api.custody_export:custody",
    "devices": "devices.cli:devices",
    "db": "kawal.dbcli:db",
    "agent": "devices.agent.cli:agent",
    "notify": "notify.cli:notify",
    "cluster": "cluster.cli:cluster",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand runs (or help lists it)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *SUBCOMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module_name, attr = SUBCOMMANDS[cmd_name].split(":")
            cmd = getattr(importlib.import_module(module_name), attr)
            assert isinstance(cmd, click.Command)
            return cmd
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kawal")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def cli(log_level: str) -> None:
    """Kawal watches sealed crates in transit and raises alarms the moment something goes wrong."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def settings_from_options(**options: Any) -> Any:
    """KAWAL_* environment variables, overridden by the flags that were given. A value that does not validate
    is named by its variable, one line each, instead of a traceback."""
    from pydantic import ValidationError

    from kawal.settings import Settings

    try:
        return Settings(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as e:
        lines = []
        for err in e.errors():
            name = "_".join(str(p) for p in err["loc"])
            field = Settings.model_fields.get(name)
            secret = field is not None and "SecretStr" in str(field.annotation)  # never echo a secret
            shown = "(hidden)" if secret else repr(err["input"])
            lines.append(f"KAWAL_{name.upper()}={shown}: {err['msg']}")
        raise click.UsageError("invalid settings:\n  " + "\n  ".join(lines)) from None


@cli.command()
@click.option("--mqtt-url", help="mqtt://[user:pass@]host:port (KAWAL_MQTT_URL); unset: embedded broker")
@click.option("--http-host", help="API listen address (KAWAL_HTTP_HOST)")
@click.option("--http-port", type=int, help="API port (KAWAL_HTTP_PORT)")
@click.option("--db", help="SQLite database file or postgresql:// URL (KAWAL_DB)")
@click.option("--influx-url", help="InfluxDB v2 write API URL (KAWAL_INFLUX_URL)")
@click.option("--clock", type=click.Choice(["wall", "event"]), help="time for time-driven checks (KAWAL_CLOCK)")
@click.option("--mqtt-client-id", help="client id of the persistent MQTT session (KAWAL_MQTT_CLIENT_ID)")
@click.option("--mqtt-share-group", help="shared-subscription group (KAWAL_MQTT_SHARE_GROUP); not to split load")
@click.option("--cluster-url", help="cluster mode: the NATS JetStream engine, nats://host:port (KAWAL_CLUSTER_URL)")
@click.option("--worker-id", help="cluster mode: this worker's name (KAWAL_WORKER_ID)")
def serve(**options: Any) -> None:
    """Run the service: ingest, detection, the API and the dashboard."""
    from kawal.broker import BrokerError
    from kawal.places import PlacesError
    from kawal.service import PortInUse, Service
    from storage.sqlite.check import DatabaseRefused

    service = Service(settings_from_options(**options))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        service.start()
    except (PortInUse, BrokerError, DatabaseRefused, PlacesError) as e:
        service.stop()
        raise click.ClickException(str(e)) from None
    try:
        service.wait_serving()
        click.echo(f"Kawal is serving on {service.http_url} (MQTT {service.mqtt_url})", err=True)
        # The broker may be down or still starting: the consumer logs why and retries; /healthz says why.
        while not stop.wait(0.5):
            if service.failed():
                raise click.ClickException("a service component stopped unexpectedly; see the log")
    finally:
        service.stop()


def main() -> None:
    cli(prog_name="kawal")
