"""A bounded pool of :class:`BackendConnection` for the pg front door (session pooling).

A client session holds one backend connection for its life; on release the connection is reset
(``ROLLBACK`` if a transaction is open, then ``DISCARD ALL``) and kept, or closed if anything is odd.

    pool = BackendPool(target, startup_params, size=20, acquire_timeout=10)
    conn = await pool.acquire()
    ...
    await pool.release(conn)
    await pool.close()

Transaction pooling takes and gives back a connection around every statement, so both have a path
without an await: :meth:`take_now` (an idle connection fit to hand out as it is) and
:meth:`release_now` (a connection that needs no reset). Waiters are futures woken in order, with no
lock to take.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from time import monotonic

from gateway.backend.target import BackendTarget
from gateway.backend.prepared import PreparedCounters, PreparedSet
from gateway.backend.wire_conn import BackendConnection
from gateway.errors import BackendUnavailable, LimitExceeded

log = logging.getLogger(__name__)


class BackendPool:
    def __init__(self, target: BackendTarget, startup: Mapping[str, str], *, size: int = 20,
                 acquire_timeout: float = 10.0, idle_check_after: float = 30.0, max_idle: int | None = None,
                 recovery_wait: float = 5.0, max_waiting: int = 1000, max_prepared: int = 200) -> None:
        self.target = target
        self.max_prepared = max_prepared  # prepared statements kept per connection (least recently used closed)
        self.max_waiting = max_waiting  # statements waiting for a connection; beyond it refused at once
        self.recovery_wait = recovery_wait
        self.startup = dict(startup)
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.idle_check_after = idle_check_after
        self.max_idle = size if max_idle is None else max_idle
        self._idle: list[BackendConnection] = []
        self._in_use: set[BackendConnection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()  # acquires waiting for a release, oldest first
        self._closed = False
        self.waiting = 0
        self.waits_total = 0  # acquires that had to wait
        self.wait_seconds_total = 0.0
        self.wait_timeouts_total = 0  # refused after acquire_timeout
        self.queue_full_total = 0  # refused at once: max_waiting were already waiting
        self.prepared = PreparedCounters()

    @property
    def stats(self) -> dict[str, float]:
        return {"idle": len(self._idle), "in_use": len(self._in_use), "opening": self._opening, "size": self.size,
                "waiting": self.waiting, "queue_max": self.max_waiting, "waits_total": self.waits_total,
                "wait_seconds_total": round(self.wait_seconds_total, 6),
                "wait_timeouts_total": self.wait_timeouts_total, "queue_full_total": self.queue_full_total,
                **self.prepared.stats()}

    async def acquire(self) -> BackendConnection:
        """A healthy connection; raises LimitExceeded after ``acquire_timeout`` (or at once when
        ``max_waiting`` statements already wait), BackendUnavailable if the backend is down."""
        conn = await self._try_acquire(None)
        if conn is not None:
            return conn
        if self.waiting >= self.max_waiting:
            self.queue_full_total += 1
            raise LimitExceeded(
                f"gateway: all {self.size} backend connections are busy and {self.waiting} statements already "
                f"wait for one (wire_pool_queue = {self.max_waiting}); the statement was not run, try again"
            )
        t0 = monotonic()
        deadline = t0 + self.acquire_timeout
        self.waiting += 1
        self.waits_total += 1
        try:
            while True:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    self.wait_timeouts_total += 1
                    raise LimitExceeded(
                        f"gateway: all {self.size} backend connections stayed busy for "
                        f"{self.acquire_timeout * 1000:.0f} ms (wire_pool_wait_ms); the statement was not run, "
                        "try again"
                    )
                loop = asyncio.get_running_loop()
                waiter = loop.create_future()
                self._waiters.append(waiter)
                timer = loop.call_later(remaining, _expire, waiter)  # not wait_for: in 3.11 it can swallow a cancel
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_one()  # woken, then cancelled: the release goes to the next waiter
                    raise
                finally:
                    timer.cancel()
                conn = await self._try_acquire(deadline)
                if conn is not None:
                    return conn
        finally:
            self.waiting -= 1
            self.wait_seconds_total += monotonic() - t0

    async def _try_acquire(self, deadline: float | None) -> BackendConnection | None:
        """An idle connection, or a new one while the pool is below its size; None when all are busy."""
        if self._closed:
            raise BackendUnavailable("gateway: the backend pool is closed")
        conn = await self._take_idle()
        if conn is not None:
            return conn
        if len(self._in_use) + self._opening < self.size:
            self._opening += 1
            try:
                conn = await self._connect(deadline if deadline is not None else monotonic() + self.acquire_timeout)
            finally:
                self._opening -= 1
            conn.prepared = PreparedSet(self.max_prepared)
            conn.prepared.counters = self.prepared
            self._in_use.add(conn)
            return conn
        return None

    async def _connect(self, deadline: float) -> BackendConnection:
        """A new connection. A login the server refuses for now (57P03: starting up, in crash recovery)
        is tried again every 100 ms until the acquire deadline (at least ``recovery_wait`` seconds)."""
        until = max(deadline, monotonic() + self.recovery_wait)
        while True:
            try:
                return await BackendConnection.connect(self.target, self.startup)
            except BackendUnavailable as exc:
                if not getattr(exc, "transient", False) or self._closed or monotonic() + 0.1 > until:
                    raise
                log.info("the backend refuses logins for now (%s); trying again", exc)
            await asyncio.sleep(0.1)

    async def _take_idle(self) -> BackendConnection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.clean:  # dead, or it got something while idle (a FATAL from a crash): never hand it out
                conn.close()
                continue
            if monotonic() - conn.last_used > self.idle_check_after:
                try:
                    await conn.simple("SELECT 1", timeout=5)
                except (BackendUnavailable, ValueError):
                    conn.close()
                    continue
            self._in_use.add(conn)
            return conn
        return None

    def take_now(self) -> BackendConnection | None:
        """An idle connection that can be handed out as it is (no health check due), without waiting;
        None when there is none: :meth:`acquire` then waits, connects or checks."""
        idle = self._idle
        if self._closed:
            return None
        while idle:
            conn = idle[-1]
            if not conn.clean:
                idle.pop()
                conn.close()
                continue
            if monotonic() - conn.last_used > self.idle_check_after:
                return None  # due for its health check (a round trip): acquire does it
            idle.pop()
            self._in_use.add(conn)
            return conn
        return None

    def release_now(self, conn: BackendConnection) -> None:
        """Return ``conn`` as it is (no reset: the session left no state on it), without awaiting."""
        conn.detach()
        self._put_back(conn, conn.clean and not self._closed and len(self._idle) < self.max_idle)

    def _put_back(self, conn: BackendConnection, keep: bool) -> None:
        self._in_use.discard(conn)
        if keep:
            self._idle.append(conn)
        else:
            conn.close()
        self._wake_one()

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def release(self, conn: BackendConnection, *, reset: bool = True) -> None:
        """Return ``conn``: reset and keep it, or close it if it is broken or the pool is full."""
        conn.detach()  # while it is reset it still counts as in use: the pool never outgrows its size
        keep = conn.clean and not self._closed and len(self._idle) < self.max_idle
        if keep and reset:
            try:
                if conn.status != "I":
                    await conn.simple("ROLLBACK", timeout=5)
                conn.prepared.reset()
                conn.applied = {}
                conn.unnamed = None
                await conn.simple("DISCARD ALL", timeout=5)
            except (BackendUnavailable, ValueError) as exc:
                log.info("closing a backend connection that failed its reset: %s", exc)
                keep = False
        self._put_back(conn, keep)

    async def discard(self, conn: BackendConnection) -> None:
        """Close ``conn`` without returning it (after a protocol failure)."""
        self._put_back(conn, False)

    async def close(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.close()
        for conn in list(self._in_use):
            conn.close()
        self._idle.clear()
        self._in_use.clear()
        while self._waiters:
            self._wake_one()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)  # the acquire loop sees its deadline passed
