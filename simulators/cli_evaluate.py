"""`kawal evaluate`: score Kawal's detectors against a simulated fleet (simulators/evaluate.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from simulators.cli_options import common, fleet_config, quiet_http
from simulators.evaluate import DEFAULT_MAX_RATE


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
    **fleet: Any,
) -> None:
    """Score Kawal's detectors against a simulated fleet with labelled incidents."""
    quiet_http()
    from simulators.evaluate import quality_failures, run_evaluation, to_markdown

    if (api_url is None) != (mqtt_url is None):
        raise click.UsageError("--api-url and --mqtt-url go together")
    if api_url and not token:
        raise click.UsageError("--api-url needs --token (an admin token)")
    cfg = fleet_config(default_prefix=f"EV{seed}", **fleet)
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
