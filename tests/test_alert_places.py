"""`place` on alerts (CONTRACT 2.3, version 2): computed when raised, stored on both backends, returned by the
API with the ?kecamatan= filter and counted per kecamatan."""

from __future__ import annotations

from pathlib import Path

import httpx

from alerts.model import AlertAction, AlertEvent, AlertType
from storage import Database
from tests.api_harness import ApiServer, make_harness

PERAK = (-7.606658, 112.161201)  # desa Jantiganggong, kecamatan Perak
DIWEK = (-7.585, 112.23)  # kecamatan Diwek
SURABAYA = (-7.2575, 112.7521)  # outside the regency


def _raise(kind: AlertType, tracker: str, where: tuple[float, float] | None) -> AlertEvent:
    lat, lon = where if where is not None else (None, None)
    return AlertEvent(action=AlertAction.RAISE, type=kind, tracker_id=tracker, ts=1_732_065_000.0, lat=lat, lon=lon)


def test_alert_places_and_the_kecamatan_filter(tmp_path: Path, database: Database) -> None:
    h = make_harness(tmp_path, database)
    store = h.ctx.alerts
    perak = store.apply(_raise(AlertType.SEAL_BREAK, "TRK-1", PERAK))
    diwek = store.apply(_raise(AlertType.ROUTE_DEVIATION, "TRK-2", DIWEK))
    outside = store.apply(_raise(AlertType.GPS_JUMP, "TRK-3", SURABAYA))
    nowhere = store.apply(_raise(AlertType.SIGNAL_LOST, "TRK-4", None))
    assert perak is not None and diwek is not None and outside is not None and nowhere is not None
    assert perak.place == {
        "kecamatan": "Perak",
        "desa": "Jantiganggong",
        "kecamatan_code": "35.17.01",
        "desa_code": "35.17.01.2001",
    }
    assert diwek.place is not None and diwek.place["kecamatan"] == "Diwek"
    assert outside.place is None and nowhere.place is None

    # The crate moved to Diwek while the condition holds: the place follows the position; no position keeps it.
    moved = store.apply(_raise(AlertType.SEAL_BREAK, "TRK-1", DIWEK).model_copy(update={"ts": 1_732_065_100.0}))
    assert moved is not None and moved.id == perak.id and moved.place and moved.place["kecamatan"] == "Diwek"
    kept = store.apply(_raise(AlertType.SEAL_BREAK, "TRK-1", None).model_copy(update={"ts": 1_732_065_200.0}))
    assert kept is not None and kept.place and kept.place["kecamatan"] == "Diwek"

    assert store.open_by_kecamatan() == {"Diwek": 2}
    with ApiServer(h.app) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:

        def ids(**params: object) -> set[str]:
            r = client.get("/api/v1/alerts", params=params, headers=h.headers("viewer"))  # type: ignore[arg-type]
            assert r.status_code == 200, r.text
            return {a["id"] for a in r.json()["items"]}

        assert ids(kecamatan="Diwek") == {perak.id, diwek.id}
        assert ids(kecamatan="diwek ") == {perak.id, diwek.id}  # any case
        assert ids(kecamatan="35.17.08") == {perak.id, diwek.id}  # by area code
        assert ids(kecamatan=["Perak", "Gudo"]) == set()
        assert ids(kecamatan="Atlantis") == set()
        assert ids() == {perak.id, diwek.id, outside.id, nowhere.id}
        one = client.get(f"/api/v1/alerts/{diwek.id}", headers=h.headers("viewer")).json()
        assert one["place"]["kecamatan"] == "Diwek" and one["place"]["desa"]
        assert client.get(f"/api/v1/alerts/{outside.id}", headers=h.headers("viewer")).json()["place"] is None


def test_alerts_stored_before_places_get_theirs(tmp_path: Path, database: Database) -> None:
    h = make_harness(tmp_path, database)
    a = h.ctx.alerts.apply(_raise(AlertType.LOW_BATTERY, "TRK-9", PERAK))
    assert a is not None
    with database.write() as c:  # as an alert stored by a release without places
        c.execute("UPDATE alerts SET place = NULL, kecamatan = NULL WHERE id = ?", (a.id,))
    assert h.ctx.alerts.get(a.id).place is None  # type: ignore[union-attr]
    assert h.ctx.alerts.fill_places() == 1 and h.ctx.alerts.fill_places() == 0
    got = h.ctx.alerts.get(a.id)
    assert got is not None and got.place is not None and got.place["desa"] == "Jantiganggong"
    assert h.ctx.alerts.list(kecamatan=["Perak"])[0].id == a.id
