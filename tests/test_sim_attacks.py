"""Simulated attacks as labelled incidents: each raises its alert in the engine, the benign reboot and the
clean trips raise nothing (in-process, the fleet's messages fed as the ingest worker would)."""

from __future__ import annotations

import functools

from anomaly.engine import DetectionEngine
from anomaly.tracks import Recorder
from devices.decode import decode_message
from kawal.trips import Trip
from simulators.attacks import attack_summary
from simulators.scenario import Scenario, SimConfig, build_scenario


@functools.cache
def run() -> tuple[Scenario, Recorder]:
    sc = build_scenario(seed=1, trackers=120, incidents_rate=0.3, config=SimConfig(prefix="AT", legs=2, attacks=2))
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([Trip.model_validate({**b, "trip_id": t}) for t, b in sc.trip_bodies()])
    seen: set[tuple[str, float, int]] = set()
    now = float("-inf")
    for m in sc.messages():
        d = decode_message(m.topic, m.payload, sc.end + 86_400)
        fresh = [r for r in d.readings if r.dedup_key not in seen]
        seen.update(r.dedup_key for r in fresh)
        if fresh:
            now = max(now, max(r.ts for r in fresh))
            eng.process(fresh)
        if d.status is not None and d.tracker_id:
            eng.on_status(d.tracker_id, d.status, m.at)
        eng.tick(now)
    eng.tick(now + 7200)
    return sc, rec


def test_attacks_are_planned_as_labelled_incidents() -> None:
    sc, _ = run()
    kinds = attack_summary(sc)
    assert kinds == {"jamming": 2, "replay": 2, "route_spoof": 2, "gps_simulator": 2, "tracker_reboot": 2}
    labelled = [e for e in sc.truth if "attack" in e.details]
    assert {e.type for e in labelled if e.expect_alert} <= {"fix_lost", "spoofing_suspected"}
    assert all(not e.expect_alert for e in labelled if e.details["attack"] == "tracker_reboot")


def test_every_attack_raises_its_alert() -> None:
    sc, rec = run()
    evidence = {"replay": "replay", "route_spoof": "kinematics", "gps_simulator": "noise"}
    for e in sc.truth:
        if e.expect_alert and "attack" in e.details:
            hits = [
                a
                for a in rec.raised()
                if a.tracker_id == e.tracker_id and str(a.type) == e.type and e.window[0] <= a.ts <= e.window[1]
            ]
            assert hits, e
            if e.details["attack"] in evidence:
                assert evidence[e.details["attack"]] in hits[0].details["evidence"], hits[0]


def test_a_reboot_and_the_clean_trips_raise_nothing() -> None:
    sc, rec = run()
    attacked = {e.tracker_id for e in sc.truth if e.expect_alert}
    rebooted = {e.tracker_id for e in sc.truth if e.details.get("attack") == "tracker_reboot"}
    assert rebooted
    assert [(a.tracker_id, str(a.type)) for a in rec.raised() if a.tracker_id not in attacked] == []
