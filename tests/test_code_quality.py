"""ruff and mypy stay clean: the project's own rules, checked like any other behaviour."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["kawal", "devices", "ingest", "anomaly", "alerts", "api", "simulators", "benchmarks", "tests"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.fail("ruff is not installed: install the project with its [test] extra")
    r = _run("ruff", "check", *SOURCES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean() -> None:
    r = _run("mypy")
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
