"""What the worker processes share (``gateway serve --workers N``): live connection counts and
recent login failures of the wire door, and the HTTP door's token buckets, in one SQLite file the
supervisor makes for the run.

With one process these live in memory (:class:`~gateway.frontdoor.pg.door.Door`,
:class:`~gateway.frontdoor.pg.throttle.LoginThrottle`). With N workers each accepting on its own
socket, an in-memory count would let N times ``max_connections_per_address`` in, and a password
guesser N times the attempts. :class:`SharedDoor` and :class:`SharedLoginThrottle` keep the same
interface and count in the shared file instead: each worker keeps its own rows (``worker`` column)
and a check adds every worker's rows inside one ``BEGIN IMMEDIATE`` transaction, so two workers
cannot both admit the last allowed client. A restarted worker deletes its predecessor's rows.

The file holds no request data: counts by client address and requester name, failures by user and
address. It is not durable (``synchronous=OFF``): it describes the live processes only.
If the file cannot be used (locked too long, disk gone), the worker decides on its own counts and
says so in the log: a door that refuses everyone would be worse.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.errors import TooManyConnections
from gateway.frontdoor.pg.door import Door, DoorLimits
from gateway.frontdoor.pg.throttle import LoginThrottle

LocalLimiter = Any  # gateway.frontdoor.http.ratelimit.RateLimiter, imported only when needed

log = logging.getLogger(__name__)

FILE_NAME = "door.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (worker INTEGER, kind TEXT, key TEXT, n INTEGER,
    PRIMARY KEY (worker, kind, key));
CREATE TABLE IF NOT EXISTS login_failures (key TEXT PRIMARY KEY, n INTEGER, at REAL);
CREATE TABLE IF NOT EXISTS rate_buckets (key TEXT PRIMARY KEY, tokens REAL, stamp REAL);
"""


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executescript(_SCHEMA)
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction (the write lock taken at once, so every worker's check and
    update of a count is one step): committed when the block ends, rolled back when it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def reset(path: Path) -> None:
    """Start a run with empty counts (the supervisor, before the workers start)."""
    conn = connect(path)
    try:
        conn.execute("DELETE FROM connections")
        conn.execute("DELETE FROM login_failures")
        conn.execute("DELETE FROM rate_buckets")
    finally:
        conn.close()


class SharedDoor(Door):
    """:class:`Door` whose connection counts are summed over every worker (see the module docstring).
    ``total``, ``by_address`` and ``by_requester`` stay this worker's own (its gauges)."""

    def __init__(self, limits: DoorLimits, path: Path, worker: int) -> None:
        super().__init__(limits)
        self.worker = worker
        self._lock = threading.Lock()
        self._conn = connect(path)
        self._conn.execute("DELETE FROM connections WHERE worker = ?", (worker,))  # a predecessor that died
        self._warned = 0.0

    def close(self) -> None:
        try:
            self._conn.execute("DELETE FROM connections WHERE worker = ?", (self.worker,))
        except sqlite3.Error:
            pass
        self._conn.close()

    def _shared(self, checks: list[tuple[str, str, int]], adds: list[tuple[str, str]]) -> int | None:
        """In one transaction: the index of the first check (kind, key, limit) whose sum over all
        workers is at its limit; else add 1 to this worker's (kind, key) rows and return None."""
        with self._lock, immediate(self._conn) as conn:
            for i, (kind, key, limit) in enumerate(checks):
                n = conn.execute("SELECT coalesce(sum(n), 0) FROM connections WHERE kind = ? AND key = ?",
                                 (kind, key)).fetchone()[0]
                if n >= limit:
                    return i
            conn.executemany("INSERT INTO connections VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1",
                             [(self.worker, kind, key) for kind, key in adds])
        return None

    def _release(self, kind: str, key: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE connections SET n = n - 1 WHERE worker = ? AND kind = ? AND key = ? AND n > 0",
                               (self.worker, kind, key))

    def _fallback(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned > 10:
            self._warned = now
            log.warning("the shared connection counts are unavailable (%s): this worker counts its own only", exc)

    def admit(self, host: str) -> TooManyConnections | None:
        limits = self.limits
        try:
            over = self._shared([("total", "", limits.max_connections), ("address", host, limits.max_per_address)],
                                [("total", ""), ("address", host)])
        except sqlite3.Error as exc:
            self._fallback(exc)
            return super().admit(host)
        if over == 0:
            return self._refuse_total(host)
        if over == 1:
            return self._refuse_address(host)
        self.total += 1
        self.by_address[host] += 1
        return None

    def leave(self, host: str) -> None:
        super().leave(host)
        try:
            self._release("total", "")
            self._release("address", host)
        except sqlite3.Error as exc:
            self._fallback(exc)

    def admit_requester(self, name: str, host: str) -> TooManyConnections | None:
        limit = self.limits.max_per_requester
        try:
            over = self._shared([("requester", name, limit)], [("requester", name)])
        except sqlite3.Error as exc:
            self._fallback(exc)
            return super().admit_requester(name, host)
        if over is not None:
            return self._refuse_requester(name, host)
        self.by_requester[name] += 1
        return None

    def leave_requester(self, name: str) -> None:
        super().leave_requester(name)
        try:
            self._release("requester", name)
        except sqlite3.Error as exc:
            self._fallback(exc)


class SharedLoginThrottle(LoginThrottle):
    """:class:`LoginThrottle` with the failure counts in the shared file: a guesser spread over the
    workers (each connection lands on any of them) is slowed as if there were one process."""

    def __init__(self, path: Path, **kwargs: float) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._conn = connect(path)

    def close(self) -> None:
        self._conn.close()

    def _shared_count(self, key: str, now: float) -> int:
        row = self._conn.execute("SELECT n, at FROM login_failures WHERE key = ?", (key,)).fetchone()
        if row is None or now - row[1] > self.forget_after:
            return 0
        return int(row[0])

    def delay(self, user: str, address: str) -> float:
        now = time.time()
        try:
            with self._lock:
                n = max(self._shared_count("u:" + user, now), self._shared_count("a:" + address, now))
        except sqlite3.Error:
            return super().delay(user, address)
        return 0.0 if n == 0 else min(self.cap, self.base * 2 ** (n - 1))

    def failed(self, user: str, address: str) -> None:
        super().failed(user, address)
        now = time.time()
        try:
            with self._lock, immediate(self._conn) as conn:
                for key in ("u:" + user, "a:" + address):
                    n = self._shared_count(key, now)
                    conn.execute("INSERT INTO login_failures VALUES (?, ?, ?) ON CONFLICT DO UPDATE "
                                 "SET n = excluded.n, at = excluded.at", (key, n + 1, now))
                conn.execute("DELETE FROM login_failures WHERE at < ?", (now - self.forget_after,))
        except sqlite3.Error as exc:
            log.warning("the shared login failure counts are unavailable (%s)", exc)

    def succeeded(self, user: str, address: str) -> None:
        super().succeeded(user, address)
        try:
            with self._lock:
                self._conn.execute("DELETE FROM login_failures WHERE key IN (?, ?)", ("u:" + user, "a:" + address))
        except sqlite3.Error:
            pass


class SharedRateLimiter:
    """The HTTP door's :class:`~gateway.frontdoor.http.ratelimit.RateLimiter` (same ``take``), with one
    bucket per token in the shared file, so N workers let a token through at ``rate``, not N x ``rate``.
    One short SQLite transaction per HTTP request (tens of µs against the request's milliseconds)."""

    def __init__(self, path: Path, *, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = float(rate), int(burst)
        self._lock = threading.Lock()
        self._conn = connect(path)
        self._local: LocalLimiter | None = None

    def take(self, key: str) -> float:
        now = time.time()
        try:
            with self._lock, immediate(self._conn) as conn:
                row = conn.execute("SELECT tokens, stamp FROM rate_buckets WHERE key = ?", (key,)).fetchone()
                tokens = float(self.burst) if row is None else min(
                    float(self.burst), row[0] + max(0.0, now - row[1]) * self.rate)
                wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
                if wait == 0.0:
                    tokens -= 1.0
                conn.execute("INSERT INTO rate_buckets VALUES (?, ?, ?) ON CONFLICT DO UPDATE "
                             "SET tokens = excluded.tokens, stamp = excluded.stamp", (key, tokens, now))
        except sqlite3.Error as exc:
            log.warning("the shared HTTP rate buckets are unavailable (%s): this worker's own bucket decides", exc)
            if self._local is None:
                from gateway.frontdoor.http.ratelimit import RateLimiter

                self._local = RateLimiter(rate=self.rate, burst=self.burst)
            return self._local.take(key)
        return wait
