"""Property tests: GPS noise on a followed route never raises movement alerts; the order inside a message
never matters."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.model import AlertType
from anomaly.config import DetectionConfig
from anomaly.engine import DetectionEngine
from anomaly.geometry import RouteIndex
from anomaly.tracks import (
    GUDANG,
    T0,
    Recorder,
    Track,
    gauss_markov,
    make_trip,
    offset,
    point_at,
    route_length_m,
)
from devices.reading import Reading
from kawal.geodesy import LocalFrame

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def routes(draw: st.DrawFn) -> list[tuple[float, float]]:
    """A random road around Jombang: 2-25 legs of 50 m to 2 km, any turn, even hairpins."""
    n = draw(st.integers(2, 25))
    lat, lon = offset(*GUDANG, draw(st.floats(-20_000, 20_000)), draw(st.floats(-20_000, 20_000)))
    pts = [(lat, lon)]
    bearing = draw(st.floats(0, 2 * math.pi))
    for _ in range(n):
        bearing += draw(st.floats(-2.8, 2.8))
        length = draw(st.floats(50, 2000))
        lat, lon = offset(lat, lon, length * math.sin(bearing), length * math.cos(bearing))
        pts.append((lat, lon))
    return pts


@st.composite
def noisy_drives(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list[Reading], float]:
    route = draw(routes())
    speed = draw(st.floats(15, 90))  # km/h
    every = draw(st.sampled_from([1.0, 5.0, 10.0, 30.0, 60.0, 120.0]))
    acc = draw(st.floats(3, 60))
    corridor = draw(st.floats(20, 300))
    markov = draw(st.booleans())
    rng = random.Random(draw(st.integers(0, 2**32)))
    length = route_length_m(route)
    n = max(2, min(1500, int(length / (speed / 3.6 * every)) + 1))
    if markov:
        errs = gauss_markov(n, sigma_m=acc / 2, tau_s=60.0, dt_s=every, rng=rng)
    else:
        errs = [(rng.gauss(0, acc / 2), rng.gauss(0, acc / 2)) for _ in range(n)]
    readings = []
    for i, (e, nn) in enumerate(errs):
        r = math.hypot(e, nn)
        if r > acc:  # noise within the reported accuracy
            e, nn = e * acc / r, nn * acc / r
        lat, lon = offset(*point_at(route, length * i / (n - 1)), e, nn)
        readings.append(Reading("TRK-P", ts=T0 + 30 + i * every, lat=lat, lon=lon, seq=i, acc=acc))
    return route, readings, corridor


@SETTINGS
@given(noisy_drives())
def test_noise_on_a_followed_route_never_raises_deviation_or_stop(
    drive: tuple[list[tuple[float, float]], list[Reading], float],
) -> None:
    route, readings, corridor = drive
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip("T-P", "TRK-P", route=route, corridor_m=corridor, arrive_by=T0 + 10 * 86400)])
    for i in range(0, len(readings), 10):
        batch = readings[i : i + 10]
        eng.process(batch)
        eng.tick(batch[-1].ts)
    bad = {AlertType.ROUTE_DEVIATION, AlertType.UNSCHEDULED_STOP, AlertType.GPS_JUMP}
    assert [e for e in rec.raised() if e.type in bad] == []


KINDS = ["drive", "drive", "stop", "detour", "silence", "seal", "bad", "bat"]


@st.composite
def incident_batches(draw: st.DrawFn) -> list[Reading]:
    """Two trackers' eventful tracks: detours, stops, silences, seal changes, batteries, bad fixes, copies."""
    route = [GUDANG, offset(*GUDANG, 0, -6000), offset(*GUDANG, 2000, -9000)]
    out: list[Reading] = []
    for tid in ("TRK-1", "TRK-2"):
        tr = Track(tracker_id=tid, t=T0 - 300)
        d = 0.0
        for _ in range(draw(st.integers(5, 40))):
            kind = draw(st.sampled_from(KINDS))
            pos = point_at(route, d)
            if kind == "drive":
                d += 400
                tr.add(*point_at(route, d), 30)
            elif kind == "stop":
                tr.stay(pos, draw(st.integers(1, 14)), every_s=60)
            elif kind == "detour":
                tr.add(*offset(*pos, draw(st.floats(-900, 900)), 0), 60)
            elif kind == "silence":
                tr.silent(draw(st.integers(1, 30)))
            elif kind == "seal":
                tr.add(None, None, 20, seal=draw(st.sampled_from(["open", "closed", "tampered"])))
            elif kind == "bad":
                tr.add(*offset(*pos, 20_000, 0), 5)
            else:
                tr.add(*pos, 20, bat=draw(st.floats(5, 30)))
        out.extend(tr.readings)
        out.extend(draw(st.lists(st.sampled_from(tr.readings), max_size=5)) if tr.readings else [])
    return out


def _run(readings: list[Reading], mode: str = "hint") -> dict[str, list[tuple[str, str, float]]]:
    rec = Recorder()
    eng = DetectionEngine(rec, DetectionConfig(route_search=mode))  # type: ignore[arg-type]
    route = [GUDANG, offset(*GUDANG, 0, -6000), offset(*GUDANG, 2000, -9000)]
    eng.set_trips(
        [
            make_trip("T-1", "TRK-1", route=route, arrive_by=T0 + 1800),
            make_trip("T-2", "TRK-2", route=route, open_after=T0),
        ]
    )
    eng.process(readings)
    eng.tick(max(r.ts for r in readings) + 3600)
    per: dict[str, list[tuple[str, str, float]]] = {}
    for e in rec.events:
        per.setdefault(e.tracker_id, []).append((str(e.action), str(e.type), e.ts))
    return per


@SETTINGS
@given(incident_batches(), st.randoms(use_true_random=False))
def test_shuffling_a_message_never_changes_the_outcome(readings: list[Reading], rnd: random.Random) -> None:
    # A batch is taken in arrival order; one tracker's consecutive readings (a backlog array) in any order.
    expected = _run(readings)
    shuffled: list[Reading] = []
    for _, run in itertools.groupby(readings, key=lambda r: r.tracker_id):
        block = list(run)
        rnd.shuffle(block)
        shuffled.extend(block)
    assert _run(shuffled) == expected


@settings(max_examples=15, deadline=None)
@given(incident_batches())
def test_route_search_strategies_agree(readings: list[Reading]) -> None:
    assert _run(readings, "hint") == _run(readings, "numpy") == _run(readings, "python")


@SETTINGS
@given(routes(), st.floats(-3000, 3000), st.floats(-3000, 3000), st.floats(5, 500), st.integers(0, 30))
def test_route_index_queries_agree(
    route: list[tuple[float, float]], dx: float, dy: float, thr: float, hint: int
) -> None:
    frame = LocalFrame(*route[0])
    idx = RouteIndex(frame, route)
    lat, lon = route[len(route) // 2]
    x, y = frame.to_xy(*offset(lat, lon, dx, dy))
    d_np, i_np = idx.nearest_np(x, y)
    d_py, _ = idx.nearest_py(x, y)
    assert math.isclose(d_np, d_py, rel_tol=1e-6, abs_tol=1e-3)
    assert math.isclose(idx.seg_dist(i_np, x, y), d_np, rel_tol=1e-6, abs_tol=1e-3)
    i = idx.within(x, y, thr, hint, window=4)
    if i >= 0:
        assert idx.seg_dist(i, x, y) <= thr + 1e-6
    many = idx.min_dist_many(np.array([x]), np.array([y]))
    assert math.isclose(float(many[0]), d_np, rel_tol=1e-6, abs_tol=1e-3)
