"""The client's socket seen as messages: an asyncio Protocol that feeds the sans-IO parser.

Bytes go from ``data_received`` straight into the parser, with no StreamReader buffer in between.
While the session's task is parked (:meth:`park`: it has nothing to do but wait for the client),
``data_received`` runs the session's steady state itself (``driver.pump()``, the compiled
:class:`~gateway.frontdoor.pg.steady.SessionCore`): a client batch on the steady path costs no task
wake-up, no future and no loop turn. The task is woken (its one future) only when the batch needs it: a
handler that must wait (a cold plan, a pooled connection to wait for, backpressure), an error, EOF.
Rare readers (startup, login, the admin console) wait with :meth:`fill` (one future per read).
Answers go straight to the transport. Flow control both ways:

- reading: past ``limit`` bytes received and not yet parsed, the socket stops being read until
  the session asks for more, so one client can make the gateway hold at most about ``limit``
  bytes plus one read;
- writing: the transport tells the channel when its buffer passes its high-water mark
  (``pause_writing``) and when it is back under the low one; :meth:`drain` waits for that.

``writer`` is the channel itself (``write``, ``transport``, ``drain``, ``close``), the surface the
session writes through.

Compiled with mypyc (``setup.py``): the socket's protocol for uvloop / asyncio, called by name (no
``asyncio.Protocol`` base, so that it is a native class and a client read reaches the session core
through compiled calls only).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.wire.errors import RemoteProtocolError
from gateway.wire.frontend import FrontendMessage
from gateway.wire.parser import FrontendParser

if TYPE_CHECKING:
    from gateway.frontdoor.pg.steady import SessionCore

#: bytes received and not yet parsed past which the client's socket is no longer read
READ_LIMIT = 512 * 1024


class ClientGone(Exception):
    """The client closed the connection."""


class ClientChannel:
    def __init__(self, max_message: int, on_open: Callable[[ClientChannel], None] | None = None,
                 limit: int = READ_LIMIT) -> None:
        self.parser = FrontendParser(max_message)
        self.transport: Any = None  # set by connection_made
        self.writer: Any = self
        self.address = "local"
        self.host = "local"
        self.tls = False
        self.limit = limit
        self._on_open = on_open
        self._loop: Any = None
        self._waiter: Any = None  # fill(): a reader waits for bytes
        #: the session core that runs client batches from data_received while its task is parked
        self.driver: SessionCore | None = None
        self._parked: Any = None  # park(): the session task's future while it has nothing to do
        self._eof = False
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: Any = None
        self._closed: Any = None

    # ---- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        self._closed = self._loop.create_future()
        peer = transport.get_extra_info("peername")
        self.address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer or "local")
        self.host = peer[0] if isinstance(peer, tuple) and peer else "local"
        if self._on_open is not None:
            self._on_open(self)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        parser.feed(data)
        parked = self._parked
        if parked is not None:
            driver = self.driver
            if driver is not None and not parked.done():  # (done: the task was cancelled meanwhile)
                self._parked = None  # while the batch runs, nothing wakes the task but its outcome
                try:
                    later = driver.pump()
                except Exception as exc:  # noqa: BLE001 - raised in the session's task, as if it ran there
                    parked.set_exception(exc)
                    return
                if later is not None or self._eof:  # the task takes over (awaits ``later``; sees EOF)
                    parked.set_result(later)
                else:
                    self._parked = parked
                return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        elif not self._reading_paused and parser.buffered > self.limit:
            self._reading_paused = True  # the session is behind: read again when it asks (fill)
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return not self.tls  # keep the socket open for the answers (TLS cannot half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()
        drain, self._drain_waiter = self._drain_waiter, None
        if drain is not None and not drain.done():
            drain.set_exception(ConnectionResetError("the client connection was lost"))
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain, self._drain_waiter = self._drain_waiter, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        parked, self._parked = self._parked, None
        if parked is not None and not parked.done():
            parked.set_result(None)

    # ---- reading ------------------------------------------------------------------------------
    async def fill(self) -> None:
        """Wait for more bytes in the parser; raises ClientGone at EOF."""
        if self._eof:
            raise ClientGone()
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        before = self.parser.buffered
        assert self._loop is not None
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None
        if self._eof and self.parser.buffered == before:
            raise ClientGone()

    async def park(self) -> Any:
        """The session task waits here while it has nothing to do; meanwhile :meth:`data_received`
        runs client batches through ``driver.pump()`` itself. Returns what the task must await next
        (a handler's awaitable), or None (EOF: the next park raises ClientGone); raises what a batch
        raised."""
        if self._eof:
            raise ClientGone()
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()
        waiter = self._parked = self._loop.create_future()
        try:
            return await waiter
        finally:
            if self._parked is waiter:
                self._parked = None

    async def next_event(self) -> FrontendMessage:
        """The next whole message (startup packet or typed), reading as needed."""
        while True:
            msg = self.parser.next_event()
            if msg is not None:
                return msg
            await self.fill()

    async def next_raw(self) -> tuple[int, bytes]:
        while True:
            raw = self.parser.next_raw()
            if raw is not None:
                return raw
            await self.fill()

    # ---- writing ------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        transport = self.transport
        if not transport.is_closing():
            transport.write(data)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark; ConnectionResetError if the
        client went away."""
        if self.transport.is_closing() and self._closed is not None and self._closed.done():
            raise ConnectionResetError("the client connection was lost")
        if not self._writing_paused:
            return
        assert self._loop is not None
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        await asyncio.shield(self._drain_waiter)

    async def start_tls(self, ctx: ssl.SSLContext) -> None:
        if self.parser.buffered:  # bytes sent in the clear after SSLRequest: a MITM could inject them
            raise RemoteProtocolError("unencrypted data after SSLRequest")
        assert self._loop is not None
        transport = await self._loop.start_tls(self.transport, self, ctx, server_side=True)
        if transport is None:
            raise ConnectionResetError("the client went away during the TLS handshake")
        self.transport = transport
        self.tls = True

    # ---- closing ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the socket (what is written is still sent); the session loop then sees EOF."""
        if self.transport is not None:
            self.transport.close()

    async def aclose(self) -> None:
        """Close and wait (up to 2 s) until the socket is closed."""
        try:
            self.close()
            if self._closed is not None:
                await asyncio.wait_for(asyncio.shield(self._closed), 2)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError):
            pass
