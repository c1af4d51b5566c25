"""`kawal simulate` and `kawal evaluate` (registered lazily by kawal/cli.py)."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from simulators.evaluate import DEFAULT_MAX_RATE
from simulators.scenario import INCIDENT_TYPES, WIB, SimConfig


def _interval(value: str) -> tuple[int, int]:
    try:
        if "-" in value:
            lo, hi = (int(v) for v in value.split("-", 1))
        else:
            lo = hi = int(value)
    except ValueError as e:
        raise click.BadParameter(f"expected seconds or a range like 10-60, got {value!r}") from e
    if not 1 <= lo <= hi <= 600:
        raise click.BadParameter("interval must be within 1..600 s, low before high")
    return lo, hi


def _weights(value: str | None) -> dict[str, float] | None:
    if not value:
        return None
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, w = part.strip().partition("=")
        if name not in INCIDENT_TYPES:
            raise click.BadParameter(f"unknown incident type {name!r}; known: {', '.join(INCIDENT_TYPES)}")
        try:
            out[name] = float(w) if w else 1.0
        except ValueError as e:
            raise click.BadParameter(f"bad weight in {part!r}") from e
    return out


def _auto_start(start: str, speedup: float, legs: int) -> str | float:
    """Real time starts now; an accelerated run starts days back, so no reading is ever in the future."""
    if start != "auto":
        return start
    now = time.time()
    if speedup == 1.0:
        return float(math.ceil(now / 60) * 60)
    today5 = datetime.fromtimestamp(now, tz=WIB).replace(hour=5, minute=0, second=0, microsecond=0)
    return (today5 - timedelta(days=legs + 1)).timestamp()


def _quiet_http() -> None:
    # One INFO line per registered trip drowns the output of a large fleet.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _config(
    legs: int,
    interval: str,
    storage_interval: int,
    owntracks: float,
    duplicates: float,
    shuffle: float,
    dead_zones: float,
    incident_types: str | None,
    prefix: str,
    attacks: int = 0,
    returns: bool = False,
) -> SimConfig:
    """The SimConfig of the fleet options both commands share (`COMMON`), validated."""
    try:
        cfg = SimConfig(
            legs=legs,
            interval_s=_interval(interval),
            storage_interval_s=storage_interval,
            owntracks_share=owntracks,
            duplicate_rate=duplicates,
            shuffle_rate=shuffle,
            dead_zones_per_trip=dead_zones,
            incident_weights=_weights(incident_types),
            prefix=prefix,
            attacks=attacks,
            returns=returns,
        )
        cfg.validate()
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    return cfg


COMMON = [
    click.option("--incident-types", help="which types, e.g. seal_break,route_deviation=2 (default: all nine equally)"),
    click.option(
        "--legs",
        default=2,
        show_default=True,
        type=click.IntRange(1, 3),
        help="1: warehouse->PPK; 2: + PPK->PPS next morning; 3: + PPS->TPS on voting day",
    ),
    click.option(
        "--interval",
        default="30",
        show_default=True,
        help="report interval in seconds, or a range like 10-60 (drawn per tracker)",
    ),
    click.option(
        "--storage-interval",
        default=300,
        show_default=True,
        type=click.IntRange(10, 3600),
        help="report interval of a crate resting in storage",
    ),
    click.option(
        "--owntracks",
        default=0.2,
        show_default=True,
        type=click.FloatRange(0.0, 1.0),
        help="share of trackers speaking OwnTracks instead of the native format",
    ),
    click.option(
        "--duplicates",
        default=0.05,
        show_default=True,
        type=click.FloatRange(0.0, 1.0),
        help="share of readings sent twice",
    ),
    click.option(
        "--shuffle",
        default=0.5,
        show_default=True,
        type=click.FloatRange(0.0, 1.0),
        help="share of backlog batches sent in shuffled order",
    ),
    click.option(
        "--dead-zones",
        default=0.6,
        show_default=True,
        type=click.FloatRange(0.0, 20.0),
        help="mean coverage gaps per trip (store-and-forward)",
    ),
    click.option(
        "--returns/--no-returns",
        default=False,
        show_default=True,
        help="with --legs 3: the way back after counting, resealed, TPS -> PPS -> PPK (chain of custody)",
    ),
    click.option("--prefix", help="start of every tracker, crate and trip id"),
    click.option(
        "--attacks",
        default=0,
        show_default=True,
        type=click.IntRange(0, 1000),
        help="clean trips per attack kind (jamming, replay, route_spoof, gps_simulator) plus as many reboots",
    ),
    click.option(
        "--connections",
        default=1,
        show_default=True,
        type=click.IntRange(1, 64),
        help="MQTT connections shared by the fleet",
    ),
    click.option("--progress/--no-progress", default=True, show_default=True, help="progress bar"),
]


def common(trackers: int, incidents: float) -> Any:
    """The fleet options shared by both commands, with per-command defaults for size and incident rate."""
    head = [
        click.option(
            "--trackers",
            "-n",
            default=trackers,
            show_default=True,
            type=click.IntRange(1, 1_000_000),
            help="crates in the fleet, one tracker each",
        ),
        click.option("--seed", default=1, show_default=True, type=int, help="same seed, same fleet"),
        click.option(
            "--incidents",
            default=incidents,
            show_default=True,
            type=click.FloatRange(0.0, 1.0),
            help="share of crates that suffer one incident",
        ),
    ]

    def deco(f: Any) -> Any:
        for opt in reversed(head + COMMON):
            f = opt(f)
        return f

    return deco


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
    incident_types: str | None,
    legs: int,
    interval: str,
    storage_interval: int,
    owntracks: float,
    duplicates: float,
    shuffle: float,
    dead_zones: float,
    prefix: str | None,
    attacks: int,
    returns: bool,
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
) -> None:
    """Simulate a fleet of crate trackers in Jombang and publish it over MQTT."""
    _quiet_http()
    from kawal.timeutil import parse_time
    from simulators.custody import HandoverPoster
    from simulators.publish import Publisher, PublishError
    from simulators.register import RegistrationError, register_trips
    from simulators.scenario import build_scenario, wib_iso

    if fast:
        speedup = 0.0
    if api_url and not token:
        raise click.UsageError("--api-url needs --token (an admin token)")
    cfg = _config(
        legs,
        interval,
        storage_interval,
        owntracks,
        duplicates,
        shuffle,
        dead_zones,
        incident_types,
        prefix or "SIM",
        attacks,
        returns,
    )
    try:
        scenario = build_scenario(
            seed=seed,
            trackers=trackers,
            incidents_rate=incidents,
            start=_auto_start(start, speedup, legs + (2 if returns else 0)),
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


@click.command()
@common(trackers=60, incidents=0.5)
@click.option(
    "--speedup",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="0: as fast as the broker acknowledges; X: X times real time",
)
@click.option(
    "--max-rate",
    type=click.FloatRange(min=0.0),
    default=DEFAULT_MAX_RATE,
    show_default=True,
    help="cap on messages per second, so Kawal follows the feed as it would live (0: none)",
)
@click.option("--start", default=None, help="simulation start (default 2024-11-25 05:00 WIB)")
@click.option("--api-url", help="evaluate this Kawal (it must run with KAWAL_CLOCK=event); default: start one")
@click.option("--mqtt-url", help="the broker that Kawal listens to (with --api-url)")
@click.option("--token", envvar="KAWAL_ADMIN_TOKEN", help="admin token (with --api-url)")
@click.option(
    "--broker",
    type=click.Choice(["auto", "mosquitto", "embedded"]),
    default="auto",
    show_default=True,
    help="for a private Kawal: a private mosquitto when installed (auto), or Kawal's embedded default",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("evaluation"),
    show_default=True,
    help="folder for report.md, the PNG plots, evaluation.json, alerts.json and truth.jsonl",
)
@click.option("--timeout", default=600.0, show_default=True, help="seconds to wait for Kawal to store every reading")
@click.option(
    "--check",
    is_flag=True,
    help="exit 1 unless every seal break is found, clean trips raise nothing and other recall >= 0.9",
)
def evaluate(
    trackers: int,
    seed: int,
    incidents: float,
    incident_types: str | None,
    legs: int,
    interval: str,
    storage_interval: int,
    owntracks: float,
    duplicates: float,
    shuffle: float,
    dead_zones: float,
    prefix: str | None,
    attacks: int,
    returns: bool,
    connections: int,
    progress: bool,
    speedup: float,
    max_rate: float,
    start: str | None,
    api_url: str | None,
    mqtt_url: str | None,
    token: str | None,
    broker: str,
    out: Path,
    timeout: float,
    check: bool,
) -> None:
    """Score Kawal's detectors against a simulated fleet with labelled incidents."""
    _quiet_http()
    from simulators.evaluate import quality_failures, run_evaluation, to_markdown

    if (api_url is None) != (mqtt_url is None):
        raise click.UsageError("--api-url and --mqtt-url go together")
    if api_url and not token:
        raise click.UsageError("--api-url needs --token (an admin token)")
    cfg = _config(
        legs,
        interval,
        storage_interval,
        owntracks,
        duplicates,
        shuffle,
        dead_zones,
        incident_types,
        prefix or f"EV{seed}",
        attacks,
        returns,
    )
    ev, _ = run_evaluation(
        trackers=trackers,
        seed=seed,
        incidents_rate=incidents,
        config=cfg,
        start=start,
        speedup=speedup,
        max_rate=max_rate or None,
        api_url=api_url,
        mqtt_url=mqtt_url,
        token=token,
        broker=broker,
        out_dir=out,
        progress=progress,
        connections=connections,
        ingest_timeout=timeout,
        log=lambda s: click.echo(s, err=True),
    )
    click.echo(to_markdown(ev))
    click.echo(f"report: {out / 'report.md'}", err=True)
    if check:
        failures = quality_failures(ev)
        for f in failures:
            click.echo(f"FAIL: {f}", err=True)
        sys.exit(1 if failures else 0)
