"""ruff and mypy stay clean: the project's own rules, checked like any other behaviour."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["kawal", "devices", "ingest", "anomaly", "alerts", "api", "simulators", "benchmarks", "tests"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    # The interpreter running the tests, not PATH: scripts/test never puts .venv/bin on PATH.
    if importlib.util.find_spec("ruff") is None:
        pytest.fail(f"ruff is not installed for {sys.executable}: install the project with its [test] extra")
    r = _run("ruff", "check", *SOURCES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail(f"mypy is not installed for {sys.executable}: install the project with its [test] extra")
    r = _run("mypy")
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]


def test_mypy_covers_tests_and_benchmarks_with_the_pydantic_plugin() -> None:
    """`mypy` (test_mypy_is_clean) checks the tests and benchmarks too, and knows pydantic's models."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert {"tests", "benchmarks"} <= set(config["packages"])
    assert "pydantic.mypy" in config["plugins"]
