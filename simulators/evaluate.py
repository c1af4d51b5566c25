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
`write_report()` writes Markdown and PNG plots (matplotlib, Agg backend).
"""

from __future__ import annotations

import bisect
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from alerts.model import AlertType
from kawal.timeutil import parse_time
from simulators.custody import HandoverPoster
from simulators.publish import Publisher, PublishStats
from simulators.register import register_trips
from simulators.scenario import INCIDENT_TYPES, Scenario, SimConfig, TruthEvent, build_scenario, utc_iso

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


class SimClock:
    """Wall time -> the simulated time being published then (samples taken while publishing)."""

    def __init__(self, every: int = 25) -> None:
        self.every = every
        self.wall: list[float] = []
        self.sim: list[float] = []
        self._n = 0

    def on_publish(self, msg: Any, wall: float) -> None:
        self._n += 1
        if self._n % self.every == 1 or self.every == 1:
            self.wall.append(wall)
            self.sim.append(msg.at)

    def sim_at(self, wall: float) -> float | None:
        """An upper bound of the simulated time reached at `wall` (the end, once publishing is over)."""
        if not self.wall:
            return None
        i = bisect.bisect_right(self.wall, wall)
        return self.sim[min(i, len(self.sim) - 1)]


# ----- scoring ---------------------------------------------------------------------------------------
@dataclass
class TypeScore:
    type: str
    incidents: int = 0
    detected: int = 0
    alerts: int = 0  # alerts of this type, consequences excluded
    matched_alerts: int = 0  # alerts that match an incident (duplicates included)
    duplicates: int = 0
    false_alerts: int = 0
    consequences: int = 0

    @property
    def precision(self) -> float | None:
        return self.matched_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)


@dataclass
class Evaluation:
    scores: dict[str, TypeScore]
    delays: dict[str, list[float]]  # type -> alert ts - incident start, seconds
    seal_latency: list[float]  # seconds, raised_at - publish wall time
    false_alerts: list[dict[str, Any]]  # alert + "context"
    missed: list[TruthEvent]
    trips: int
    clean_trips: int
    false_on_clean: int
    alerts_total: int
    meta: dict[str, Any] = field(default_factory=dict)
    # type -> simulated time the feed had reached when the alert was raised, minus incident start (seconds)
    time_to_alert: dict[str, list[float]] = field(default_factory=dict)

    @property
    def false_per_100_clean(self) -> float:
        return 100.0 * self.false_on_clean / self.clean_trips if self.clean_trips else 0.0

    def recall(self, type_: str) -> float | None:
        return self.scores[type_].recall

    def summary(self) -> dict[str, Any]:
        return {
            "per_type": {
                t: {
                    "incidents": s.incidents,
                    "detected": s.detected,
                    "alerts": s.alerts,
                    "false": s.false_alerts,
                    "duplicates": s.duplicates,
                    "consequences": s.consequences,
                    "precision": s.precision,
                    "recall": s.recall,
                    "f1": s.f1,
                }
                for t, s in self.scores.items()
            },
            "trips": self.trips,
            "clean_trips": self.clean_trips,
            "false_on_clean": self.false_on_clean,
            "false_per_100_clean_trips": round(self.false_per_100_clean, 2),
            "alerts": self.alerts_total,
            "missed": [m.to_json() for m in self.missed],
            "false_alerts": self.false_alerts,
            "delay_s": {t: _describe(v) for t, v in self.delays.items() if v},
            "seal_latency_s": _describe(self.seal_latency),
            "time_to_alert_s": {t: _describe(v) for t, v in self.time_to_alert.items() if v},
            "meta": self.meta,
        }


def _describe(xs: Sequence[float]) -> dict[str, float] | None:
    if not xs:
        return None
    s = sorted(xs)
    return {
        "n": len(s),
        "min": round(s[0], 3),
        "p50": round(statistics.median(s), 3),
        "p95": round(s[min(len(s) - 1, int(0.95 * len(s)))], 3),
        "max": round(s[-1], 3),
    }


def score(
    alerts: Sequence[dict[str, Any]],
    truth: Sequence[TruthEvent],
    trips: int,
    clean_trip_ids: set[str],
    first_publish: dict[str, float] | None = None,
    sim_clock: SimClock | None = None,
) -> Evaluation:
    """Match alerts against the ground truth (see the module docstring).

    sim_clock maps wall time to the simulated time being published then; with it, each detected
    incident also gets its time to alert in simulated time.
    """
    first_publish = first_publish or {}
    time_to_alert: dict[str, list[float]] = {}
    incidents = [e for e in truth if e.expect_alert]
    benign = [e for e in truth if not e.expect_alert]
    with_incident = {e.tracker_id for e in incidents}
    scores = {t: TypeScore(t) for t in INCIDENT_TYPES}
    for e in incidents:
        scores.setdefault(e.type, TypeScore(e.type)).incidents += 1
    detected: dict[str, dict[str, Any]] = {}
    delays: dict[str, list[float]] = {t: [] for t in scores}
    seal_latency: list[float] = []
    false_alerts: list[dict[str, Any]] = []
    false_on_clean = 0
    by_tracker: dict[str, list[TruthEvent]] = {}
    for e in incidents:
        by_tracker.setdefault(e.tracker_id, []).append(e)
    for a in sorted(alerts, key=lambda a: (parse_time(a["ts"]), a["id"])):
        type_ = str(a["type"])
        sc = scores.setdefault(type_, TypeScore(type_))
        ts = parse_time(a["ts"])
        mine = by_tracker.get(a["tracker_id"], [])
        hits = [e for e in mine if e.type == type_ and e.window[0] <= ts <= e.window[1]]
        if hits:
            e = min(hits, key=lambda e: abs(ts - e.start))
            sc.alerts += 1
            sc.matched_alerts += 1
            if e.id in detected:
                sc.duplicates += 1
                continue
            detected[e.id] = a
            sc.detected += 1
            delays[type_].append(ts - e.start)
            if sim_clock is not None:
                at = sim_clock.sim_at(parse_time(a["raised_at"]))
                if at is not None:
                    time_to_alert.setdefault(type_, []).append(at - e.start)
            if type_ == "seal_break" and e.id in first_publish:
                seal_latency.append(parse_time(a["raised_at"]) - first_publish[e.id])
            continue
        if any(type_ in e.also and e.also_window and e.also_window[0] <= ts <= e.also_window[1] for e in mine):
            sc.consequences += 1
            continue
        sc.alerts += 1
        sc.false_alerts += 1
        near = [b for b in benign if b.tracker_id == a["tracker_id"] and b.start - 900 <= ts <= b.end + 900]
        context = {
            "clean_trip": (a.get("trip_id") in clean_trip_ids)
            or (a.get("trip_id") is None and a["tracker_id"] not in with_incident),
            "near_benign": [{"type": b.type, "start": utc_iso(b.start), "id": b.id} for b in near],
            "tracker_incidents": [{"type": e.type, "trip_id": e.trip_id, "start": utc_iso(e.start)} for e in mine],
        }
        if context["clean_trip"]:
            false_on_clean += 1
        false_alerts.append({**a, "context": context})
    missed = [e for e in incidents if e.id not in detected]
    ev = Evaluation(
        scores,
        delays,
        seal_latency,
        false_alerts,
        missed,
        trips,
        len(clean_trip_ids),
        false_on_clean,
        len(alerts),
    )
    ev.time_to_alert = time_to_alert
    return ev


def quality_failures(ev: Evaluation, min_recall: float = 0.9) -> list[str]:
    """The minimum bar: every seal break found, no false alert on a clean trip, other recall >= min."""
    out: list[str] = []
    for t, s in ev.scores.items():
        r = s.recall
        if r is None:
            continue
        need = 1.0 if t == "seal_break" else min_recall
        if r < need:
            missed = [e.id for e in ev.missed if e.type == t]
            out.append(f"{t}: recall {r:.2f} < {need:.2f} (missed {', '.join(missed)})")
    if ev.false_on_clean:
        kinds = sorted({a["type"] for a in ev.false_alerts if a["context"]["clean_trip"]})
        out.append(f"{ev.false_on_clean} false alert(s) on clean trips ({', '.join(kinds)})")
    return out


# ----- report ----------------------------------------------------------------------------------------
def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.0f} %" if pct else f"{x:.2f}"


def _pace(m: dict[str, Any]) -> str:
    speed = f"{m['speedup']:g} × real time" if m.get("speedup") else "as fast as the broker acknowledged"
    cap = f", capped at {m['max_rate']:g} messages/s" if m.get("max_rate") else ", no rate cap"
    return speed + cap


def _distribution_table(by_type: dict[str, list[float]], cell: Callable[[float], str]) -> list[str]:
    """A Markdown table of n, min, median, p95 and max per type (types without values left out)."""
    rows = ["| type | n | min | median | p95 | max |", "|---|---:|---:|---:|---:|---:|"]
    for t, xs in by_type.items():
        d = _describe(xs)
        if d:
            rows.append(f"| {t} | {d['n']} | " + " | ".join(cell(d[k]) for k in ("min", "p50", "p95", "max")) + " |")
    return rows


def to_markdown(ev: Evaluation, images: dict[str, str] | None = None) -> str:
    m = ev.meta
    lines = ["# Kawal detection-quality evaluation", ""]
    if m:
        lines += [
            f"Fleet: {m.get('trackers')} trackers, {ev.trips} trips ({ev.clean_trips} clean), "
            f"seed {m.get('seed')}, incident rate {m.get('incidents_rate')}, legs {m.get('legs')}, "
            f"report interval {m.get('interval_s')} s. Simulated {m.get('sim_start')} to {m.get('sim_end')}.",
            f"Service: {m.get('service')}; broker: {m.get('broker')}; published {m.get('messages')} messages "
            f"({m.get('unique_readings')} distinct readings) in {m.get('publish_s')} s "
            f"({m.get('messages_per_s')} msg/s: {_pace(m)}).",
            "",
        ]
    lines += [
        "## Per alert type",
        "",
        "| type | incidents | detected | recall | alerts | false | duplicates | consequences | precision | F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, s in ev.scores.items():
        lines.append(
            f"| {t} | {s.incidents} | {s.detected} | {_fmt(s.recall, True)} | {s.alerts} | {s.false_alerts} "
            f"| {s.duplicates} | {s.consequences} | {_fmt(s.precision, True)} | {_fmt(s.f1)} |"
        )
    lines += [
        "",
        f"**False alerts on clean trips:** {ev.false_on_clean} "
        f"({ev.false_per_100_clean:.2f} per 100 clean trips); false alerts in all: {len(ev.false_alerts)}.",
        "",
    ]
    lines += ["## Detection delay (alert ts − incident start, event time)", ""]
    lines += _distribution_table(ev.delays, lambda x: f"{x:.0f} s")
    if ev.time_to_alert:
        lines += [
            "",
            "## Time to alert (simulated time reached when the alert was raised − incident start)",
            "",
            "It includes what each rule must wait for (10 min for a stop, 15 min of silence) and is an upper",
            "bound: the feed's position when the alert appeared, sampled every 25 messages.",
            "",
        ]
        lines += _distribution_table(ev.time_to_alert, lambda x: f"{x / 60:.1f} min")
    d = _describe(ev.seal_latency)
    lines += ["", "## Seal-break alert latency (raised_at − publish wall time)", ""]
    lines.append("`raised_at` has millisecond resolution (truncated), so a latency under 1 ms can read as 0 or −1 ms.")
    lines.append(
        f"n = {d['n']}, median {1000 * d['p50']:.0f} ms, p95 {1000 * d['p95']:.0f} ms, max {1000 * d['max']:.0f} ms."
        if d
        else "No seal-break alert was matched."
    )
    if m.get("speedup") == 0 and not m.get("max_rate"):
        lines.append(
            "Measured while the fleet was published as fast as the broker acknowledged, so it includes "
            "any ingest backlog; a paced run measures the latency of a live tracker."
        )
    if images:
        lines += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in images.items()]
    if ev.missed:
        lines += [
            "",
            "## Missed incidents",
            "",
            "| id | type | tracker | trip | start | details |",
            "|---|---|---|---|---|---|",
        ]
        for e in ev.missed:
            lines.append(
                f"| {e.id} | {e.type} | {e.tracker_id} | {e.trip_id} | {utc_iso(e.start)} | "
                f"{json.dumps(e.details, ensure_ascii=False)} |"
            )
    if ev.false_alerts:
        lines += [
            "",
            "## False alerts",
            "",
            "| type | tracker | trip | ts | clean trip | near | details |",
            "|---|---|---|---|---|---|---|",
        ]
        for a in ev.false_alerts[:200]:
            c = a["context"]
            near = ", ".join(b["type"] for b in c["near_benign"]) or "–"
            lines.append(
                f"| {a['type']} | {a['tracker_id']} | {a.get('trip_id')} | {a['ts']} | {c['clean_trip']} | "
                f"{near} | {json.dumps(a.get('details', {}), ensure_ascii=False)[:200]} |"
            )
    return "\n".join(lines) + "\n"


def _mpl_version() -> tuple[int, int]:
    import matplotlib

    major, minor = matplotlib.__version__.split(".")[:2]
    return int(major), int(minor)


def _box(plt: Any, data: dict[str, list[float]], xlabel: str, title: str, path: Path) -> None:
    """A horizontal box plot per alert type, with every value as a dot."""
    fig, ax = plt.subplots(figsize=(9, 4))
    names = list(data)
    horizontal: dict[str, Any] = {"orientation": "horizontal"} if _mpl_version() >= (3, 10) else {"vert": False}
    ax.boxplot([data[n] for n in names], whis=(0, 100), **horizontal)
    for i, n in enumerate(names):
        ax.scatter(data[n], [i + 1] * len(data[n]), s=10, alpha=0.6)
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot(ev: Evaluation, out_dir: Path) -> dict[str, str]:
    """PNG plots next to the report; returns {title: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    types = [t for t, s in ev.scores.items() if s.incidents or s.alerts]
    if types:
        fig, ax = plt.subplots(figsize=(9, 4))
        w = 0.27
        for k, (name, get) in enumerate(
            (("precision", lambda s: s.precision), ("recall", lambda s: s.recall), ("F1", lambda s: s.f1))
        ):
            vals = [get(ev.scores[t]) for t in types]
            ax.bar(
                [i + (k - 1) * w for i in range(len(types))],
                [v if v is not None else 0 for v in vals],
                w,
                label=name,
            )
        ax.set_xticks(range(len(types)), types, rotation=30, ha="right")
        ax.set_title("Precision, recall and F1 per alert type")
        ax.set_ylim(0, 1.18)
        ax.legend(loc="upper center", ncol=3, frameon=False)
        fig.tight_layout()
        fig.savefig(out_dir / "scores.png", dpi=90)
        plt.close(fig)
        out["Precision, recall and F1"] = "scores.png"
    for key, series, label, title, name in (
        ("Detection delay", ev.delays, "alert ts − incident start", "Detection delay", "delay.png"),
        (
            "Time to alert",
            ev.time_to_alert,
            "simulated time at raise − incident start",
            "Time to alert",
            "time_to_alert.png",
        ),
    ):
        data = {t: [x / 60 for x in v] for t, v in series.items() if v}
        if data:
            _box(plt, data, f"{label} (minutes, event time)", title, out_dir / name)
            out[key] = name
    if ev.seal_latency:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist([1000 * x for x in ev.seal_latency], bins=min(30, max(5, len(ev.seal_latency))))
        ax.set_xlabel("raised_at − publish time (ms, wall clock)")
        ax.set_ylabel("seal breaks")
        ax.set_title("Seal-break alert latency")
        fig.tight_layout()
        fig.savefig(out_dir / "seal_latency.png", dpi=90)
        plt.close(fig)
        out["Seal-break latency"] = "seal_latency.png"
    return out


def write_report(ev: Evaluation, out_dir: Path, plots: bool = True) -> Path:
    """report.md (+ PNGs, + evaluation.json) in out_dir; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = plot(ev, out_dir) if plots else {}
    md = out_dir / "report.md"
    md.write_text(to_markdown(ev, images), encoding="utf-8")
    (out_dir / "evaluation.json").write_text(json.dumps(ev.summary(), indent=1, ensure_ascii=False, default=str))
    return md


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
