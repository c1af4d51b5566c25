"""Chains of custody in the simulator: seals, linked legs, the way back after counting, the officers'
handovers and their labelled mismatches."""

from __future__ import annotations

from collections import defaultdict

from simulators.custody import seal_numbers, with_early_mismatch
from simulators.scenario import SimConfig, build_scenario


def test_whole_chains_with_returns_and_handovers() -> None:
    sc = build_scenario(
        seed=2, trackers=24, incidents_rate=0.3, config=SimConfig(legs=3, returns=True, handover_mismatch_share=0.2)
    )
    by_crate = defaultdict(list)
    for t in sc.trips:
        by_crate[t.crate_id].append(t)
    for crate, legs in by_crate.items():
        legs.sort(key=lambda t: t.depart_after)
        bodies = [t.body() for t in legs]
        assert [b.get("direction", "outbound") for b in bodies] == ["outbound"] * 3 + ["return"] * 2, crate
        assert [b.get("previous_trip_id") for b in bodies] == [None, *[t.trip_id for t in legs[:-1]]]
        # The way back: TPS -> PPS -> PPK, resealed with the KPPS's own numbers.
        assert legs[3].origin == legs[2].destination and legs[3].destination == legs[2].origin
        assert legs[4].destination == legs[1].origin
        assert bodies[0]["seals"] == bodies[2]["seals"] and bodies[3]["seals"] == bodies[4]["seals"]
        assert all(s.startswith("KPPS-") for s in bodies[3]["seals"]) and bodies[3]["seals"] != bodies[2]["seals"]
    # Counting opens the box at the TPS; it is closed again before the way back.
    opened = 0
    for spec in sc.trackers:
        events = spec.seal_events
        open_after = spec.trips[2].open_after
        opens = [at for at, s in events if s == "open" and open_after and at >= open_after]
        for at in opens:
            opened += 1
            assert any(s == "closed" and at < c < spec.trips[3].depart_after for c, s in events)
    assert opened > 0
    # An officer signs for every trip that reaches its own destination, after it came to rest there.
    signed = {h.trip_id: h for h in sc.handovers}
    reached = [t for t in sc.trips if t.arrival is not None and t.incident != "wrong_destination"]
    assert set(signed) == {t.trip_id for t in reached}
    roles = {h.receiver["role"] for h in sc.handovers}
    assert roles == {"PPK", "PPS", "KPPS"}
    bad = [h for h in sc.handovers if h.kind != "clean"]
    labelled = {e.trip_id: e for e in sc.incidents if e.type == "handover_mismatch"}
    assert bad and {h.trip_id for h in bad} == set(labelled)
    for h in bad:
        trip = next(t for t in sc.trips if t.trip_id == h.trip_id)
        assert trip.incident == "handover_mismatch" and labelled[h.trip_id].window[0] <= h.at
        if h.kind == "wrong_seal":
            assert h.seals != trip.seals and len(h.seals) == len(trip.seals)
        else:
            assert trip.arrival is not None and h.at < trip.arrival
            assert labelled[h.trip_id].also == ("unexpected_movement",)
    for h in sc.handovers:
        if h.kind == "clean":
            trip = next(t for t in sc.trips if t.trip_id == h.trip_id)
            assert trip.arrival is not None and h.at > trip.arrival and h.seals == trip.seals
    # One incident per crate at most.
    per_crate: defaultdict[str, int] = defaultdict(int)
    for e in sc.incidents:
        per_crate[e.crate_id] += 1
    assert max(per_crate.values()) == 1


def test_the_demo_shows_a_wrong_seal_among_the_first_handovers() -> None:
    sc = build_scenario(seed=7, trackers=20, incidents_rate=0.0, config=SimConfig(handover_mismatch_share=0.0))
    assert all(h.kind == "clean" for h in sc.handovers)
    first = with_early_mismatch(sc.handovers)
    assert [h.kind for h in first[:4]].count("wrong_seal") == 1
    assert first[2].seals != sc.handovers[2].seals and first[3:] == sc.handovers[3:]
    assert seal_numbers(0) == ["KPU-3517-0000001", "KPU-3517-0000002"]
