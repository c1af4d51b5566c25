"""Cluster mode: readings stored per second with 1, 2 and 3 workers, on this machine, with the engine (a
private nats-server) and PostgreSQL on the same machine.

    python -m benchmarks.cluster [--messages 30000] [--trackers 600] [--workers 1,2,3] [--mode stream,mqtt,failover]

Every run starts on a fresh PostgreSQL database, a fresh nats-server and a fresh Mosquitto, with one trip
per tracker (so detection runs, on the wall clock), and starts its workers (`kawal serve`) before the
clock starts. Two modes:

  stream  workers with KAWAL_CLUSTER_BRIDGE=false; the benchmark publishes into the stream itself, as
          the bridges would: the part that scales by partition (decode, store, detect).
  mqtt    end to end: messages published at QoS 1 to Mosquitto while every worker bridges (each bridge
          takes every message; JetStream keeps one copy), until the last reading is stored.
  failover  three workers; kill -9 one, time until each of its partitions has a new owner; repeated.

Besides readings/s it reports where the CPU went per 1,000 readings: the workers, nats-server, the
workers' PostgreSQL backends, Mosquitto, the publisher. The last line is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nats
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.ingest_workload import trips_for, workload
from cluster.launch import LocalCluster
from cluster.natsd import PrivateNats
from cluster.subjects import (
    HEADER_MSG_ID,
    HEADER_RECEIVED,
    HEADER_TOPIC,
    message_id,
    partition_of,
    subject,
    tracker_of_topic,
)
from kawal.trips import TripRepository
from storage import open_database
from tests.backends import postgres_database
from tests.servers import Mosquitto

PARTITIONS = 32
CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


async def prefill(url: str, stream: str, msgs: list[tuple[str, bytes]]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    now = repr(time.time())
    futures = []
    for topic, payload in msgs:
        headers = {HEADER_TOPIC: topic, HEADER_RECEIVED: now, HEADER_MSG_ID: message_id(topic, payload) or ""}
        part = partition_of(tracker_of_topic(topic), PARTITIONS)
        futures.append(await js.publish_async(subject(stream, part), payload, headers=headers))
        if len(futures) >= 2000:
            await asyncio.gather(*futures)
            futures = []
    await asyncio.gather(*futures)
    await nc.close()


def publish_mqtt(url: str, msgs: list[tuple[str, bytes]], done: threading.Event) -> None:
    port = int(url.rsplit(":", 1)[1])
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for i in infos:
        i.wait_for_publish(120)
    c.loop_stop()
    c.disconnect()
    done.set()


def held_partitions(db_url: str) -> int:
    db = open_database(db_url)
    try:
        row = (
            db.conn()
            .execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = ?"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (0x4B57,),
            )
            .fetchone()
        )
        return int(row[0])
    finally:
        db.close()


def run(mode: str, workers: int, messages: int, trackers: int, work: Path) -> dict[str, Any]:
    t0 = time.time() - math.ceil(messages / trackers) * 10.0 - 60
    msgs = workload(messages, trackers, t0, heading=False)
    with postgres_database() as url:
        db = open_database(url)
        repo = TripRepository(db)
        for trip in trips_for(trackers, t0, days=1):
            repo.put(trip.trip_id, trip)
        broker = Mosquitto(work / f"{mode}{workers}-mosquitto").start()
        natsd = PrivateNats(work / f"{mode}{workers}-nats").start()
        stream = "BENCH"
        env = {
            "KAWAL_CLOCK": "wall",
            "KAWAL_HEALTH_MAX_LAG_S": "3600",  # a prefilled stream is a backlog from the start
            "KAWAL_CLUSTER_PARTITIONS": str(PARTITIONS),
            "KAWAL_CLUSTER_STREAM": stream,
            "KAWAL_CLUSTER_BRIDGE": "false" if mode == "stream" else "true",
        }
        cluster = LocalCluster(
            work / f"{mode}{workers}", url, workers=workers, mqtt_url=broker.url, cluster_url=natsd.url, env=env
        )
        try:
            start = time.perf_counter()
            cluster.start()
            # The clock starts once every partition has its owner.
            while held_partitions(url) < PARTITIONS:
                time.sleep(0.05)
            ready_s = time.perf_counter() - start
            pids = {
                "workers": [w.pid for w in cluster.members if w.pid],
                "nats-server": [natsd.pid] if natsd.pid else [],
                "mosquitto": [broker.proc.pid] if broker.proc else [],
            }
            backends = [
                int(r[0])
                for r in db.conn().execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid != pg_backend_pid()"
                )
            ]
            cpu0 = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
            pg0 = {p: cpu_s(p) for p in backends}
            wall0, pub_cpu0 = time.perf_counter(), time.process_time()
            published = threading.Event()
            if mode == "mqtt":
                threading.Thread(target=publish_mqtt, args=(broker.url, msgs, published), daemon=True).start()
            else:
                threading.Thread(target=lambda: asyncio.run(prefill(natsd.url, stream, msgs)), daemon=True).start()
            stored = 0
            while stored < messages:
                time.sleep(0.2)
                stored = int(db.conn().execute("SELECT count(*) FROM readings").fetchone()[0])
                if time.perf_counter() - wall0 > 900:
                    raise TimeoutError(f"{stored} of {messages} stored after 900 s")
            wall = time.perf_counter() - wall0
            backends = [
                int(r[0])
                for r in db.conn().execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid != pg_backend_pid()"
                )
            ]
            cpu = {k: sum(cpu_s(p) for p in v) - cpu0[k] for k, v in pids.items()}
            cpu["postgres"] = sum(cpu_s(p) - pg0.get(p, 0.0) for p in backends)
            if mode == "mqtt":
                cpu["publisher"] = time.process_time() - pub_cpu0
        finally:
            cluster.stop()
            natsd.stop()
            broker.stop()
            db.close()
    per_k = {k: round(v / messages * 1000, 3) for k, v in cpu.items()}
    return {
        "mode": mode,
        "workers": workers,
        "messages": messages,
        "trackers": trackers,
        "readings_per_s": round(messages / wall),
        "wall_s": round(wall, 2),
        "startup_s": round(ready_s, 1),
        "cpu_s_per_1000_readings": per_k,
        "loadavg": os.getloadavg(),
    }


def failover(workers: int, rounds: int, work: Path) -> dict[str, Any]:
    """kill -9 of one worker while the others run: seconds until every partition has a live owner again
    (its lock released by PostgreSQL when the session dies, taken on the survivors' next check)."""
    times = []
    with postgres_database() as url:
        broker = Mosquitto(work / "failover-mosquitto").start()
        natsd = PrivateNats(work / "failover-nats").start()
        env = {"KAWAL_CLUSTER_PARTITIONS": str(PARTITIONS), "KAWAL_CLUSTER_BRIDGE": "false"}
        cluster = LocalCluster(
            work / "failover", url, workers=workers, mqtt_url=broker.url, cluster_url=natsd.url, env=env
        )
        db = open_database(url)
        try:
            cluster.start()
            for i in range(rounds):
                while held_partitions(url) < PARTITIONS:
                    time.sleep(0.05)
                time.sleep(1.0)
                victim = cluster.members[i % len(cluster.members)]
                t0 = time.perf_counter()
                cluster.kill(victim)
                while held_partitions(url) < PARTITIONS:
                    time.sleep(0.005)
                times.append(round(time.perf_counter() - t0, 3))
                cluster.members.remove(victim)
                cluster.start_worker(f"{victim.worker_id}r{i}")
        finally:
            cluster.stop()
            natsd.stop()
            broker.stop()
            db.close()
    return {"mode": "failover", "workers": workers, "partitions_moved_s": times, "loadavg": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=30000)
    p.add_argument("--trackers", type=int, default=600)
    p.add_argument("--workers", default="1,2,3")
    p.add_argument("--mode", default="stream,mqtt,failover")
    p.add_argument("--failover-rounds", type=int, default=5)
    a = p.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kawal-bench-cluster-") as tmp:
        for mode in a.mode.split(","):
            if mode == "failover":
                r = failover(3, a.failover_rounds, Path(tmp))
                results.append(r)
                print(f"failover: partitions of a killed worker moved in {r['partitions_moved_s']} s", flush=True)
                continue
            base = None
            for n in [int(x) for x in a.workers.split(",")]:
                r = run(mode, n, a.messages, a.trackers, Path(tmp))
                base = base or r["readings_per_s"]
                r["scaling"] = round(r["readings_per_s"] / base, 2)
                results.append(r)
                print(
                    f"{mode:6} {n} worker(s): {r['readings_per_s']:>6,} readings/s  (x{r['scaling']})  "
                    f"CPU s per 1000 readings {r['cpu_s_per_1000_readings']}",
                    flush=True,
                )
    print(json.dumps({"results": results, "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
