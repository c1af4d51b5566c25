"""`kawal simulate`, and `kawal evaluate` from simulators/cli_evaluate.py (registered lazily by kawal/cli.py)."""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from simulators.cli_evaluate import evaluate
from simulators.cli_options import common, fleet_config, quiet_http
from simulators.scenario import WIB

__all__ = ["evaluate", "simulate"]  # `kawal evaluate` is in simulators/cli_evaluate.py


def _auto_start(start: str, speedup: float, legs: int) -> str | float:
    """Real time starts now; an accelerated run starts days back, so no reading is ever in the future."""
    if start != "auto":
        return start
    now = time.time()
    if speedup == 1.0:
        return float(math.ceil(now / 60) * 60)
    today5 = datetime.fromtimestamp(now, tz=WIB).replace(hour=5, minute=0, second=0, microsecond=0)
    return (today5 - timedelta(days=legs + 1)).timestamp()


@click.command()
@common(trackers=100, incidents=0.1)
@click.option(
    "--speedup",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="1: real time; X: X times faster; 0: as fast as the broker acknowledges",
)
@click.option("--fast", is_flag=True, help="same as --speedup 0")
@click.option(
    "--max-rate",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="cap on messages per second (0: none)",
)
@click.option(
    "--start",
    default="auto",
    show_default=True,
    help="simulation start (RFC 3339 or Unix seconds); auto: now in real time, else days back",
)
@click.option(
    "--mqtt-url",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    envvar="KAWAL_MQTT_URL",
    help="broker to publish to (mqtt://[user:pass@]host:port, mqtts:// for TLS)",
)
@click.option("--api-url", envvar="KAWAL_API_URL", help="Kawal to register the trips with; omit to skip")
@click.option("--token", envvar="KAWAL_ADMIN_TOKEN", help="admin token for --api-url")
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("truth.jsonl"),
    show_default=True,
    help="where to write the ground truth (JSONL)",
)
@click.option("--trips-out", type=click.Path(dir_okay=False, path_type=Path), help="also write the trip bodies (JSON)")
@click.option(
    "--per-tracker-connections",
    is_flag=True,
    help="one MQTT connection per tracker, each with an `offline` Last Will (small fleets)",
)
@click.option("--protocol", type=click.Choice(["3.1.1", "5"]), default="3.1.1", show_default=True)
@click.option("--fast-forward-until", help="simulated time (RFC 3339) up to which to publish as fast as possible")
@click.option("--dry-run", is_flag=True, help="plan, write the truth and trips, publish nothing")
def simulate(
    trackers: int,
    seed: int,
    incidents: float,
    connections: int,
    progress: bool,
    speedup: float,
    fast: bool,
    max_rate: float,
    start: str,
    mqtt_url: str,
    api_url: str | None,
    token: str | None,
    truth: Path,
    trips_out: Path | None,
    per_tracker_connections: bool,
    protocol: str,
    fast_forward_until: str | None,
    dry_run: bool,
    **fleet: Any,
) -> None:
    """Simulate a fleet of crate trackers in Jombang and publish it over MQTT."""
    quiet_http()
    from kawal.timeutil import parse_time
    from simulators.custody import HandoverPoster
    from simulators.publish import Publisher, PublishError
    from simulators.register import RegistrationError, register_trips
    from simulators.scenario import build_scenario, wib_iso

    if fast:
        speedup = 0.0
    if api_url and not token:
        raise click.UsageError("--api-url needs --token (an admin token)")
    cfg = fleet_config(default_prefix="SIM", **fleet)
    try:
        scenario = build_scenario(
            seed=seed,
            trackers=trackers,
            incidents_rate=incidents,
            start=_auto_start(start, speedup, cfg.legs + (2 if cfg.returns else 0)),
            config=cfg,
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    s = scenario.summary()
    click.echo(
        f"{s['trackers']} trackers ({s['owntracks']} OwnTracks), {s['trips']} trips, "
        f"{sum(s['incidents'].values())} incidents {json.dumps(s['incidents'])}; "
        f"simulated {wib_iso(scenario.start)} .. {wib_iso(scenario.end)}",
        err=True,
    )
    if s["skipped"]:
        click.echo(f"incident types without an eligible trip: {s['skipped']}", err=True)
    scenario.write_truth(truth)
    click.echo(f"ground truth: {truth}", err=True)
    if trips_out:
        trips_out.write_text(json.dumps(dict(scenario.trip_bodies()), indent=1, ensure_ascii=False))
    if api_url and token:
        try:
            n = register_trips(api_url, token, scenario.trip_bodies())
        except RegistrationError as e:
            raise click.ClickException(str(e)) from e
        click.echo(f"registered {n} trips at {api_url}", err=True)
        _warn_on_clock_skew(api_url, token, scenario.start, speedup)
    if dry_run:
        return
    stop = threading.Event()
    pub = Publisher(
        mqtt_url,
        max_rate=max_rate or None,
        speedup=speedup,
        connections=connections,
        per_tracker=per_tracker_connections,
        protocol=protocol,
        progress=progress,
    )
    ff = parse_time(fast_forward_until) if fast_forward_until else None
    # With the API, simulated officers sign for the crates as they arrive (simulators/custody.py).
    officers = HandoverPoster(api_url, token, scenario.handovers) if api_url and token else None
    try:
        stats = pub.publish_scenario(
            scenario, stop=stop, fast_forward_until=ff, on_publish=officers.on_publish if officers else None
        )
    except KeyboardInterrupt:
        stop.set()
        click.echo("stopped; the trackers' statuses are now offline", err=True)
        return
    except PublishError as e:
        raise click.ClickException(str(e)) from e
    if officers is not None:
        officers.finish()
        click.echo(f"{officers.posted} handovers posted, {len(officers.failed)} refused", err=True)
    click.echo(json.dumps(stats.as_dict()))


def _warn_on_clock_skew(api_url: str, token: str, sim_start: float, speedup: float) -> None:
    from simulators.clockcheck import clock_warning, service_clock

    config = service_clock(api_url, token)
    warning = clock_warning(config, sim_start, speedup) if config is not None else None
    if warning:
        click.echo(f"warning: {warning}", err=True)
