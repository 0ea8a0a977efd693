"""Slow down password guessing: a growing delay per user and per client address after failures.

>>> t = LoginThrottle(base=0.1, cap=2.0)
>>> t.delay("u", "1.2.3.4")
0.0
>>> t.failed("u", "1.2.3.4"); t.failed("u", "1.2.3.4"); t.delay("u", "9.9.9.9")
0.2
"""

from __future__ import annotations

import time


class LoginThrottle:
    """Counts recent failures; ``delay`` is ``base * 2**(n-1)`` capped, where n is the larger count."""

    def __init__(self, *, base: float = 0.25, cap: float = 5.0, forget_after: float = 900.0, max_keys: int = 100_000) -> None:
        self.base, self.cap, self.forget_after, self.max_keys = base, cap, forget_after, max_keys
        self._failures: dict[str, tuple[int, float]] = {}

    def _count(self, key: str, now: float) -> int:
        entry = self._failures.get(key)
        if entry is None:
            return 0
        if now - entry[1] > self.forget_after:
            del self._failures[key]
            return 0
        return entry[0]

    def delay(self, user: str, address: str) -> float:
        now = time.monotonic()
        n = max(self._count("u:" + user, now), self._count("a:" + address, now))
        return 0.0 if n == 0 else min(self.cap, self.base * 2 ** (n - 1))

    def failed(self, user: str, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= self.max_keys:
            self._failures.clear()  # bounded memory; an attacker flooding keys only resets counts
        for key in ("u:" + user, "a:" + address):
            self._failures[key] = (self._count(key, now) + 1, now)

    def succeeded(self, user: str, address: str) -> None:
        self._failures.pop("u:" + user, None)
        self._failures.pop("a:" + address, None)
