"""The one retry delay of the project: exponential backoff with jitter.

The delay doubles per attempt up to a cap, and is drawn in [cap/2, cap] ("equal jitter", AWS Architecture
Blog, "Exponential Backoff And Jitter", 2015): the draw spreads the retries of many clients that failed
together, so a receiver or database coming back is not hit by all of them at once, and the floor keeps a
single client from retrying in a tight loop.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry): a draw in [cap/2, cap], where
    cap = min(max_s, base_s * 2**(attempt-1))."""
    cap = min(max_s, base_s * (2.0 ** min(max(attempt - 1, 0), 62)))
    draw = (rng or random).random()
    return cap * (0.5 + draw / 2)


class Backoff:
    """A retry loop's state: `next()` gives the next delay, `reset()` after a success."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.attempt = 0

    def next(self) -> float:
        self.attempt += 1
        return backoff_delay(self.attempt, self.base_s, self.max_s)

    def reset(self) -> None:
        self.attempt = 0
