"""Detection quality, end to end: a labelled fleet through the real broker and `kawal serve` (event clock),
scored against the ground truth. Also the scoring rules themselves, on hand-made alerts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kawal.timeutil import rfc3339
from simulators.cli import evaluate
from simulators.evaluate import quality_failures, run_evaluation, score
from simulators.register import RegistrationError, register_trips
from simulators.scenario import SimConfig, TruthEvent
from tests.servers import KawalServer, Mosquitto


def _truth(
    id_: str,
    type_: str,
    tracker: str,
    trip: str,
    start: float,
    end: float,
    also: tuple[str, ...] = (),
    expect: bool = True,
) -> TruthEvent:
    return TruthEvent(
        id=id_,
        type=type_,
        tracker_id=tracker,
        trip_id=trip,
        crate_id="C",
        start=start,
        end=end,
        window=(start - 60, end),
        expect_alert=expect,
        also=also,
        also_window=(start - 600, end + 3600) if also else None,
    )


def _alert(id_: str, type_: str, tracker: str, trip: str | None, ts: float, raised: float = 2e9) -> dict[str, object]:
    return {
        "id": id_,
        "type": type_,
        "tracker_id": tracker,
        "trip_id": trip,
        "ts": rfc3339(ts),
        "raised_at": rfc3339(raised),
        "details": {},
    }


def test_scoring_rules() -> None:
    t0 = 1_732_500_000.0
    truth = [
        _truth("I1", "seal_break", "A", "A-L1", t0, t0),
        _truth("I2", "wrong_destination", "B", "B-L1", t0, t0 + 1800, also=("overdue",)),
        _truth("I3", "route_deviation", "C", "C-L1", t0, t0 + 600),
        _truth("B1", "allowed_stop", "D", "D-L1", t0, t0 + 900, expect=False),
    ]
    alerts = [
        _alert("a1", "seal_break", "A", "A-L1", t0, raised=t0 + 0.25),  # detects I1
        _alert("a2", "wrong_destination", "B", "B-L1", t0 + 120),  # detects I2
        _alert("a3", "overdue", "B", "B-L1", t0 + 3000),  # a consequence of I2: neither required nor false
        _alert("a4", "wrong_destination", "B", "B-L1", t0 + 1500),  # a second alert for I2: duplicate
        _alert("a5", "unscheduled_stop", "D", "D-L1", t0 + 700),  # on a clean trip, at an allowed stop: false
        _alert("a6", "route_deviation", "C", "C-L1", t0 + 4000),  # outside I3's window: false, I3 missed
    ]
    ev = score(alerts, truth, trips=4, clean_trip_ids={"D-L1"}, first_publish={"I1": t0})
    s = ev.scores
    assert (s["seal_break"].detected, s["seal_break"].recall, s["seal_break"].precision) == (1, 1.0, 1.0)
    assert ev.seal_latency == [0.25]
    assert s["wrong_destination"].duplicates == 1 and s["wrong_destination"].precision == 1.0
    assert s["overdue"].consequences == 1 and s["overdue"].alerts == 0
    assert s["route_deviation"].recall == 0.0 and s["route_deviation"].false_alerts == 1
    assert [m.id for m in ev.missed] == ["I3"]
    assert ev.false_on_clean == 1 and ev.false_per_100_clean == 100.0
    fa = next(a for a in ev.false_alerts if a["id"] == "a5")
    assert fa["context"]["near_benign"][0]["type"] == "allowed_stop"
    assert ev.delays["wrong_destination"] == [120.0]
    failures = quality_failures(ev)
    assert any("route_deviation" in f for f in failures) and any("clean trips" in f for f in failures)


def test_detection_quality_end_to_end(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer], tmp_path: Path
) -> None:
    """30 crates, 60 trips, 18 incidents (two of each type) replayed as fast as the broker acknowledges."""
    srv = kawal_factory(env={"KAWAL_CLOCK": "event", "KAWAL_MQTT_URL": mosquitto.url})
    out = tmp_path / "report"
    ev, sc = run_evaluation(
        trackers=30,
        seed=5,
        incidents_rate=0.6,
        config=SimConfig(prefix="CI"),
        api_url=srv.base_url,
        mqtt_url=mosquitto.url,
        token=srv.admin_token,
        out_dir=out,
        ingest_timeout=120,
    )
    assert ev.meta["stored"] == ev.meta["unique_readings"]  # nothing lost on the way
    assert {e.type for e in sc.incidents} == {t for t, s in ev.scores.items() if s.incidents}  # all exercised
    # other rows are consequences only (fix_lost after a jammer that also silenced the modem), never false
    assert all(s.false_alerts == 0 for t, s in ev.scores.items() if not s.incidents)
    evidence = json.dumps(
        {
            "failures": quality_failures(ev),
            "missed": [m.to_json() for m in ev.missed],
            "false_alerts": ev.false_alerts,
        },
        indent=1,
        default=str,
    )
    assert ev.scores["seal_break"].recall == 1.0, evidence
    assert ev.false_on_clean == 0, evidence
    for t, s in ev.scores.items():
        if s.incidents:
            assert s.recall is not None and s.recall >= 0.9, f"{t}: {evidence}"
    assert (out / "report.md").read_text().startswith("# Kawal detection-quality evaluation")
    assert {p.name for p in out.glob("*.png")} >= {"scores.png", "delay.png", "seal_latency.png"}
    assert len(ev.seal_latency) == ev.scores["seal_break"].detected  # measured for every seal break found
    # A refused trip is a clear error naming the trip and quoting the API's reason.
    trip_id, body = sc.trip_bodies()[0]
    with pytest.raises(RegistrationError, match=f"{trip_id} refused with 422"):
        register_trips(srv.base_url, srv.admin_token, [(trip_id, {**body, "route": [[-7.5, 112.2]]})])


def test_evaluate_command_with_its_own_service(tmp_path: Path) -> None:
    """`kawal evaluate --check` starts a private Kawal (embedded broker), scores and writes the report."""
    out = tmp_path / "eval"
    r = CliRunner().invoke(
        evaluate,
        [
            "--trackers",
            "12",
            "--seed",
            "3",
            "--incidents",
            "0.75",
            "--legs",
            "1",
            "--broker",
            "embedded",
            "--incident-types",
            "seal_break,route_deviation,gps_jump",
            "--no-progress",
            "--out",
            str(out),
            "--check",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "| seal_break | 3 | 3 | 100 % |" in r.stdout
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["false_on_clean"] == 0 and summary["per_type"]["route_deviation"]["recall"] == 1.0
    assert (out / "truth.jsonl").exists() and (out / "alerts.json").exists()
