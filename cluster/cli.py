"""`kawal cluster --workers N --db URL` (CONTRACT 3.1)."""

from __future__ import annotations

import json
import signal
import tempfile
import threading
from pathlib import Path

import click


@click.command()
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="worker processes")
@click.option("--db", required=True, help="the shared PostgreSQL database, postgresql://...")
@click.option(
    "--mqtt-url",
    envvar="KAWAL_MQTT_URL",
    help="the trackers' broker, KAWAL_MQTT_URL (default: a private mosquitto on a free port)",
)
@click.option(
    "--cluster-url",
    envvar="KAWAL_CLUSTER_URL",
    help="the engine, nats://host:port, KAWAL_CLUSTER_URL (default: a private nats-server on a free port)",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="logs and private servers' state (default: a temporary folder, deleted at exit)",
)
def cluster(workers: int, db: str, mqtt_url: str | None, cluster_url: str | None, workdir: Path | None) -> None:
    """Start a whole cluster on this machine and print its endpoints as one line of JSON.

    Workers get the other KAWAL_* settings of this environment. A worker that dies is not restarted, so
    failover can be watched. Runs until SIGINT or SIGTERM.
    """
    from cluster.launch import ClusterError, LocalCluster

    if not db.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("cluster mode needs a postgresql:// URL", param_hint="--db")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="kawal-cluster-")
        workdir = Path(tmp.name)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    local = LocalCluster(workdir, db, workers=workers, mqtt_url=mqtt_url, cluster_url=cluster_url)
    try:
        try:
            local.start()
        except ClusterError as e:
            raise click.ClickException(str(e)) from e
        click.echo(json.dumps(local.endpoints()), nl=True)
        while not stop.wait(0.5):
            pass
    finally:
        local.stop()
        if tmp is not None:
            tmp.cleanup()
