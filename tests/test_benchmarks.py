"""Every benchmark runs once with a tiny N, only to prove that it still works. No timing is asserted here:
figures come from full runs (docs/performance.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (module, tiny arguments, a word its report must contain)
RUNS: list[tuple[str, list[str], str]] = [
    ("detect", ["--trips", "40", "--steps", "5", "--memory-trackers", "200", "--repeat", "1"], "reading"),
    ("crates", ["--crates", "50", "--repeat", "1", "--legacy-repeat", "1", "--ingest-messages", "500",
                "--ingest-trackers", "50", "--ingest-rounds", "1"], "crates"),
    ("ingest", ["--messages", "600", "--naive-messages", "100", "--trackers", "50", "--rounds", "1"], "bare"),
    ("storage_ingest", ["--readings", "1000", "--trackers", "20", "--batches", "100"], "sqlite"),
    ("places", ["--points", "2000", "--repeat", "1"], "µs/point"),
    ("notify", ["--alerts", "20", "--channels", "0", "1", "--events", "50"], "deliveries/s"),
    ("engines", ["--messages", "300"], "JetStream"),
    ("cluster", ["--messages", "600", "--trackers", "30", "--workers", "1,2", "--mode", "stream"], "readings/s"),
    ("embedded_broker", ["--messages", "300", "--publishers", "1"], "msg"),
    ("latency", ["--background", "100", "--rate", "100", "--probes", "5", "--spacing", "0.05", "--warmup", "1"],
     "p99_ms"),
    ("recovery", ["--trackers", "200", "--minutes", "1"], "start_to_healthy_s"),
    ("growth", ["--trackers", "50", "100", "--points", "10", "50", "--readings", "600", "--point-trips", "20"],
     "route points"),
    ("dashboard", ["--crates", "40", "--alerts", "5", "--live-rate", "10", "--live-seconds", "1"], "interactive_ms"),
    ("notify", ["--alerts", "20", "--channels", "0", "2", "--events", "20"], "deliveries/s"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("module", "args", "expect"), RUNS, ids=[r[0] for r in RUNS])
def test_benchmark_runs(module: str, args: list[str], expect: str) -> None:
    if module in ("latency", "recovery", "dashboard", "ingest", "embedded_broker", "cluster") and not shutil.which(
        "mosquitto"
    ):
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert expect.lower() in out.lower(), out[-3000:]
