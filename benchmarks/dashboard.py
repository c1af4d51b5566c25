"""The dashboard at scale, in Debian's Chromium: time to interactive with many crates and open alerts, and
whether live updates freeze the page.

    python -m benchmarks.dashboard [--crates 5000] [--alerts 200] [--live-rate 50] [--live-seconds 10]

Starts `kawal serve` (wall clock) with a private Mosquitto, gives `--crates` crates a trip in transit and a
fix each, and breaks the seal of `--alerts` of them. Then opens the dashboard (signed in, desktop size)
and reports:
  ready_ms        navigation start until the board lists the open alerts and the crate list is drawn;
  interactive_ms  the end of the last long task (> 50 ms, PerformanceObserver) before a quiet second after
                  ready: when the page answers input again;
  live            with `--live-rate` new alerts per second for `--live-seconds`: long tasks (count, total,
                  longest) and the longest gap between animation frames (a frozen page shows one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import sync_playwright

from benchmarks.latency import position, trip_body
from benchmarks.output import print_result
from simulators.harness import LocalKawal
from tests.browser import CHROMIUM_ARGS

# Collects long tasks and animation-frame gaps from the first moment of the page.
PROBE_JS = """
window.__kawalPerf = {longtasks: [], maxGap: 0, last: 0, watching: false};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__kawalPerf.longtasks.push([e.startTime, e.duration]);
}).observe({type: "longtask", buffered: true});
(function frame(t) {
  const p = window.__kawalPerf;
  if (p.watching && p.last) p.maxGap = Math.max(p.maxGap, t - p.last);
  p.last = t;
  requestAnimationFrame(frame);
})(0);
"""
READY_JS = """(n) => document.querySelectorAll('#alert-list > li').length >= n
  && document.querySelectorAll('#crate-list > li').length > 0
  && document.querySelector('#conn')?.dataset.state === 'live'"""


def _reading(i: int, t0: float, seal: str) -> str:
    lat, lon, hdg = position(i, time.time(), t0)
    return json.dumps({"ts": time.time(), "lat": lat, "lon": lon, "acc": 8, "spd": 40, "hdg": hdg, "seal": seal})


# Chromium's own counters of the renderer's work (CDP Performance.getMetrics): seconds and counts.
RENDER_METRICS = ("TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration", "RecalcStyleCount",
                  "LayoutCount")


def _metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def print_profile(profile: dict[str, Any], top: int = 25) -> None:
    """Self time per function of a CDP CPU profile, the largest first."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    self_us: dict[str, float] = {}
    deltas = profile.get("timeDeltas", [])
    for sample, dt in zip(profile.get("samples", []), deltas, strict=False):
        f = nodes[sample]["callFrame"]
        name = f"{f['functionName'] or '(anon)'} {f['url'].rsplit('/', 1)[-1]}:{f['lineNumber'] + 1}"
        self_us[name] = self_us.get(name, 0.0) + dt
    for name, us in sorted(self_us.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{us / 1000:9.1f} ms  {name}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalKawal(Path(tmp), clock="wall", broker="mosquitto") as k,
    ):
        now = time.time()
        t0 = now - 60
        headers = {"Authorization": f"Bearer {k.token}"}
        with httpx.Client(base_url=k.api_url, headers=headers, timeout=30) as api:

            def put(i: int) -> None:
                api.put(f"/api/v1/trips/T-{i:05d}", json=trip_body(f"trk-{i:05d}", i, now)).raise_for_status()

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(put, range(args.crates)))
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-dash-{time.time_ns()}")
            pub.max_inflight_messages_set(1000)
            pub.connect("127.0.0.1", k.mqtt_port)
            pub.loop_start()
            for i in range(args.crates):
                seal = "open" if i < args.alerts else "closed"
                pub.publish(f"kawal/v1/trk-{i:05d}/telemetry", _reading(i, t0, seal), qos=1)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                open_alerts = api.get("/api/v1/alerts", params={"status": "open", "limit": 1000}).json()["items"]
                crates = api.get("/api/v1/crates").json()["items"]
                if len(open_alerts) >= args.alerts and sum(1 for c in crates if c.get("last_seen")) >= args.crates:
                    break
                time.sleep(0.5)
            else:
                raise SystemExit("the fleet was not stored in time")

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="id-ID")
            ctx.add_init_script(f"sessionStorage.setItem('kawal.token', {json.dumps(k.token)});\n{PROBE_JS}")
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{k.api_url}/")
            if args.no_animations:
                page.add_style_tag(content="*, *::before, *::after { animation: none !important; }")
            if args.css:
                page.add_style_tag(content=args.css)
            page.wait_for_function(READY_JS, arg=min(args.alerts, 300), timeout=60_000, polling=50)
            ready_ms = page.evaluate("performance.now()")
            page.wait_for_timeout(1000)
            tasks = page.evaluate("window.__kawalPerf.longtasks")
            ends = [s + d for s, d in tasks if s < ready_ms + 1000]
            interactive_ms = max([ready_ms, *ends])

            # Live: new seal breaks at the given rate, from crates that had none.
            page.evaluate("() => { const p = window.__kawalPerf; p.longtasks = []; p.maxGap = 0; p.watching = true; }")
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            before = _metrics(cdp)
            if args.profile:
                cdp.send("Profiler.enable")
                cdp.send("Profiler.start")
            n_live = int(args.live_rate * args.live_seconds)
            start = time.monotonic()
            for j in range(n_live):
                i = args.alerts + j
                pub.publish(f"kawal/v1/trk-{i:05d}/telemetry", _reading(i, t0, "open"), qos=1)
                ahead = (j + 1) / args.live_rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
            page.wait_for_timeout(2000)
            live = page.evaluate("window.__kawalPerf")
            after = _metrics(cdp)
            if args.profile:
                print_profile(cdp.send("Profiler.stop")["profile"])
            work = {k: round(after[k] - before[k], 3) for k in RENDER_METRICS if k in after and k in before}
            shown = page.evaluate("document.querySelectorAll('#alert-list > li').length")
            browser.close()
            pub.loop_stop()
        durations = [d for _, d in live["longtasks"]]
        return {
            "crates": args.crates,
            "open_alerts": args.alerts,
            "ready_ms": round(ready_ms),
            "interactive_ms": round(interactive_ms),
            "load_longtasks": len(tasks),
            "live_alerts": n_live,
            "live_longtasks": len(durations),
            "live_longtask_total_ms": round(sum(durations)),
            "live_longest_task_ms": round(max(durations, default=0)),
            "live_max_frame_gap_ms": round(live["maxGap"]),
            "live_renderer_work": work,
            "cards_shown": shown,
            "page_errors": errors,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crates", type=int, default=5000)
    ap.add_argument("--alerts", type=int, default=200, help="open alerts when the page loads")
    ap.add_argument("--live-rate", type=float, default=50.0, help="new alerts per second while watching")
    ap.add_argument("--live-seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    ap.add_argument("--no-animations", action="store_true", help="switch CSS animations off (to compare)")
    ap.add_argument("--css", help="extra CSS for the page (to see what a style costs)")
    ap.add_argument("--profile", action="store_true", help="print where the page spends its time while live")
    args = ap.parse_args()
    print_result(run(args), args.json, 24)


if __name__ == "__main__":
    main()
