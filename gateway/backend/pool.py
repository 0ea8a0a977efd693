"""A bounded pool of :class:`BackendConnection` for the pg front door (session pooling).

A client session holds one backend connection for its life; on release the connection is reset
(``ROLLBACK`` if a transaction is open, then ``DISCARD ALL``) and kept, or closed if anything is odd.

    pool = BackendPool(target, startup_params, size=20, acquire_timeout=10)
    conn = await pool.acquire()
    ...
    await pool.release(conn)
    await pool.close()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from gateway.backend.target import BackendTarget
from gateway.backend.wire_conn import BackendConnection
from gateway.errors import BackendUnavailable, LimitExceeded

log = logging.getLogger(__name__)


class BackendPool:
    def __init__(self, target: BackendTarget, startup: Mapping[str, str], *, size: int = 20,
                 acquire_timeout: float = 10.0, idle_check_after: float = 30.0, max_idle: int | None = None,
                 recovery_wait: float = 5.0) -> None:
        self.target = target
        self.recovery_wait = recovery_wait
        self.startup = dict(startup)
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.idle_check_after = idle_check_after
        self.max_idle = size if max_idle is None else max_idle
        self._idle: list[BackendConnection] = []
        self._in_use: set[BackendConnection] = set()
        self._opening = 0
        self._cond = asyncio.Condition()
        self._closed = False

    @property
    def stats(self) -> dict[str, int]:
        return {"idle": len(self._idle), "in_use": len(self._in_use), "opening": self._opening, "size": self.size}

    async def acquire(self) -> BackendConnection:
        """A healthy connection; raises LimitExceeded after ``acquire_timeout``, BackendUnavailable if down."""
        deadline = time.monotonic() + self.acquire_timeout
        while True:
            if self._closed:
                raise BackendUnavailable("gateway: the backend pool is closed")
            conn = await self._take_idle()
            if conn is not None:
                return conn
            if len(self._in_use) + self._opening < self.size:
                self._opening += 1
                try:
                    conn = await self._connect(deadline)
                finally:
                    self._opening -= 1
                self._in_use.add(conn)
                return conn
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LimitExceeded(
                    f"gateway: all {self.size} backend connections are busy; try again later"
                )
            async with self._cond:
                try:
                    await asyncio.wait_for(self._cond.wait(), remaining)
                except asyncio.TimeoutError:
                    pass

    async def _connect(self, deadline: float) -> BackendConnection:
        """A new connection. A login the server refuses for now (57P03: starting up, in crash recovery)
        is tried again every 100 ms until the acquire deadline (at least ``recovery_wait`` seconds)."""
        until = max(deadline, time.monotonic() + self.recovery_wait)
        while True:
            try:
                return await BackendConnection.connect(self.target, self.startup)
            except BackendUnavailable as exc:
                if not getattr(exc, "transient", False) or self._closed or time.monotonic() + 0.1 > until:
                    raise
                log.info("the backend refuses logins for now (%s); trying again", exc)
            await asyncio.sleep(0.1)

    async def _take_idle(self) -> BackendConnection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.clean:  # dead, or it got something while idle (a FATAL from a crash): never hand it out
                conn.close()
                continue
            if time.monotonic() - conn.last_used > self.idle_check_after:
                try:
                    await conn.simple("SELECT 1", timeout=5)
                except (BackendUnavailable, ValueError):
                    conn.close()
                    continue
            self._in_use.add(conn)
            return conn
        return None

    async def release(self, conn: BackendConnection, *, reset: bool = True) -> None:
        """Return ``conn``: reset and keep it, or close it if it is broken or the pool is full."""
        conn.detach()  # while it is reset it still counts as in use: the pool never outgrows its size
        keep = conn.clean and not self._closed and len(self._idle) < self.max_idle
        if keep and reset:
            try:
                if conn.status != "I":
                    await conn.simple("ROLLBACK", timeout=5)
                await conn.simple("DISCARD ALL", timeout=5)
            except (BackendUnavailable, ValueError) as exc:
                log.info("closing a backend connection that failed its reset: %s", exc)
                keep = False
        self._in_use.discard(conn)
        if keep:
            self._idle.append(conn)
        else:
            conn.close()
        async with self._cond:
            self._cond.notify()

    async def discard(self, conn: BackendConnection) -> None:
        """Close ``conn`` without returning it (after a protocol failure)."""
        self._in_use.discard(conn)
        conn.close()
        async with self._cond:
            self._cond.notify()

    async def close(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.close()
        for conn in list(self._in_use):
            conn.close()
        self._idle.clear()
        self._in_use.clear()
        async with self._cond:
            self._cond.notify_all()
