"""How the single-run benchmarks (dashboard, latency, recovery) print their figures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def print_result(res: Mapping[str, Any], as_json: bool, width: int = 20) -> None:
    """One JSON line (`--json`), else one `key: value` line per figure, keys right-aligned to `width`."""
    if as_json:
        print(json.dumps(res))
    else:
        for key, v in res.items():
            print(f"{key:>{width}}: {v}")
