"""docs/guarantees.md names, for each guarantee, the test that proves it: every one named must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_guarantees_exists() -> None:
    text = (ROOT / "docs" / "guarantees.md").read_text()
    named: list[tuple[str, str]] = []
    for line in text.splitlines():
        files = re.findall(r"(tests/[\w/]+\.py)::", line)
        for name in re.findall(r"::(test_\w+)", line):
            named.append((files[0] if files else "", name))
    assert len(named) >= 30
    missing = [f"{f}::{n}" for f, n in named if not re.search(rf"^(async )?def {n}\(", (ROOT / f).read_text(), re.M)]
    assert missing == []
