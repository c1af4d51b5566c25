"""The evaluation report: Markdown tables and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.scenario import utc_iso
from simulators.scoring import Evaluation, describe


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
        d = describe(xs)
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
    d = describe(ev.seal_latency)
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
