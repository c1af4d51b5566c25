"""`kawal demo`: Kawal working within a minute, with nothing installed or configured.

It starts the service on its embedded default (an embedded MQTT broker and a SQLite file in a temporary or
chosen folder), registers a simulated Jombang distribution (regency warehouse -> the 21 PPKs, then
PPK -> village PPS the next morning), and publishes that fleet with a handful of incidents at a speed-up.
The quiet hours before the first departure are fast-forwarded, so the first alerts appear within seconds.
It prints the dashboard URL and an admin token and runs until Ctrl-C (or `--duration`), then stops the
publisher, the service and its broker, and removes a temporary folder.

The service runs with KAWAL_CLOCK=event: the simulated day is in the past and runs faster than real time,
so time-driven checks (signal lost, overdue, stops) follow the readings' own clock.

Every KAWAL_* variable is honoured as `kawal serve` honours it (KAWAL_HTTP_PORT, KAWAL_EMBEDDED_MQTT_PORT,
KAWAL_DB, KAWAL_MQTT_URL, KAWAL_CLOCK...); a flag given on the command line wins over its variable, and what
is set by neither gets the demo's defaults (a free port near the usual one, a SQLite file in the data folder).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 8080
DEFAULT_MQTT_PORT = 1883
STATUS_EVERY_S = 30.0


def pick_port(host: str, wanted: int | None, default: int) -> int:
    """`wanted` if given (it must be free); else `default` when free; else any free port."""
    from kawal.broker import port_is_free
    from kawal.procs import free_port

    if wanted:
        if not port_is_free(host, wanted):
            raise click.ClickException(f"port {wanted} on {host} is in use; choose another or leave it out")
        return wanted
    if port_is_free(host, default):
        return default
    return free_port(host)


@dataclass
class Progress:
    """What the publisher thread reports to the main thread."""

    sim_now: float = 0.0
    done: bool = False
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def _quiet_console(verbose: bool, logfile: Path) -> logging.Handler:
    """Full INFO log to the data folder; the terminal gets warnings only unless --verbose."""
    root = logging.getLogger()
    handler = logging.FileHandler(logfile)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    if not verbose:
        for h in root.handlers:
            h.setLevel(logging.WARNING)
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def _count_alerts(service: Any) -> dict[str, int]:
    rows = service.db.conn().execute("SELECT type, count(*) FROM alerts GROUP BY type")
    return {str(r[0]): int(r[1]) for r in rows}


def demo_settings(folder: Path, token: str, host: str | None, http_port: int | None, broker: str | None) -> Any:
    """The service's settings: the flags, else the KAWAL_* variables (as `kawal serve` reads them), else the
    demo's defaults. A port named by a flag or a variable must be free; a default port falls back to a free one."""
    from kawal.broker import resolve_kind
    from kawal.settings import Settings

    env = Settings.model_validate({})
    given = env.model_fields_set
    values: dict[str, Any] = {"admin_token": token}
    values["http_host"] = host or env.http_host
    if http_port is not None or "http_port" in given:
        values["http_port"] = pick_port(values["http_host"], http_port or env.http_port, DEFAULT_HTTP_PORT)
    else:
        values["http_port"] = pick_port(values["http_host"], None, DEFAULT_HTTP_PORT)
    if "db" not in given:
        values["db"] = str(folder / "kawal.db")
    if "clock" not in given:
        values["clock"] = "event"  # the simulated day is in the past and runs faster than real time
    if env.mqtt_url is None:  # an embedded broker, as `kawal serve` starts one
        kind = resolve_kind(broker or env.embedded_broker)
        values["embedded_broker"] = kind
        if "embedded_mqtt_port" not in given:
            values["embedded_mqtt_port"] = pick_port(env.embedded_mqtt_host, None, DEFAULT_MQTT_PORT)
        elif env.embedded_mqtt_port:
            values["embedded_mqtt_port"] = pick_port(env.embedded_mqtt_host, env.embedded_mqtt_port, DEFAULT_MQTT_PORT)
        if kind == "amqtt" and "mqtt_protocol" not in given:
            # amqtt speaks only 3.1.1: saying so up front saves the consumer its MQTT 5 attempt.
            values["mqtt_protocol"] = "3.1.1"
    return Settings.model_validate(values)  # the values given here, the KAWAL_* variables for the rest


@click.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path),
              help="keep the database and broker state here (default: a temporary folder, deleted at exit)")
@click.option("--trackers", type=click.IntRange(5, 5000), default=120, show_default=True,
              help="crates in the fleet, one tracker each")
@click.option("--incidents", "incidents_rate", type=click.FloatRange(0.0, 1.0), default=0.1,
              show_default=True, help="share of crates that suffer an incident")
@click.option("--speedup", type=click.FloatRange(1.0, 100000.0), default=60.0, show_default=True,
              help="simulated seconds per real second, after the fast-forwarded early morning")
@click.option("--seed", type=int, default=7, show_default=True,
              help="the simulated day (same seed, same day)")
@click.option("--legs", type=click.IntRange(1, 3), default=2, show_default=True,
              help="1: warehouse->PPK; 2: + PPK->PPS; 3: + PPS->TPS")
@click.option("--host", help="address of the dashboard and API (KAWAL_HTTP_HOST; default 127.0.0.1)")
@click.option("--http-port", type=int,
              help=f"dashboard port (KAWAL_HTTP_PORT; default {DEFAULT_HTTP_PORT}, or a free one)")
@click.option("--broker", type=click.Choice(["auto", "mosquitto", "amqtt"]),
              help="embedded broker (KAWAL_EMBEDDED_BROKER; default auto: mosquitto when installed)")
@click.option("--duration", type=click.FloatRange(1.0), help="stop by itself after this many seconds")
@click.option("--verbose", is_flag=True, help="show the service's log in the terminal too")
def demo(workdir: Path | None, trackers: int, incidents_rate: float, speedup: float, seed: int, legs: int,
         host: str | None, http_port: int | None, broker: str | None, duration: float | None, verbose: bool) -> None:
    """Run Kawal on a simulated Jombang distribution day, with its dashboard, until Ctrl-C."""
    temporary = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="kawal-demo-")) if workdir is None else workdir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # A second Ctrl-C interrupts the orderly shutdown's waits (the finally blocks still run).
        signal.signal(signum, previous.get(signum, signal.SIG_DFL))

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, on_signal)
    handler = _quiet_console(verbose, folder / "kawal.log")
    try:
        _run(folder, temporary, stop, trackers=trackers, incidents_rate=incidents_rate, speedup=speedup,
             seed=seed, legs=legs, host=host, http_port=http_port, broker=broker, duration=duration)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        for signum, old in previous.items():
            signal.signal(signum, old)
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


def _run(folder: Path, temporary: bool, stop: threading.Event, *, trackers: int, incidents_rate: float,
         speedup: float, seed: int, legs: int, host: str | None, http_port: int | None, broker: str | None,
         duration: float | None) -> None:
    from kawal.broker import BrokerError
    from kawal.demo_plan import build_demo_scenario, scheduled_handovers
    from kawal.service import PortInUse, Service
    from kawal.settings import Settings
    from simulators.register import register_trips

    started = time.monotonic()
    given = Settings.model_validate({}).admin_token
    token = given.get_secret_value() if given is not None else secrets.token_urlsafe(24)
    settings = demo_settings(folder, token, host, http_port, broker)
    if settings.clock == "wall":
        click.echo("warning: KAWAL_CLOCK=wall: the simulated day is in the past, so time-driven alerts "
                   "(signal_lost, overdue) will not follow it; unset KAWAL_CLOCK for the demo.", err=True)

    click.echo("Planning a simulated distribution in Jombang regency...")
    scenario = build_demo_scenario(seed, trackers, incidents_rate, _recent_morning(), legs)
    summary = scenario.summary()
    first_departure = min(t.depart_after for t in scenario.trips)

    service = Service(settings)
    publisher_thread: threading.Thread | None = None
    progress = Progress(sim_now=scenario.start)
    try:
        try:
            service.start()
            service.wait_ready(timeout=90)
        except (BrokerError, PortInUse) as e:
            raise click.ClickException(str(e)) from e
        if stop.is_set():
            return
        stored = register_trips(service.http_url, token, scenario.trip_bodies())
        assert service.mqtt_url is not None
        publisher_thread = threading.Thread(
            target=_publish, name="kawal-demo-publisher", daemon=True,
            args=(service.mqtt_url, scenario, speedup, first_departure - 60.0, stop, progress,
                  (service.http_url, token, scheduled_handovers(scenario))))
        publisher_thread.start()

        incidents = sum(summary["incidents"].values())
        dashboard = f"{service.http_url}/"
        if service.broker is not None:
            broker_text = f"embedded {service.broker.kind}, MQTT {service.broker.protocol}"
        else:
            broker_text = "KAWAL_MQTT_URL"
        click.echo("")
        onward = {1: "", 2: " and on to the villages (PPS)", 3: ", the villages (PPS) and the TPS"}[legs]
        click.echo(f"Kawal demo: {summary['trackers']} crates on {stored} trips from the regency warehouse "
                   f"to the 21 PPKs{onward}, with {incidents} incidents, at {speedup:g}x.")
        click.echo("")
        click.echo(f"  Dashboard:    {dashboard}")
        click.echo(f"  Admin token:  {token}")
        click.echo(f"  API:          {service.http_url}/api/v1/alerts  (Authorization: Bearer <token>)")
        click.echo(f"  MQTT broker:  {service.mqtt_url}  ({broker_text})")
        where = "deleted at exit" if temporary else "kept"
        click.echo(f"  Data folder:  {folder}  ({where}; log in kawal.log)")
        click.echo("")
        click.echo("Open the dashboard and sign in with the token. Within two minutes: a broken seal, a lorry "
                   "off its planned route and a crate that goes silent, while the others arrive on time.")
        click.echo("Press Ctrl-C to stop.")
        click.echo(f"(ready in {time.monotonic() - started:.1f}s)")

        _watch(folder, stop, progress, service, duration, started)
    finally:
        stop.set()
        if publisher_thread is not None:
            publisher_thread.join(60)
        click.echo("Stopping Kawal and its broker...")
        service.stop()
        click.echo("Stopped; nothing is left running.")


def _publish(mqtt_url: str, scenario: Any, speedup: float, fast_forward_until: float, stop: threading.Event,
             progress: Progress, api: tuple[str, str, list[Any]]) -> None:
    from simulators.custody import HandoverPoster
    from simulators.publish import Publisher

    api_url, token, handovers = api
    officers = HandoverPoster(api_url, token, handovers) if handovers else None

    def on_publish(msg: Any, wall: float) -> None:
        progress.sim_now = msg.at
        if officers is not None:
            officers.on_publish(msg, wall)

    try:
        pub = Publisher(mqtt_url, speedup=speedup, protocol="3.1.1", progress=False,
                        client_prefix="kawal-demo")
        stats = pub.run(scenario.messages(), scenario.start, scenario.end, stop=stop,
                        fast_forward_until=fast_forward_until, on_publish=on_publish)
        progress.stats = stats.as_dict()
        if officers is not None and not stop.is_set():
            officers.finish(timeout=30)
    except Exception as e:  # the demo keeps serving what arrived; the reason is shown
        log.exception("the simulated fleet stopped publishing")
        progress.error = str(e)
    finally:
        progress.done = True


def _watch(folder: Path, stop: threading.Event, progress: Progress, service: Any, duration: float | None,
           started: float) -> None:
    """Print a status line now and then until Ctrl-C, --duration, or a failed service."""
    from simulators.scenario import WIB

    last_status = time.monotonic()
    reported_done = False
    while not stop.wait(0.5):
        now = time.monotonic()
        if duration is not None and now - started >= duration:
            click.echo(f"--duration {duration:g}s reached.")
            return
        if service.failed():
            raise click.ClickException(f"the service stopped unexpectedly; see {folder / 'kawal.log'}")
        if progress.done and not reported_done:
            reported_done = True
            if progress.error:
                click.echo(f"The simulated fleet stopped: {progress.error}. The dashboard stays up.")
            else:
                click.echo("The simulated day is over. The dashboard stays up until Ctrl-C.")
        if now - last_status >= STATUS_EVERY_S:
            last_status = now
            with contextlib.suppress(Exception):
                counts = _count_alerts(service)
                when = datetime.fromtimestamp(progress.sim_now, tz=WIB).strftime("%d %b %H:%M WIB")
                shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none yet"
                click.echo(f"[{when}] alerts: {shown}")


def _recent_morning() -> datetime:
    """05:00 WIB of yesterday: a recent distribution day that has wholly happened by the end of the replay."""
    from simulators.scenario import WIB

    day = datetime.now(WIB).date() - timedelta(days=1)
    return datetime(day.year, day.month, day.day, 5, 0, tzinfo=WIB)
