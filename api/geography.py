"""The fleet per kecamatan: crates by where they are, open alerts by their place (the dashboard's map)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from api.schemas import CRATE_STATES, KecamatanCount
from kawal.places import Place, Places


class Located(Protocol):
    @property
    def state(self) -> str: ...

    @property
    def place(self) -> Place | None: ...


def kecamatan_counts(crates: Iterable[Located], places: Places, open_alerts: dict[str, int]) -> list[KecamatanCount]:
    """Every kecamatan of `places` by code (zeros included, so a map can shade them all), then one row
    with `kecamatan: null` for crates without a place, when there are any."""
    by_name = {
        a.name: KecamatanCount(
            kecamatan=a.name,
            code=a.code,
            crates=0,
            by_state=dict.fromkeys(CRATE_STATES, 0),
            open_alerts=open_alerts.get(a.name, 0),
        )
        for a in places.kecamatan
    }
    nowhere = KecamatanCount(
        kecamatan=None, code=None, crates=0, by_state=dict.fromkeys(CRATE_STATES, 0), open_alerts=0
    )
    for c in crates:
        row = by_name.get(c.place["kecamatan"], nowhere) if c.place is not None else nowhere
        row.crates += 1
        row.by_state[c.state] += 1
    # Alerts placed in a kecamatan the boundaries no longer have (KAWAL_BOUNDARIES changed) keep a row.
    extra = [
        KecamatanCount(kecamatan=name, code=None, crates=0, by_state=dict.fromkeys(CRATE_STATES, 0), open_alerts=n)
        for name, n in sorted(open_alerts.items())
        if name not in by_name
    ]
    rows = [*by_name.values(), *extra]
    return [*rows, nowhere] if nowhere.crates else rows
