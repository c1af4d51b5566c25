"""Publishing simulated fleets through a real Mosquitto: everything arrives, batches look as configured,
per-tracker connections leave a Last Will, pacing follows the speed-up, and `kawal simulate` works."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from simulators.cli import simulate
from simulators.publish import Publisher, PublishError
from simulators.scenario import SimConfig, build_scenario
from simulators.streams import Message
from tests.servers import Mosquitto


class Recorder:
    """A QoS 1 subscriber that keeps every message it gets."""

    def __init__(self, broker: Mosquitto, topics: tuple[str, ...] = ("kawal/#", "owntracks/#")) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rec-{id(self)}")

        def on_connect(c: mqtt.Client, *_: object) -> None:
            c.subscribe([(t, 1) for t in topics])

        def on_subscribe(*_: object) -> None:
            self.ready.set()

        def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return
            time.sleep(0.05)
        raise AssertionError(f"got {len(self.messages)} of {n} messages")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def recorder(mosquitto: Mosquitto) -> Iterator[Recorder]:
    r = Recorder(mosquitto)
    yield r
    r.close()


def test_fleet_arrives_whole_with_batches_duplicates_and_shuffles(mosquitto: Mosquitto, recorder: Recorder) -> None:
    cfg = SimConfig(legs=1, dead_zones_per_trip=3.0, duplicate_rate=0.2, shuffle_rate=1.0, owntracks_share=0.3)
    sc = build_scenario(seed=21, trackers=25, incidents_rate=0.4, config=cfg)
    stats = Publisher(mosquitto.url, speedup=0, progress=False, connections=2).publish_scenario(sc)
    recorder.wait_for(stats.messages)
    assert stats.acked == stats.messages and stats.messages == len(recorder.messages)

    native: set[tuple[str, int]] = set()
    owntracks: set[tuple[str, int]] = set()
    batches = dups = shuffled = 0
    for topic, payload, _ in recorder.messages:
        if topic.endswith("/status"):
            assert payload in (b"online", b"offline")
            continue
        data = json.loads(payload)
        if topic.startswith("owntracks/"):
            _, user, device = topic.split("/")
            assert data["_type"] in ("location", "lwt")  # lwt: a switched-off phone
            if data["_type"] == "location":
                owntracks.add((f"{user}.{device}", data["tst"]))
            continue
        items = data if isinstance(data, list) else [data]
        if isinstance(data, list):
            batches += 1
            keys = [(r["ts"], r["seq"]) for r in items]
            dups += len(set(keys)) < len(keys)
            shuffled += [k[0] for k in keys] != sorted(k[0] for k in keys)
        for r in items:
            assert topic == f"kawal/v1/{r['id']}/telemetry"
            native.add((r["id"], r["seq"]))
    assert len(native) + len(owntracks) == stats.unique_readings
    assert batches >= 5 and dups >= 2 and shuffled >= batches - 1
    assert owntracks, "some trackers speak OwnTracks"
    # Retained `online` per tracker: a late subscriber still sees every tracker's status.
    late = Recorder(mosquitto, topics=("kawal/v1/+/status",))
    try:
        late.wait_for(sum(1 for t in sc.trackers if t.protocol == "native"), timeout=10)
        assert all(retained for _, _, retained in late.messages)
    finally:
        late.close()


def test_per_tracker_connections_leave_an_offline_will(mosquitto: Mosquitto, recorder: Recorder) -> None:
    cfg = SimConfig(legs=1, owntracks_share=0.5, incident_weights={"signal_lost": 1.0})
    sc = build_scenario(seed=8, trackers=8, incidents_rate=1.0, config=cfg)
    off = {s.tracker_id: s.protocol for s in sc.trackers if any(x.kind == "off" for x in s.silences)}
    assert "native" in off.values() and "owntracks" in off.values()
    stats = Publisher(mosquitto.url, speedup=0, progress=False, per_tracker=True).publish_scenario(sc)
    # The publisher does not send `offline` itself here: the broker does, as each tracker's Last Will.
    wills = sum(1 for m in sc.messages() if m.control == "drop")
    recorder.wait_for(stats.messages + wills)
    offline = {t.split("/")[2] for t, p, _ in recorder.messages if t.endswith("/status") and p == b"offline"}
    assert offline == {t for t, proto in off.items() if proto == "native"}
    lwt = {
        ".".join(t.split("/")[1:])
        for t, p, _ in recorder.messages
        if t.startswith("owntracks/") and json.loads(p)["_type"] == "lwt"
    }
    assert lwt == {t for t, proto in off.items() if proto == "owntracks"}  # the OwnTracks app's own will
    for tracker, proto in off.items():  # and the tracker came back afterwards
        if proto == "native":
            statuses = [p for t, p, _ in recorder.messages if t == f"kawal/v1/{tracker}/status"]
            assert statuses == [b"online", b"offline", b"online"]


def test_pacing_follows_the_speedup_and_fast_forward(mosquitto: Mosquitto) -> None:
    sc = build_scenario(seed=4, trackers=3, incidents_rate=0.0, config=SimConfig(legs=1))
    msgs = list(sc.messages())
    ff = msgs[len(msgs) // 2].at  # the first half as fast as possible, then paced
    speedup = (msgs[-1].at - ff) / 2.0  # the paced half takes about 2 s
    seen: list[tuple[Message, float]] = []
    wall0 = time.monotonic()
    stats = Publisher(mosquitto.url, speedup=speedup, progress=False).run(
        iter(msgs),
        sc.start,
        sc.end,
        fast_forward_until=ff,
        on_publish=lambda m, w: seen.append((m, time.monotonic())),
    )
    assert stats.messages == len(msgs)
    switch = next(w for m, w in seen if m.at >= ff)
    for m, w in seen:
        if m.at >= ff:  # never early
            assert w >= switch + (m.at - ff) / speedup - 0.05
    assert seen[-1][1] - switch >= 1.9
    assert switch - wall0 < seen[-1][1] - switch  # the fast-forwarded half went faster


def test_stop_event_ends_a_real_time_run(mosquitto: Mosquitto) -> None:
    sc = build_scenario(seed=4, trackers=2, incidents_rate=0.0, config=SimConfig(legs=1))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    stats = Publisher(mosquitto.url, speedup=1.0, progress=False).publish_scenario(sc, stop=stop)
    assert stats.stopped and stats.messages < 10


def test_unreachable_broker_is_a_clear_error() -> None:
    sc = build_scenario(seed=4, trackers=1, incidents_rate=0.0, config=SimConfig(legs=1))
    with pytest.raises(PublishError, match="cannot connect"):
        Publisher("mqtt://127.0.0.1:1", speedup=0, progress=False).publish_scenario(sc)
    with pytest.raises(ValueError, match="scheme"):
        Publisher("http://127.0.0.1:1883")


def test_simulate_command(mosquitto: Mosquitto, recorder: Recorder, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    trips = tmp_path / "trips.json"
    r = CliRunner().invoke(
        simulate,
        [
            "--trackers",
            "6",
            "--seed",
            "3",
            "--incidents",
            "0.5",
            "--legs",
            "1",
            "--interval",
            "10-60",
            "--fast",
            "--no-progress",
            "--mqtt-url",
            mosquitto.url,
            "--truth",
            str(truth),
            "--trips-out",
            str(trips),
            "--start",
            "2024-11-25T05:00:00+07:00",
        ],
    )
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    recorder.wait_for(stats["messages"])
    events = [json.loads(line) for line in truth.read_text().splitlines()]
    incidents = [e for e in events if e["expect_alert"]]
    assert len(incidents) == 3 and all(
        {"tracker_id", "trip_id", "type", "start", "window"} <= set(e) for e in incidents
    )
    assert len(json.loads(trips.read_text())) == 6
    bad = CliRunner().invoke(simulate, ["--interval", "5-2", "--dry-run", "--truth", str(truth)])
    assert bad.exit_code != 0 and "interval" in bad.output
