"""Detection quality: run a labelled fleet through Kawal and score the alerts against the ground truth.

`run_evaluation(...)` starts a private Kawal (or uses a given one), registers the trips, publishes the
fleet, waits until every distinct reading is stored, fetches the alerts and calls `score()`:

- an alert of an incident's type, on its tracker, with `ts` inside the incident's window, detects it
  (the first such alert; later ones count as duplicates);
- an alert of a type the incident legitimately causes (`also`, e.g. `overdue` after a wrong delivery)
  is a consequence: neither required nor false;
- any other alert is false. False alerts on clean trips (trips without an incident) are reported per 100
  clean trips, each with the benign event it sat on, if any (an allowed stop, a dead zone, ...).

Per type: precision (alerts that match an incident / alerts), recall (incidents detected / incidents), F1.
Detection delay is alert `ts` minus incident start (event time); seal-break latency is the alert's
`raised_at` minus the wall time its first open/tampered reading was published.
`write_report()` (simulators/eval_report.py) writes Markdown and PNG plots (matplotlib, Agg backend);
`score()` is in simulators/scoring.py.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

from alerts.model import AlertType
from kawal.timeutil import parse_time
from simulators.custody import HandoverPoster
from simulators.eval_report import plot, to_markdown, write_report
from simulators.publish import Publisher, PublishStats
from simulators.register import register_trips
from simulators.scenario import Scenario, SimConfig, build_scenario, utc_iso
from simulators.scoring import Evaluation, SimClock, TypeScore, quality_failures, score

# Scoring and the report live in their own modules; their names stay importable from here.
__all__ = [
    "DEFAULT_MAX_RATE",
    "Evaluation",
    "SimClock",
    "TypeScore",
    "fetch_alerts",
    "plot",
    "quality_failures",
    "run_evaluation",
    "score",
    "stored_readings",
    "to_markdown",
    "wait_stored",
    "write_report",
]

PAGE = 1000  # the API's maximum `limit`
# Messages per second during an evaluation: well under what one Kawal ingests on a small machine
# (about 5,000/s measured), so the service follows the feed as it would live. Uncapped (None), a service
# that falls behind gets its backlog in large batches: a harder, different test (docs/evaluation.md).
DEFAULT_MAX_RATE = 1500.0


# ----- talking to the service ----------------------------------------------------------------------------
def _get(client: httpx.Client, path: str, params: Sequence[tuple[str, str | int]] = ()) -> Any:
    r = client.get(path, params=list(params))
    if r.status_code != 200:
        raise RuntimeError(f"GET {path} answered {r.status_code}: {r.text[:300]}")
    return r.json()


def fetch_alerts(
    api_url: str,
    token: str,
    *,
    since: float | None = None,
    tracker_ids: Iterable[str] | None = None,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Every alert (all statuses), paging within the API's `limit` cap by splitting on type, then tracker.

    The list is newest first and has no offset, so a full page means "there may be more": the query is
    narrowed (per type, then per type and tracker) until every page is partial.
    """
    base: list[tuple[str, str | int]] = [("limit", PAGE)]
    if since is not None:
        base.append(("since", utc_iso(since)))
    wanted = set(tracker_ids) if tracker_ids is not None else None
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(
        base_url=api_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    ) as client:
        items = _get(client, "/api/v1/alerts", base)["items"]
        if len(items) < PAGE:
            pages = [items]
        else:
            pages = []
            for t in (str(a) for a in AlertType):  # every type, the version 2 ones (fix_lost, ...) included
                typed = _get(client, "/api/v1/alerts", [*base, ("type", t)])["items"]
                if len(typed) < PAGE:
                    pages.append(typed)
                    continue
                if wanted is None:
                    raise RuntimeError(f"more than {PAGE} {t} alerts: pass tracker_ids to page per tracker")
                for tid in sorted(wanted):
                    pages.append(_get(client, "/api/v1/alerts", [*base, ("type", t), ("tracker_id", tid)])["items"])
        for page in pages:
            for a in page:
                if wanted is None or a.get("tracker_id") in wanted:
                    out[a["id"]] = a
    return sorted(out.values(), key=lambda a: (parse_time(a["raised_at"]), a["id"]))


def stored_readings(api_url: str) -> float:
    """kawal_readings_stored_total from /metrics (no token needed)."""
    r = httpx.get(f"{api_url.rstrip('/')}/metrics", timeout=10.0)
    r.raise_for_status()
    for line in r.text.splitlines():
        if line.startswith("kawal_readings_stored_total"):
            return float(line.split()[-1])
    return 0.0


def wait_stored(api_url: str, target: float, timeout: float, settle_s: float = 3.0) -> float:
    """Wait until the service has stored `target` readings; then a few ticks more for time-driven checks."""
    deadline = time.monotonic() + timeout
    n = stored_readings(api_url)
    while n < target and time.monotonic() < deadline:
        time.sleep(0.2)
        n = stored_readings(api_url)
    time.sleep(settle_s)
    return n


# ----- the whole run ---------------------------------------------------------------------------------
def run_evaluation(
    *,
    trackers: int = 60,
    seed: int = 1,
    incidents_rate: float = 0.5,
    config: SimConfig | None = None,
    start: float | str | None = None,
    speedup: float = 0.0,
    max_rate: float | None = DEFAULT_MAX_RATE,
    api_url: str | None = None,
    mqtt_url: str | None = None,
    token: str | None = None,
    broker: str = "auto",
    out_dir: Path | None = None,
    progress: bool = False,
    connections: int = 1,
    ingest_timeout: float = 300.0,
    workdir: Path | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[Evaluation, Scenario]:
    """Simulate, publish, collect and score. Starts a private Kawal unless api_url and mqtt_url are given
    (that service must run with KAWAL_CLOCK=event and must not have seen newer readings)."""
    from simulators.harness import LocalKawal

    config = config or SimConfig(prefix=f"EV{seed}")
    scenario = build_scenario(seed=seed, trackers=trackers, incidents_rate=incidents_rate, start=start, config=config)
    log(f"scenario: {json.dumps(scenario.summary())}")
    tmp = None
    service = None
    if api_url is None or mqtt_url is None:
        if workdir is None:
            tmp = tempfile.TemporaryDirectory(prefix="kawal-eval-")
            workdir = Path(tmp.name)
        service = LocalKawal(workdir, broker=broker).start()  # type: ignore[arg-type]
        api_url, mqtt_url, token = service.api_url, service.mqtt_url, service.token
        log(f"started kawal at {api_url} on {service.broker_kind} {mqtt_url}")
    if not token:
        raise ValueError("an admin token is needed to register trips (--token)")
    try:
        baseline = stored_readings(api_url)
        wall_start = time.time()
        n = register_trips(api_url, token, scenario.trip_bodies())
        log(f"registered {n} trips")
        sim_clock = SimClock()
        officers = HandoverPoster(api_url, token, scenario.handovers)

        def on_publish(msg: Any, wall: float) -> None:
            sim_clock.on_publish(msg, wall)
            officers.on_publish(msg, wall)

        stats: PublishStats = Publisher(
            mqtt_url, speedup=speedup, progress=progress, connections=connections, max_rate=max_rate
        ).publish_scenario(scenario, on_publish=on_publish)
        officers.finish()
        log(f"published {stats.messages} messages in {stats.wall_s:.1f} s; {officers.posted} handovers")
        got = wait_stored(api_url, baseline + stats.unique_readings, ingest_timeout)
        if got < baseline + stats.unique_readings:
            log(f"warning: only {got - baseline:.0f} of {stats.unique_readings} readings stored in time")
        alerts = fetch_alerts(
            api_url, token, since=wall_start - 5, tracker_ids=[t.tracker_id for t in scenario.trackers]
        )
    finally:
        if service is not None:
            service.stop()
        if tmp is not None:
            tmp.cleanup()
    ev = score(
        alerts,
        scenario.truth,
        len(scenario.trips),
        {t.trip_id for t in scenario.clean_trips},
        stats.first_publish,
        sim_clock,
    )
    cfg = scenario.config
    ev.meta = {
        "trackers": trackers,
        "seed": seed,
        "incidents_rate": incidents_rate,
        "legs": cfg.legs,
        "interval_s": f"{cfg.interval_s[0]}–{cfg.interval_s[1]}"
        if cfg.interval_s[0] != cfg.interval_s[1]
        else cfg.interval_s[0],
        "sim_start": utc_iso(scenario.start),
        "sim_end": utc_iso(scenario.end),
        "service": "private (KAWAL_CLOCK=event)" if service is not None else api_url,
        "broker": service.broker_kind if service is not None else mqtt_url,
        "messages": stats.messages,
        "unique_readings": stats.unique_readings,
        "publish_s": round(stats.wall_s, 1),
        "messages_per_s": round(stats.rate),
        "speedup": speedup,
        "max_rate": max_rate,
        "stored": got - baseline,
        "skipped_incident_types": scenario.skipped,
    }
    if out_dir is not None:
        write_report(ev, out_dir)
        with open(out_dir / "alerts.json", "w", encoding="utf-8") as f:
            json.dump(alerts, f, indent=1)
        scenario.write_truth(out_dir / "truth.jsonl")
    return ev, scenario
