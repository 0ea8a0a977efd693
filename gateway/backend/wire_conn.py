"""One raw protocol connection to the backend PostgreSQL, as a client.

Startup, authentication (trust, cleartext, md5, SCRAM-SHA-256) and TLS are done with the sans-IO codec;
afterwards the pg front door *attaches* a sink and the connection's bytes go straight to it (the relay
hot path), or the pool runs small internal queries (reset, health check) in *collect* mode.

    conn = await BackendConnection.connect(target, {"search_path": "pg_catalog", ...})
    conn.attach(sink)        # sink(data: bytes) gets every byte the backend sends
    conn.write(encode(Query("select 1")))
    conn.detach()
    await conn.simple("DISCARD ALL")
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from time import monotonic
from typing import Any

from scramp import ScramClient, ScramException

from gateway.backend.prepared import PreparedSet
from gateway.backend.target import BackendTarget
from gateway.errors import BackendUnavailable
from gateway.wire import (
    AuthenticationCleartextPassword, AuthenticationMD5Password, AuthenticationOk, AuthenticationSASL,
    AuthenticationSASLContinue, AuthenticationSASLFinal, BackendKeyData, BackendParser, CancelRequest,
    ErrorResponse, NoticeResponse, ParameterStatus, PasswordMessage, Query, ReadyForQuery, RemoteProtocolError,
    SASLInitialResponse, SASLResponse, SSLRequest, StartupMessage, Terminate, encode,
)
from gateway.wire.backend import BackendMessage

log = logging.getLogger(__name__)


#: SQLSTATEs of a login the server refuses only for now (starting up, crash recovery, shutting down)
TRANSIENT_LOGIN_STATES = frozenset({"57P03", "57P01", "57P02"})


def _refused(message: str, msg: ErrorResponse) -> BackendUnavailable:
    """A refused login; ``transient`` says whether trying again in a moment may work."""
    exc = BackendUnavailable(message)
    exc.transient = msg.sqlstate in TRANSIENT_LOGIN_STATES  # type: ignore[attr-defined]
    return exc


class _BackendProtocol:
    """Feeds a parser (collect mode) or hands bytes to a sink (relay mode).

    The socket's protocol for uvloop / asyncio (they call these methods by name; no base class, so that
    it is a native class when compiled: the backend's answer reaches the relay through one compiled
    call, ``data_received`` -> ``sink``)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.parser = BackendParser()
        self.raw = bytearray()
        self.raw_mode = False
        self.sink: Callable[[bytes], None] | None = None
        self.on_lost: Callable[[Exception | None], None] | None = None
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink(data)
            return
        if self.raw_mode:
            self.raw += data
        else:
            self.parser.feed(data)
        self._wake()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()
        on_lost = self.on_lost
        if on_lost is not None:
            on_lost(exc)

    def pause_writing(self) -> None:  # the gateway writes a client's batch at a time; nothing to hold back
        pass

    def resume_writing(self) -> None:
        pass

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        if self.closed:  # at login: the server ends new backends while it recovers from a crash
            exc = BackendUnavailable("gateway: the backend closed the connection")
            exc.transient = True  # type: ignore[attr-defined]
            raise exc
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None


class BackendConnection:
    """A logged-in backend session. ``server_params`` and ``key`` come from the startup."""

    def __init__(self, target: BackendTarget, protocol: _BackendProtocol, transport: Any) -> None:
        self.target = target
        self._proto = protocol
        self.transport: Any = transport
        self.server_params: dict[str, str] = {}
        self.key: BackendKeyData | None = None
        self.status = "I"
        self.created = monotonic()
        self.last_used = self.created
        self.broken = False
        self.prepared = PreparedSet()  # statements held under the gateway's names (see prepared.py)
        # startup settings of pooled sessions (DateStyle, TimeZone... as JDBC sends them) set on this
        # connection now; None: unknown (a client ran RESET / DISCARD on it)
        self.applied: dict[str, str] | None = {}
        self.unnamed: object = None  # whose unnamed statement this connection holds (the session's Statement)
        self.reuse = False  # set by the server when a pooled session ends: back to the pool without a reset

    # ---- connect -------------------------------------------------------------------------
    @classmethod
    async def connect(cls, target: BackendTarget, startup: Mapping[str, str]) -> BackendConnection:
        """Open, (TLS,) authenticate and wait for ReadyForQuery; raises BackendUnavailable."""
        try:
            return await asyncio.wait_for(cls._connect(target, startup), target.connect_timeout)
        except BackendUnavailable:
            raise
        except (OSError, asyncio.TimeoutError, RemoteProtocolError, ScramException) as exc:
            error = BackendUnavailable(f"gateway: cannot connect to the backend database ({type(exc).__name__}: {exc})")
            error.transient = isinstance(exc, ConnectionResetError)  # type: ignore[attr-defined]
            raise error from exc

    @classmethod
    async def _connect(cls, target: BackendTarget, startup: Mapping[str, str]) -> BackendConnection:
        loop = asyncio.get_running_loop()
        factory: Any = _BackendProtocol  # a plain class: the loop calls its methods by name
        if target.is_unix_socket:
            transport, proto = await loop.create_unix_connection(factory, target.socket_path)
        else:
            transport, proto = await loop.create_connection(factory, target.host, target.port)
        conn = cls(target, proto, transport)
        try:
            await conn._maybe_tls()
            params = {"user": target.user, "database": target.database, **startup}
            conn.write(encode(StartupMessage(tuple(params.items()))))
            await conn._authenticate()
            await conn._until_ready()
        except BaseException:
            conn.close()
            raise
        return conn

    async def _maybe_tls(self) -> None:
        ctx = self.target.ssl_context()
        if ctx is None:
            return
        proto = self._proto
        proto.raw_mode = True
        self.write(encode(SSLRequest()))
        while not proto.raw:
            await proto.wait()
        answer, proto.raw_mode = bytes(proto.raw), False
        proto.raw.clear()
        if answer == b"S":
            loop = asyncio.get_running_loop()
            hostname = self.target.host if self.target.sslmode == "verify-full" else None
            self.transport = await loop.start_tls(self.transport, proto, ctx,  # type: ignore[arg-type]
                                                  server_hostname=hostname)
            proto.transport = self.transport
        elif answer == b"N":
            if self.target.sslmode in ("require", "verify-ca", "verify-full"):
                raise BackendUnavailable("gateway: the backend does not accept TLS but sslmode requires it")
        else:
            raise BackendUnavailable("gateway: unexpected answer from the backend to SSLRequest")

    async def _authenticate(self) -> None:
        target = self.target
        scram: ScramClient | None = None
        while True:
            msg = await self.next_message()
            if isinstance(msg, AuthenticationOk):
                return
            if isinstance(msg, ErrorResponse):
                raise _refused(f"gateway: the backend refused the gateway's login: {msg.message}", msg)
            password = target.password or ""
            if isinstance(msg, AuthenticationCleartextPassword):
                self.write(encode(PasswordMessage(password.encode() + b"\0")))
            elif isinstance(msg, AuthenticationMD5Password):
                inner = hashlib.md5((password + target.user).encode()).hexdigest()  # noqa: S324 - protocol
                outer = "md5" + hashlib.md5(inner.encode() + msg.salt).hexdigest()  # noqa: S324
                self.write(encode(PasswordMessage(outer.encode() + b"\0")))
            elif isinstance(msg, AuthenticationSASL):
                if "SCRAM-SHA-256" not in msg.mechanisms:
                    raise BackendUnavailable(f"gateway: unsupported backend SASL mechanisms {msg.mechanisms}")
                scram = ScramClient(["SCRAM-SHA-256"], target.user, password)
                first = scram.get_client_first().encode()
                self.write(encode(SASLInitialResponse("SCRAM-SHA-256", first)))
            elif isinstance(msg, AuthenticationSASLContinue) and scram is not None:
                scram.set_server_first(msg.data.decode())
                self.write(encode(SASLResponse(scram.get_client_final().encode())))
            elif isinstance(msg, AuthenticationSASLFinal) and scram is not None:
                scram.set_server_final(msg.data.decode())
            else:
                raise BackendUnavailable(f"gateway: unsupported backend authentication request {msg!r}")

    async def _until_ready(self) -> None:
        while True:
            msg = await self.next_message()
            if isinstance(msg, ParameterStatus):
                self.server_params[msg.name] = msg.value
            elif isinstance(msg, BackendKeyData):
                self.key = msg
            elif isinstance(msg, ReadyForQuery):
                self.status = msg.status
                return
            elif isinstance(msg, ErrorResponse):
                raise _refused(f"gateway: the backend refused the session: {msg.message}", msg)

    # ---- collect mode --------------------------------------------------------------------
    async def next_message(self) -> BackendMessage:
        proto = self._proto
        while True:
            msg = proto.parser.next_event()
            if msg is not None:
                return msg
            await proto.wait()

    async def simple(self, sql: str, timeout: float = 10.0) -> list[object]:
        """Run one simple Query (collect mode) and return the messages up to ReadyForQuery.

        Raises BackendUnavailable when the connection fails, ``ValueError`` on an SQL error.
        """
        self.write(encode(Query(sql)))
        out: list[object] = []
        try:
            error = await asyncio.wait_for(self._collect(out), timeout)
        except (asyncio.TimeoutError, RemoteProtocolError) as exc:
            self.broken = True
            raise BackendUnavailable(f"gateway: the backend did not answer ({type(exc).__name__})") from exc
        if error is not None:
            raise ValueError(error.message)
        return out

    async def _collect(self, out: list[object]) -> ErrorResponse | None:
        """The answer of :meth:`simple` into ``out``, up to ReadyForQuery; its error, if any."""
        error: ErrorResponse | None = None
        while True:
            msg = await self.next_message()
            if isinstance(msg, ReadyForQuery):
                self.status = msg.status
                return error
            if isinstance(msg, ErrorResponse):
                error = msg
            elif isinstance(msg, ParameterStatus):
                self.server_params[msg.name] = msg.value
            elif not isinstance(msg, NoticeResponse):
                out.append(msg)

    # ---- relay mode ----------------------------------------------------------------------
    def attach(self, sink: Callable[[bytes], None], on_lost: Callable[[Exception | None], None]) -> None:
        """Send every byte from now on to ``sink``; ``on_lost`` is called if the backend goes away."""
        proto = self._proto
        if proto.parser.buffered:
            raise BackendUnavailable("gateway: backend connection has unread data")
        proto.sink = sink
        proto.on_lost = on_lost

    def detach(self) -> None:
        proto = self._proto
        proto.sink = None
        proto.on_lost = None
        self.last_used = monotonic()

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    @property
    def alive(self) -> bool:
        return not (self.broken or self._proto.closed or self.transport.is_closing())

    @property
    def clean(self) -> bool:
        """Alive, and nothing unread from the backend: fit to hand to a session. An idle connection that
        holds bytes (a FATAL after the server's crash recovery, a notice) or saw EOF is not."""
        proto = self._proto
        return self.alive and not proto.parser.buffered and not proto.raw

    async def cancel(self) -> None:
        """Ask the backend to cancel this session's running query (a new connection, as libpq does)."""
        if self.key is None:
            return
        target = self.target
        try:
            if target.is_unix_socket:
                _, writer = await asyncio.open_unix_connection(target.socket_path)
            else:
                _, writer = await asyncio.open_connection(target.host, target.port)
            writer.write(encode(CancelRequest(self.key.process_id, self.key.secret_key)))
            await writer.drain()
            writer.close()
        except OSError as exc:
            log.warning("cancel request to the backend failed: %s", exc)

    def close(self) -> None:
        """Send Terminate (best effort) and close."""
        if not self.transport.is_closing():
            try:
                self.transport.write(encode(Terminate()))
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            self.transport.close()
        self.broken = True
