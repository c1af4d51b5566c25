"""Compare the two embedded brokers: QoS 1 throughput, and draining a persistent session after a restart.

    python benchmarks/embedded_broker.py [--messages 20000] [--publishers 4]

Publishers are `mosquitto_pub -l` processes (C, so they do not measure Python), each publishing its share of
tracker readings at QoS 1 over MQTT 3.1.1. The subscriber is paho-mqtt in this process, a persistent
QoS 1 session like Kawal's. Figures are printed as a Markdown table for docs/embedded-broker.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from kawal.broker import EmbeddedBroker
from kawal.settings import Settings


class Counter:
    def __init__(self, port: int, client_id: str = "kawal-bench") -> None:
        self.n = 0
        self.first: float | None = None
        self.last = 0.0
        self.lock = threading.Lock()
        self.ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                        clean_session=False)
        c.max_inflight_messages_set(1000)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("kawal/v1/#", qos=1)
        c.on_subscribe = lambda cl, u, mid, rcs, p: self.ready.set()
        c.on_message = self.on_message
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        self.client = c
        if not self.ready.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        with self.lock:
            if self.first is None:
                self.first = now
            self.n += 1
            self.last = now

    def wait(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.n >= n:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def reading(i: int, tracker: int) -> str:
    return json.dumps({"ts": 1_732_000_000 + i, "seq": i, "lat": -7.546 + i * 1e-5, "lon": 112.233,
                       "acc": 6.5, "spd": 32.0, "hdg": 181.0, "bat": 88.0, "seal": "closed"})


def publish(port: int, n: int, publishers: int, tmp: Path) -> float:
    """Publish n readings split over `publishers` mosquitto_pub processes; seconds until all exited."""
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        raise SystemExit("mosquitto_pub is needed for this benchmark (apt-get install mosquitto-clients)")
    procs = []
    t0 = time.perf_counter()
    for p in range(publishers):
        lines = tmp / f"pub-{p}.txt"
        lines.write_text("\n".join(reading(i, p) for i in range(p, n, publishers)) + "\n")
        procs.append(subprocess.Popen(
            [binary, "-h", "127.0.0.1", "-p", str(port), "-V", "311", "-q", "1", "-i", f"trk-{p}",
             "-t", f"kawal/v1/TRK-{p:04d}/telemetry", "-l"],
            stdin=lines.open("rb"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for proc in procs:
        proc.wait(300)
    return time.perf_counter() - t0


def bench(kind: str, n: int, publishers: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix=f"kawal-bench-{kind}-"))
    settings = Settings.model_validate({"embedded_broker": kind, "embedded_mqtt_port": 0})
    t = time.perf_counter()
    b = EmbeddedBroker(settings, tmp / "broker")
    b.start()
    start_s = time.perf_counter() - t
    assert b.port is not None
    row: dict[str, object] = {"kind": kind, "protocol": b.protocol, "start_s": round(start_s, 2)}
    try:
        # 1. Live throughput: the subscriber is connected while publishers send at QoS 1.
        sub = Counter(b.port)
        t0 = time.perf_counter()
        publish(port=b.port, n=n, publishers=publishers, tmp=tmp)
        ok = sub.wait(n, 300)
        row["live_msgs_per_s"] = round(n / (sub.last - t0)) if ok else f"lost {n - sub.n}"
        sub.close()

        # 2. Offline queue: the session is away while n messages arrive, the broker restarts, then drains.
        sub = Counter(b.port)
        sub.close()
        pub_s = publish(port=b.port, n=n, publishers=publishers, tmp=tmp)
        row["offline_accept_msgs_per_s"] = round(n / pub_s)
        t = time.perf_counter()
        b.stop()
        row["stop_s"] = round(time.perf_counter() - t, 2)
        b = EmbeddedBroker(settings, tmp / "broker")
        t = time.perf_counter()
        b.start()
        row["restart_s"] = round(time.perf_counter() - t, 2)
        assert b.port is not None
        t0 = time.perf_counter()
        sub = Counter(b.port)
        ok = sub.wait(n, 300)
        row["kept_after_restart"] = f"{sub.n}/{n}"
        row["drain_msgs_per_s"] = round(sub.n / (sub.last - t0)) if sub.n else 0
        sub.close()
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--kinds", default="mosquitto,amqtt")
    args = ap.parse_args()
    rows = [bench(k, args.messages, args.publishers) for k in args.kinds.split(",")]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")


if __name__ == "__main__":
    main()
