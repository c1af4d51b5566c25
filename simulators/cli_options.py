"""The fleet options that `kawal simulate` and `kawal evaluate` share, and the SimConfig they make."""

from __future__ import annotations

import logging
from typing import Any

import click

from simulators.scenario import INCIDENT_TYPES, SimConfig


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


def quiet_http() -> None:
    # One INFO line per registered trip drowns the output of a large fleet.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def fleet_config(
    legs: int,
    interval: str,
    storage_interval: int,
    owntracks: float,
    duplicates: float,
    shuffle: float,
    dead_zones: float,
    incident_types: str | None,
    prefix: str | None,
    attacks: int,
    returns: bool,
    default_prefix: str,
) -> SimConfig:
    """The SimConfig of the fleet options both commands share (`COMMON`; a command takes them as
    `**fleet`), validated. Ids start with `prefix`, else `default_prefix`."""
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
            prefix=prefix or default_prefix,
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
