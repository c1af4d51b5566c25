"""`kawal agent --config PATH`: run the reference tracker agent (docs/agent.md)."""

from __future__ import annotations

import signal
from pathlib import Path

import click


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the agent's config file (TOML or JSON), as `kawal devices add --agent-config` writes it",
)
def agent(config_path: Path) -> None:
    """Run the tracker agent: gpsd fixes and the GPIO seal, published to Kawal over MQTT."""
    from gpiozero.exc import GPIOZeroError
    from pydantic import ValidationError

    from devices.agent.agent import Agent
    from devices.agent.config import load_config

    try:
        cfg = load_config(config_path)
    except (ValidationError, ValueError, OSError) as e:
        raise click.ClickException(f"{config_path}: {e}") from e
    try:
        runner = Agent(cfg)
    except GPIOZeroError as e:
        raise click.ClickException(
            f"seal contacts on {cfg.seal_pin}/{cfg.tamper_pin}: {e}. Without a seal contact fitted, set "
            'seal_pin = "" (and tamper_pin = ""); GPIOZERO_PIN_FACTORY=mock tries the agent without a board.'
        ) from e
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop())
    runner.run()
