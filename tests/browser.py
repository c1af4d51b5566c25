"""Headless Chromium (Debian's, driven by Playwright) as the dashboard tests and benchmarks launch it."""

from __future__ import annotations

import shutil

import pytest

# No sandbox (containers, root in CI), no GPU, and none of the browser's own network traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium, which the tests need (a missing browser fails them rather than skip)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    return path
