"""The fleet simulator without a broker: determinism, geography, movement, noise, incidents and batches."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from kawal.trips import TripIn
from simulators.geo import Polyline
from simulators.model import ACC_PER_SIGMA
from simulators.motion import Drive, Rest
from simulators.scenario import BENIGN_TYPES, INCIDENT_TYPES, Scenario, SimConfig, build_scenario
from simulators.streams import Message, tracker_messages

CORRIDOR = 200.0
MAX_STOP = 600.0
MAX_SILENCE = 900.0


@dataclass
class Seen:
    """One reading as it went over the wire, with the message it came in."""

    tracker_id: str
    ts: float
    data: dict[str, Any]
    msg: Message

    @property
    def has_fix(self) -> bool:
        return "lat" in self.data

    @property
    def seal(self) -> str | None:
        return self.data.get("seal")

    @property
    def bat(self) -> float:
        return float(self.data.get("bat", self.data.get("batt", 100)))


def readings(msg: Message) -> list[dict[str, Any]]:
    if msg.kind == "status":
        return []
    d = json.loads(msg.payload)
    return d if isinstance(d, list) else [d]


def seen(sc: Scenario, tracker_id: str) -> list[Seen]:
    spec = next(s for s in sc.trackers if s.tracker_id == tracker_id)
    out = []
    for m in tracker_messages(sc, spec):
        for r in readings(m):
            out.append(Seen(tracker_id, float(r["ts"] if "ts" in r else r["tst"]), r, m))
    return out


def unique_by_ts(rs: list[Seen]) -> list[Seen]:
    first: dict[float, Seen] = {}
    for r in rs:
        first.setdefault(r.ts, r)
    return sorted(first.values(), key=lambda r: r.ts)


@pytest.fixture(scope="module")
def sc() -> Scenario:
    return build_scenario(seed=7, trackers=45, incidents_rate=0.6)


@pytest.fixture(scope="module")
def all_seen(sc: Scenario) -> dict[str, list[Seen]]:
    return {t.tracker_id: seen(sc, t.tracker_id) for t in sc.trackers}


def xy(sc: Scenario, r: Seen) -> tuple[float, float]:
    return sc.geography.frame.to_xy(r.data["lat"], r.data["lon"])


def fingerprint(sc: Scenario) -> str:
    h = hashlib.sha256()
    for trip_id, body in sc.trip_bodies():
        h.update(trip_id.encode() + json.dumps(body, sort_keys=True).encode())
    for e in sc.truth:
        h.update(json.dumps(e.to_json(), sort_keys=True).encode())
    for m in sc.messages():
        h.update(f"{m.at:.6f}{m.topic}{m.retain}".encode() + m.payload)
    return h.hexdigest()


def test_same_seed_same_fleet_and_messages() -> None:
    a = build_scenario(seed=11, trackers=12, incidents_rate=0.8)
    b = build_scenario(seed=11, trackers=12, incidents_rate=0.8)
    c = build_scenario(seed=12, trackers=12, incidents_rate=0.8)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)


def test_trip_bodies_follow_the_contract(sc: Scenario) -> None:
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trip_id, body in sc.trip_bodies():
        TripIn.model_validate(body)  # CONTRACT 2.2, as the API validates it
        assert body["district"] and body["tracker_id"] and trip_id.startswith(body["crate_id"])
        chains[body["crate_id"]].append(body)
    for legs in chains.values():
        assert next(b["origin"]["name"] for b in legs) == "Gudang KPU Kabupaten Jombang"
        assert legs[0]["destination"]["name"].startswith("PPK ")
        assert legs[1]["origin"] == legs[0]["destination"]
        assert legs[1]["destination"]["name"].startswith("PPS ")
        assert "open_after" in legs[-1]["destination"]
    ids = [t.tracker_id for t in sc.trackers]
    assert len(set(ids)) == len(ids)
    assert any("." in i for i in ids) and any("-TRK" in i for i in ids)  # OwnTracks and native


def test_routes_look_like_roads(sc: Scenario) -> None:
    """Vertices every 50-150 m, longer than the straight line, with real bends."""
    bends = 0
    for trip in sc.trips:
        xy_ = trip.route_xy
        if len(xy_) < 3:
            continue
        seg = np.hypot(*(xy_[1:] - xy_[:-1]).T)
        assert seg.max() <= 150.0 + 1e-6
        # 50 m along the road at least; only the chord across a hairpin corner is shorter (one on a short route).
        assert int((seg < 45.0).sum()) <= max(1, 0.05 * len(seg)) and seg.min() > 10.0
        assert 60.0 <= float(np.median(seg)) <= 130.0
        line = Polyline(xy_)
        straight = float(np.hypot(*(xy_[-1] - xy_[0])))
        if line.length > 3000:
            assert line.length > 1.05 * straight
        h = np.degrees(np.arctan2(np.diff(xy_[:, 0]), np.diff(xy_[:, 1])))
        turn = np.abs((np.diff(h) + 180) % 360 - 180)
        bends += int((turn > 30).sum())
    assert bends > len(sc.trips)


def test_every_incident_type_and_benign_event_is_planned(sc: Scenario) -> None:
    types = {e.type for e in sc.incidents}
    assert types == {*INCIDENT_TYPES, "handover_mismatch"}  # the custody incidents: simulators/custody.py
    assert {e.type for e in sc.truth if not e.expect_alert} == set(BENIGN_TYPES)
    per_tracker: dict[str, int] = defaultdict(int)
    for e in sc.incidents:
        per_tracker[e.tracker_id] += 1
        assert e.window[0] <= e.start <= e.window[1] and e.start <= e.end
    assert max(per_tracker.values()) == 1
    assert len([e for e in sc.incidents if e.type != "handover_mismatch"]) == round(0.6 * len(sc.trackers))


def test_gps_noise_matches_reported_accuracy() -> None:
    """Per-axis error / σ (σ = acc / 1.51) has unit spread; 68 % of fixes fall within acc; errors are
    correlated as a Gauss–Markov process with τ = 60 s (lag 30 s: exp(-0.5) = 0.61)."""
    cfg = SimConfig(multipath_rate=0.0, owntracks_share=0.0)
    sc = build_scenario(seed=3, trackers=15, incidents_rate=0.0, config=cfg)
    frame = sc.geography.frame
    z: list[tuple[float, float]] = []
    within = 0
    pairs: list[tuple[float, float]] = []
    for spec in sc.trackers:
        prev: tuple[float, float, float] | None = None
        for m in tracker_messages(sc, spec):
            for r in readings(m):
                if "lat" not in r or m.unique == 0:
                    continue
                true = spec.timeline.state(r["ts"])
                x, y = frame.to_xy(r["lat"], r["lon"])
                sigma = r["acc"] / ACC_PER_SIGMA
                zx, zy = (x - true.x) / sigma, (y - true.y) / sigma
                z.append((zx, zy))
                within += math.hypot(x - true.x, y - true.y) <= r["acc"]
                if prev is not None and r["ts"] - prev[0] == 30 and not true.indoor:
                    pairs.append((prev[1], zx))
                prev = (r["ts"], zx, zy)
    arr = np.array(z)
    assert len(arr) > 5000
    assert arr.std(axis=0) == pytest.approx([1.0, 1.0], abs=0.06)
    assert abs(arr.mean()) < 0.1
    assert within / len(arr) == pytest.approx(0.68, abs=0.03)
    p = np.array(pairs)
    assert np.corrcoef(p[:, 0], p[:, 1])[0, 1] == pytest.approx(math.exp(-0.5), abs=0.07)
    accs = [r["acc"] for s in sc.trackers[:5] for m in tracker_messages(sc, s) for r in readings(m) if "acc" in r]
    assert min(accs) >= 2.5 and max(accs) <= 10.5 * 1.8  # 3-10 m outdoors, x1.8 indoors


def _dist_to_route(sc: Scenario, trip_route: np.ndarray, pts: list[tuple[float, float]]) -> np.ndarray:
    return Polyline(trip_route).distance_to(np.array(pts))


def test_deviations_leave_the_corridor_and_clean_trips_stay_inside(
    sc: Scenario, all_seen: dict[str, list[Seen]]
) -> None:
    trips = {t.trip_id: t for t in sc.trips}
    deviations = [e for e in sc.incidents if e.type == "route_deviation"]
    assert deviations
    for e in deviations:
        assert e.trip_id is not None
        trip = trips[e.trip_id]
        spec = next(s for s in sc.trackers if s.tracker_id == e.tracker_id)
        ts = np.arange(e.start + 1, e.end, 5.0)
        truth = [(st.x, st.y) for st in (spec.timeline.state(t) for t in ts)]
        d = _dist_to_route(sc, trip.route_xy, truth)
        assert d.min() > CORRIDOR and d.max() > 500.0, e.details  # all of it outside, most of it far
        rs = [r for r in unique_by_ts(all_seen[e.tracker_id]) if e.start <= r.ts <= e.end and r.has_fix]
        dr = _dist_to_route(sc, trip.route_xy, [xy(sc, r) for r in rs])
        assert (dr > CORRIDOR).sum() >= 5  # several readings, not one bad fix
    clean = 0
    for trip in sc.clean_trips:
        rs = [
            r
            for r in unique_by_ts(all_seen[trip.tracker_id])
            if trip.departure <= r.ts <= (trip.arrival or 0) and r.has_fix
        ]
        if not rs:
            continue
        d = _dist_to_route(sc, trip.route_xy, [xy(sc, r) for r in rs])
        assert d.max() < CORRIDOR / 2, (trip.trip_id, d.max())
        clean += 1
    assert clean >= 20


def test_stops_are_long_only_where_allowed(sc: Scenario) -> None:
    """Clean trips halt for long only inside an allowed stop zone; an unscheduled stop clearly exceeds."""
    for spec in sc.trackers:
        for seg in spec.timeline.segments:
            if not isinstance(seg, Drive):
                continue
            trip = next((t for t in spec.trips if t.departure <= seg.t0 <= (t.arrival or math.inf)), None)
            for h in seg.motion.halts:
                long = h.t1 - h.t0
                if h.label == "traffic":
                    assert long <= 150
                elif h.label == "allowed_stop":
                    assert trip is not None
                    x, y = seg.motion.path.point_at(h.s)
                    assert min(math.hypot(x - z.x, y - z.y) for z in trip.stops) < 60.0
                elif h.label == "house":
                    assert long >= 20 * 60 >= MAX_STOP + 10 * 60
    stops = [e for e in sc.incidents if e.type == "unscheduled_stop"]
    assert stops and all(e.end - e.start >= 20 * 60 for e in stops)


def test_silences_and_dead_zones(sc: Scenario, all_seen: dict[str, list[Seen]]) -> None:
    """Signal loss is silence well over max_silence; coverage gaps stay well under it and arrive later."""
    for e in sc.incidents:
        if e.type != "signal_lost":
            continue
        assert e.end - e.start >= MAX_SILENCE + 5 * 60
        rs = all_seen[e.tracker_id]
        assert any(r.ts == e.start for r in rs)  # the last reading before the silence
        inside = [r for r in rs if e.start < r.ts < e.end]
        for r in inside:  # a jammed tracker keeps fix-less readings and sends them afterwards
            assert not r.has_fix and r.msg.at >= e.end
        published = sorted(m.at for r in rs for m in [r.msg])
        gap = max(b - a for a, b in itertools.pairwise(published) if a <= e.end and b > e.start)
        assert gap >= MAX_SILENCE + 5 * 60
    gaps = [e for e in sc.truth if e.type == "dead_zone"]
    assert gaps
    for e in gaps:
        assert e.end - e.start <= 8 * 60
        late = [r for r in all_seen[e.tracker_id] if e.start <= r.ts < e.end]
        assert late and all(r.msg.at >= e.end for r in late)
        before = max(r.msg.at for r in all_seen[e.tracker_id] if r.msg.at < e.start)
        assert min(r.msg.at for r in late) - before <= 0.75 * MAX_SILENCE  # clearly under max_silence


def test_sensor_incidents(sc: Scenario, all_seen: dict[str, list[Seen]]) -> None:
    trips = {t.trip_id: t for t in sc.trips}
    kinds = set()
    for e in sc.incidents:
        rs = unique_by_ts(all_seen[e.tracker_id])
        if e.type == "seal_break":
            first = next(r for r in rs if r.seal in ("open", "tampered"))
            assert first.ts == e.start
            kinds.add(e.type)
        elif e.type == "gps_jump":
            i = next(i for i, r in enumerate(rs) if r.ts == e.start)
            a, b = rs[i - 1], rs[i]
            speed = math.dist(xy(sc, a), xy(sc, b)) / (b.ts - a.ts) * 3.6
            assert speed > 300, speed
            kinds.add(e.type)
        elif e.type == "low_battery":
            first = next(r for r in rs if r.bat < 15)
            assert first.ts == e.start
            kinds.add(e.type)
        elif e.type == "overdue":
            assert e.trip_id is not None
            trip = trips[e.trip_id]
            assert trip.arrival is not None and trip.arrival >= trip.arrive_by + 15 * 60
            kinds.add(e.type)
        elif e.type in ("unexpected_movement", "wrong_destination"):
            kinds.add(e.type)
    assert kinds >= {"seal_break", "gps_jump", "low_battery", "overdue"}
    # Clean behaviour stays clearly inside every threshold.
    with_incident = {e.tracker_id for e in sc.incidents}
    for spec in sc.trackers:
        rs = unique_by_ts(all_seen[spec.tracker_id])
        if spec.tracker_id not in with_incident:
            assert min(r.bat for r in rs) >= 20
            fixes = [r for r in rs if r.has_fix]
            for a, b in itertools.pairwise(fixes):
                assert math.dist(xy(sc, a), xy(sc, b)) / (b.ts - a.ts) * 3.6 < 120
        for trip in spec.trips:
            if trip.incident is None:
                assert trip.arrival is not None and trip.arrival <= trip.arrive_by - 10 * 60
        opened = [e for e in sc.truth if e.type == "authorised_opening" and e.tracker_id == spec.tracker_id]
        for e in opened:
            last = spec.trips[-1]
            assert last.open_after is not None and e.start >= last.open_after
            st = spec.timeline.state(e.start)
            assert math.hypot(st.x - last.destination.x, st.y - last.destination.y) < last.destination.radius_m


def test_storage_moves_and_wrong_deliveries_leave_their_zones(sc: Scenario) -> None:
    for e in sc.incidents:
        spec = next(s for s in sc.trackers if s.tracker_id == e.tracker_id)
        trip = next(t for t in spec.trips if t.trip_id == e.trip_id)
        if e.type == "unexpected_movement":
            place = trip.origin if e.details["when"] == "before departure" else trip.destination
            far = max(
                math.hypot(st.x - place.x, st.y - place.y)
                for st in (spec.timeline.state(t) for t in np.arange(e.start, e.end, 10.0))
            )
            assert far > place.radius_m + 400
            assert e.end < trip.depart_after or e.start > (trip.arrival or math.inf)
            assert isinstance(spec.timeline.segment_at(e.start - 60), Rest)
        elif e.type == "wrong_destination":
            dest = trip.destination
            stay = [spec.timeline.state(t) for t in np.arange(e.start + 180, e.end - 60, 30.0)]
            assert e.end - e.start >= MAX_STOP + 10 * 60
            assert all(math.hypot(s.x - dest.x, s.y - dest.y) > 1000 for s in stay)
            assert all(s.v == 0 for s in stay)


def _batches(sc: Scenario) -> Iterator[tuple[Message, list[dict[str, Any]]]]:
    for m in sc.messages():
        if m.kind == "batch":
            yield m, json.loads(m.payload)


def test_batches_carry_duplicates_and_shuffled_order_as_configured() -> None:
    noisy = SimConfig(dead_zones_per_trip=4.0, duplicate_rate=0.2, shuffle_rate=1.0, owntracks_share=0.0)
    sc = build_scenario(seed=5, trackers=12, incidents_rate=0.0, config=noisy)
    batches = list(_batches(sc))
    assert len(batches) >= 10
    with_dup = sum(1 for _, b in batches if len({(r["ts"], r["seq"]) for r in b}) < len(b))
    unsorted = sum(1 for _, b in batches if [r["ts"] for r in b] != sorted(r["ts"] for r in b))
    assert with_dup >= 3 and unsorted >= len(batches) - 1
    for _, b in batches:
        assert 1 <= len(b) <= 1000
    # Every distinct reading is counted once however often it is sent.
    keys: set[tuple[str, int]] = set()
    unique = 0
    for m in sc.messages():
        unique += m.unique
        for r in readings(m):
            keys.add((r["id"], r["seq"]))
    assert unique == len(keys)

    tidy = SimConfig(
        dead_zones_per_trip=4.0,
        duplicate_rate=0.0,
        shuffle_rate=0.0,
        resend_batch_rate=0.0,
        owntracks_share=0.0,
    )
    sc2 = build_scenario(seed=5, trackers=12, incidents_rate=0.0, config=tidy)
    batches2 = list(_batches(sc2))
    assert batches2
    for _, b in batches2:
        assert [r["ts"] for r in b] == sorted(r["ts"] for r in b)
        assert len({(r["ts"], r["seq"]) for r in b}) == len(b)


def test_interval_range_and_owntracks_format() -> None:
    cfg = SimConfig(interval_s=(10, 60), owntracks_share=0.5, legs=1)
    sc = build_scenario(seed=2, trackers=20, incidents_rate=0.0, config=cfg)
    intervals = {s.interval_s for s in sc.trackers}
    assert min(intervals) >= 10 and max(intervals) <= 60 and len(intervals) > 5
    own = [s for s in sc.trackers if s.protocol == "owntracks"]
    assert own
    m = next(m for m in tracker_messages(sc, own[0]) if m.kind == "reading")
    user, device = own[0].tracker_id.split(".")
    assert m.topic == f"owntracks/{user}/{device}"
    d = json.loads(m.payload)
    assert d["_type"] == "location" and {"tst", "lat", "lon", "acc", "vel", "cog", "batt"} <= set(d)
    native = next(s for s in sc.trackers if s.protocol == "native")
    d = json.loads(next(m for m in tracker_messages(sc, native) if m.kind == "reading").payload)
    assert set(d) == {"id", "ts", "seq", "lat", "lon", "acc", "spd", "hdg", "bat", "seal"}
    assert d["id"] == native.tracker_id


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        build_scenario(trackers=2, config=SimConfig(interval_s=(60, 10)))
    with pytest.raises(ValueError, match="incident type"):
        build_scenario(trackers=2, config=SimConfig(incident_weights={"alien_landing": 1.0}))
    with pytest.raises(ValueError, match="incidents_rate"):
        build_scenario(trackers=2, incidents_rate=1.5)
