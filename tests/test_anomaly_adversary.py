"""Detection against an adversary: fix_lost, spoofing_suspected (seq/ts, kinematics, noise, replay), the
seal that flips back to closed; and the benign twins that must raise nothing."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, gauss_markov, line, make_trip, offset, replay
from devices.reading import Reading

FIX_LOST = AlertType.FIX_LOST
SPOOF = AlertType.SPOOFING_SUSPECTED
SEAL = AlertType.SEAL_BREAK
ROUTE = line(GUDANG, 3000, -15000, n=31)  # about 15.3 km
DAY = 86400.0


def engine(*trips_args: Mapping[str, object]) -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    trips = [make_trip(route=ROUTE, **a) for a in trips_args] if trips_args else [make_trip(route=ROUTE)]  # type: ignore[arg-type]
    eng.set_trips(trips)
    return eng, rec


def noisy_drive(
    tr: Track,
    rng: random.Random,
    speed_kmh: float = 40.0,
    every_s: float = 10.0,
    sigma_m: float = 4.0,
    start_m: float = 0.0,
    end_m: float | None = None,
    route: list[tuple[float, float]] = ROUTE,
) -> list[Reading]:
    """A drive with Gauss-Markov GPS noise, a reported acc, and spd/hdg from the true movement."""
    first = len(tr.readings)
    tr.drive(route, speed_kmh, every_s, start_m=start_m, end_m=end_m)
    new = tr.readings[first:]
    errs = gauss_markov(len(new), sigma_m, 60.0, every_s, rng)
    prev = None
    for r, (e, n) in zip(new, errs, strict=True):
        assert r.lat is not None and r.lon is not None
        true = (r.lat, r.lon)
        if prev is not None:
            dy = (true[0] - prev[0]) * 111_195.0
            dx = (true[1] - prev[1]) * 111_195.0 * math.cos(math.radians(true[0]))
            r.hdg = round(math.degrees(math.atan2(dx, dy)) % 360.0, 1)
        else:
            r.hdg = 170.0
        r.spd = round(speed_kmh + rng.gauss(0, 0.8), 1)
        r.lat, r.lon = (round(v, 6) for v in offset(true[0], true[1], e, n))
        r.acc = round(1.51 * sigma_m, 1)
        prev = true
    return new


def noisy_stay(
    tr: Track, rng: random.Random, at: tuple[float, float], minutes: float, every_s: float = 60.0, sigma_m: float = 4.0
) -> list[Reading]:
    """Parked: a receiver's own Gauss-Markov wander, speed 0."""
    n = round(minutes * 60 / every_s)
    out = []
    for e, nn in gauss_markov(n, sigma_m, 60.0, every_s, rng):
        lat, lon = offset(at[0], at[1], e, nn)
        out.append(tr.add(round(lat, 6), round(lon, 6), every_s, acc=round(1.51 * sigma_m, 1), spd=0.0, hdg=0.0))
    return out


# ---- fix_lost ----------------------------------------------------------------------------------------


def test_jammed_fix_while_reporting_raises_fix_lost_and_resolves_when_fixes_return() -> None:
    eng, rec = engine()
    rng = random.Random(1)
    tr = Track(t=T0 + 60)
    noisy_drive(tr, rng, end_m=3000)
    jam_start = tr.t + 10
    for i in range(120):  # 20 minutes of readings: no position, Null Island, then accuracy of hundreds of m
        if i < 40:
            tr.add(None, None, 10)
        elif i < 50:
            tr.add(0.0, 0.0, 10)
        else:
            tr.add(-7.60, 112.30, 10, acc=450.0)
    noisy_drive(tr, rng, start_m=9000, end_m=11000)
    replay(eng, tr.readings)
    raised = rec.raised(FIX_LOST)
    assert len(raised) == 1
    ev = raised[0]
    assert ev.ts == jam_start and ev.trip_id == "T-1"
    assert ev.details["no_fix_s"] > 15 * 60 and ev.details["reason"] == "poor_accuracy"
    assert ev.lat is not None  # the last usable fix
    assert [e.details["reason"] for e in rec.resolved(FIX_LOST)] == ["fix_regained"]
    assert rec.raised(AlertType.SIGNAL_LOST) == []  # it never went silent
    assert rec.raised(SPOOF) == []


def test_tunnel_of_three_minutes_raises_nothing() -> None:
    eng, rec = engine()
    rng = random.Random(2)
    tr = Track(t=T0 + 60)
    noisy_drive(tr, rng, end_m=4000)
    for _ in range(18):
        tr.add(None, None, 10)
    noisy_drive(tr, rng, start_m=6000)
    replay(eng, tr.readings)
    assert rec.raised() == []


def test_parking_garage_with_poor_accuracy_raises_nothing() -> None:
    """A crate stored overnight in a garage (storage: fix_lost is for transit) and a short stop in one."""
    trip = {"depart_after": T0 + 6 * 3600, "arrive_by": T0 + 9 * 3600}
    eng, rec = engine(trip)
    rng = random.Random(3)
    tr = Track(t=T0)
    for _ in range(60):  # five hours in the warehouse garage, every 5 minutes, acc 150-400 m
        tr.add(GUDANG[0] + rng.gauss(0, 0.001), GUDANG[1] + rng.gauss(0, 0.001), 300, acc=rng.uniform(150, 400))
    tr.t = T0 + 6 * 3600
    noisy_drive(tr, rng, end_m=5000)
    mid = tr.readings[-1]
    for _ in range(48):  # an 8-minute stop in a parking garage on the way (no alert: under max_silence_min)
        tr.add(mid.lat, mid.lon, 10, acc=rng.uniform(120, 300))
    noisy_drive(tr, rng, start_m=5000)
    replay(eng, tr.readings)
    assert rec.raised() == []


# ---- the seal that flips back --------------------------------------------------------------------------


def test_tampered_then_closed_is_never_a_resolution() -> None:
    eng, rec = engine()
    tr = Track(t=T0 + 60)
    tr.drive(ROUTE, 40, 30, end_m=2000, seal="closed")
    tampered = tr.add(*ROUTE[5], 30, seal="tampered")
    closed = tr.add(*ROUTE[5], 30, seal="closed")
    tr.drive(ROUTE, 40, 30, start_m=2500, end_m=4000, seal="closed")
    replay(eng, tr.readings)
    raised = rec.raised(SEAL)
    assert [e.details["seal"] for e in raised] == ["tampered", "tampered"]
    flip = raised[1].details
    assert flip["flipped_to"] == "closed" and flip["tampered_at"] == tampered.ts and flip["closed_at"] == closed.ts
    assert raised[1].ts == tampered.ts  # the same alert is updated, not a new condition
    assert rec.resolved(SEAL) == []
    assert eng.stats["seal_flip"] == 1


def test_open_then_closed_is_a_reseal_not_a_flip() -> None:
    eng, rec = engine()
    tr = Track(t=T0 + 60)
    tr.add(*ROUTE[1], 30, seal="open")
    tr.add(*ROUTE[1], 30, seal="closed")
    replay(eng, tr.readings)
    assert [e.details.get("flipped_to") for e in rec.raised(SEAL)] == [None]


# ---- spoofing: seq and ts ------------------------------------------------------------------------------


def test_tracker_reboot_is_benign() -> None:
    eng, rec = engine()
    rng = random.Random(4)
    tr = Track(t=T0 + 60, seq=5000)
    noisy_drive(tr, rng, end_m=4000)
    tr.seq = 0  # reboot: seq restarts, fresh ts, a cold start without a fix for a minute
    tr.t += 40
    for _ in range(6):
        tr.add(None, None, 10)
    noisy_drive(tr, rng, start_m=4600)
    replay(eng, tr.readings)
    assert rec.raised() == []
    assert eng.stats["tracker_reboot"] == 1


def test_seq_going_back_unexplained_by_a_reboot_raises() -> None:
    eng, rec = engine()
    rng = random.Random(5)
    tr = Track(t=T0 + 60, seq=5000)
    noisy_drive(tr, rng, end_m=3000)
    tr.seq = 2100  # a second source publishing with the tracker's id
    noisy_drive(tr, rng, start_m=3000, end_m=5000)
    replay(eng, tr.readings)
    raised = rec.raised(SPOOF)
    assert len(raised) == 1
    d = raised[0].details
    assert d["evidence"] == ["seq"] and d["seq"]["kind"] == "regression" and d["seq"]["to"] == 2100
    # never resolves by itself, not even on arrival
    tr.drive(ROUTE, 40, 30, start_m=5000)
    tr.stay(ROUTE[-1], 10)
    replay(eng, tr.readings[-60:])
    assert rec.resolved(SPOOF) == []


def test_old_times_under_a_newer_counter_raise_but_a_backlog_does_not() -> None:
    eng, rec = engine()
    rng = random.Random(6)
    tr = Track(t=T0 + 60)
    readings = noisy_drive(tr, rng, end_m=6000)
    live, backlog = readings[:-30] + readings[-5:], readings[-30:-5]
    replay(eng, live)
    replay(eng, backlog)  # a dead-zone backlog after newer live readings: late, older seq
    assert rec.raised() == []
    old = readings[3]
    replay(eng, [Reading(tracker_id="TRK-1", ts=old.ts, lat=old.lat, lon=old.lon, seq=tr.seq + 5)])
    raised = rec.raised(SPOOF)
    assert len(raised) == 1 and raised[0].details["evidence"] == ["ts"]
    assert raised[0].details["ts"]["seq"] == tr.seq + 5


# ---- spoofing: kinematics and noise --------------------------------------------------------------------


def test_positions_along_the_route_while_speed_and_heading_say_otherwise() -> None:
    eng, rec = engine()
    rng = random.Random(7)
    tr = Track(t=T0 + 60)
    noisy_drive(tr, rng, end_m=3000)
    clean = len(tr.readings)
    # The spoofed positions keep following the route; the receiver's velocity is the lorry's, going west.
    spoofed = noisy_drive(tr, rng, start_m=3000, end_m=9000)
    for r in spoofed:
        r.hdg = round(265.0 + rng.gauss(0, 3), 1)
        r.spd = round(30.0 + rng.gauss(0, 1), 1)
    replay(eng, tr.readings[:clean])
    assert rec.raised() == []
    replay(eng, tr.readings[clean:])
    raised = rec.raised(SPOOF)
    assert len(raised) == 1 and raised[0].details["evidence"] == ["kinematics"]
    assert raised[0].ts < spoofed[20].ts


def test_too_clean_noise_after_the_receivers_own_noise() -> None:
    eng, rec = engine({"depart_after": T0 + 3 * 3600, "arrive_by": T0 + 6 * 3600})
    rng = random.Random(8)
    tr = Track(t=T0)
    noisy_stay(tr, rng, ROUTE[0], 170, every_s=300)  # in the warehouse: the receiver's own noise
    noisy_stay(tr, rng, ROUTE[0], 10, every_s=30)
    noisy_drive(tr, rng, end_m=4000, sigma_m=3.0)
    clean = len(tr.readings)
    # A GPS simulator: positions on the road with no noise, and the lorry held still for 8 minutes.
    noisy_drive(tr, rng, start_m=4000, end_m=7000, sigma_m=0.0)
    stop = tr.readings[-1]
    for _ in range(16):
        tr.add(stop.lat, stop.lon, 30, acc=stop.acc, spd=0.0, hdg=stop.hdg)
    noisy_drive(tr, rng, start_m=7000, end_m=9000, sigma_m=0.0)
    replay(eng, tr.readings[:clean])
    assert rec.raised() == []
    replay(eng, tr.readings[clean:])
    raised = rec.raised(SPOOF)
    assert len(raised) == 1 and raised[0].details["evidence"] == ["noise"]
    assert raised[0].details["noise"]["kind"] == "too_clean"


def test_a_receiver_parked_with_its_own_noise_raises_nothing() -> None:
    eng, rec = engine({"depart_after": T0 + 3 * 3600, "arrive_by": T0 + 6 * 3600})
    rng = random.Random(12)
    tr = Track(t=T0)
    noisy_stay(tr, rng, ROUTE[0], 170, every_s=300, sigma_m=2.0)
    tr.t = T0 + 3 * 3600 + 60
    noisy_drive(tr, rng, end_m=5000, sigma_m=2.0)
    last = tr.readings[-1]
    assert last.lat is not None and last.lon is not None
    noisy_stay(tr, rng, (last.lat, last.lon), 9, every_s=10, sigma_m=2.0)  # a long red light, every 10 s
    noisy_drive(tr, rng, start_m=5000, sigma_m=2.0)
    replay(eng, tr.readings)
    assert rec.raised() == []


# ---- spoofing: replay ----------------------------------------------------------------------------------


def _two_days(second_tracker: str) -> tuple[DetectionEngine, Recorder, list[Reading]]:
    eng, rec = engine(
        {"trip_id": "T-1", "tracker_id": "TRK-1"},
        {
            "trip_id": "T-2",
            "tracker_id": second_tracker,
            "depart_after": T0 + DAY,
            "arrive_by": T0 + DAY + 3 * 3600,
        },
    )
    rng = random.Random(9)
    tr = Track(t=T0 - 3 * 3600)
    noisy_stay(tr, rng, ROUTE[0], 180, every_s=300)  # in the warehouse before departure: its own noise
    tr.t = T0 + 60
    day1 = noisy_drive(tr, rng)
    tr.stay(ROUTE[-1], 10)
    replay(eng, tr.readings)
    return eng, rec, day1


def test_replay_of_yesterdays_trip_on_another_tracker_raises() -> None:
    eng, rec, day1 = _two_days("TRK-2")
    shift = DAY + 600.0
    fake = [
        Reading(tracker_id="TRK-2", ts=r.ts + shift, lat=r.lat, lon=r.lon, seq=r.seq, acc=r.acc, spd=r.spd, hdg=r.hdg)
        for r in day1
    ]
    replay(eng, fake[:40])
    raised = rec.raised(SPOOF)
    assert len(raised) == 1 and raised[0].details["evidence"] == ["replay"]
    d = raised[0].details["replay"]
    assert d["source_tracker"] == "TRK-1" and d["shift_s"] > DAY


def test_replay_of_its_own_earlier_trip_raises() -> None:
    eng, rec, day1 = _two_days("TRK-1")
    shift = DAY + 600.0
    own = [Reading(tracker_id="TRK-1", ts=r.ts + shift, lat=r.lat, lon=r.lon, seq=(r.seq or 0) + 10_000) for r in day1]
    replay(eng, own[:40])
    assert [e.details["evidence"] for e in rec.raised(SPOOF)] == [["replay"]]
    assert rec.raised(SPOOF)[0].details["replay"]["source_tracker"] == "TRK-1"


def test_a_second_honest_trip_on_the_same_road_raises_nothing() -> None:
    eng, rec, _ = _two_days("TRK-1")
    tr = Track(t=T0 + DAY + 60, seq=10_000)
    noisy_drive(tr, random.Random(10))  # the same road, the same speed and interval; new noise
    tr.stay(ROUTE[-1], 10)
    replay(eng, tr.readings)
    assert rec.raised() == []


# ---- snapshot ------------------------------------------------------------------------------------------


def test_snapshot_restore_carries_the_new_state() -> None:
    eng, _ = engine()
    rng = random.Random(11)
    tr = Track(t=T0 + 60)
    noisy_drive(tr, rng, end_m=8000)
    for _ in range(30):
        tr.add(None, None, 10)
    replay(eng, tr.readings)
    st = eng.tracker_state("TRK-1")
    assert st is not None and st.nf_n == 30 and st.rp_win is not None and st.kn_n > 0
    rec2 = Recorder()
    eng2 = DetectionEngine(rec2)
    eng2.set_trips([make_trip(route=ROUTE)])
    eng2.restore(eng.snapshot())
    st2 = eng2.tracker_state("TRK-1")
    assert st2 is not None
    for name in ("nf_ts", "nf_n", "uf_ts", "sq_hi", "kn_spd", "kn_n", "kn_bad", "nz_avg", "nz_base", "nz_bn"):
        a, b = getattr(st2, name), getattr(st, name)
        assert a == b or (a != a and b != b), name  # NaN: unset on both
    assert st2.rp_win == st.rp_win
    # the fix-less time goes on across the restart: 11 more minutes without a fix raise fix_lost once
    for _ in range(66):
        tr.add(None, None, 10)
    replay(eng2, tr.readings[-66:])
    assert len(rec2.raised(FIX_LOST)) == 1 and rec2.raised(SPOOF) == []
