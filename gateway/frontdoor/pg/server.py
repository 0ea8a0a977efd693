"""The pg front door: accept connections, run startup and authentication, then a :class:`PgSession`.

    server = PgServer(gw, pool, host="127.0.0.1", port=6432, ssl_ctx=None)
    await server.start()      # server.port is the bound port
    await server.stop()

Every failure ends as an ErrorResponse to that client only (FATAL 08P01 for malformed bytes,
28P01 for a failed login, 08006 when the backend is down); the server keeps serving.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import secrets
import ssl
import time
from typing import Any

from gateway.analyzer.settings import reported
from gateway.backend.pool import BackendPool
from gateway.errors import BackendUnavailable, GatewayError, PolicyDenied
from gateway.frontdoor.pg import responses
from gateway.frontdoor.pg.auth import authenticate
from gateway.frontdoor.pg.admin import ADMIN_DATABASE, may_administer, run_admin
from gateway.frontdoor.pg.channel import ClientChannel, ClientGone
from gateway.frontdoor.pg.door import Door, DoorLimits
from gateway.frontdoor.pg.pooling import startup_sql
from gateway.frontdoor.pg.session import PgSession, SessionClosed
from gateway.frontdoor.pg.startup import read_startup, session_settings
from gateway.frontdoor.pg.throttle import LoginThrottle
from gateway.wire import BackendKeyData, CancelRequest, ParameterStatus, ProtocolError, ReadyForQuery, encode

log = logging.getLogger(__name__)

_session_ids = itertools.count(1)


def make_ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context from PEM files, or ``None`` when no certificate is configured."""
    if not cert or not key:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class PgServer:
    def __init__(self, gw: Any, pool: BackendPool, *, host: str = "127.0.0.1", port: int = 6432,
                 ssl_ctx: ssl.SSLContext | None = None, cert_file: str | None = None, require_tls: bool = False,
                 limits: DoorLimits | None = None, pool_mode: str = "transaction", worker: Any = None) -> None:
        self.gw = gw
        self.pool = pool
        self.host = host
        self.port = port
        self.ssl_ctx = ssl_ctx
        self.cert_pem = open(cert_file, encoding="ascii").read() if cert_file and ssl_ctx else None
        self.require_tls = require_tls
        self.pool_mode = pool_mode
        #: a :class:`~gateway.workers.WorkerSlot` under ``--workers N``: its socket, the counts shared by
        #: every worker, the other workers' cancel sockets; None for a single process
        self.worker = worker
        if worker is None:
            self.door = Door(limits or DoorLimits())
            self.throttle = LoginThrottle()
        else:
            from gateway.frontdoor.pg.shared import SharedDoor, SharedLoginThrottle

            self.door = SharedDoor(limits or DoorLimits(), worker.door_file, worker.index)
            self.throttle = SharedLoginThrottle(worker.door_file)
        self._peer_server: asyncio.AbstractServer | None = None
        self.sessions: dict[int, tuple[bytes, PgSession]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._refusing = 0  # clients over a limit, being told so

    def gauges(self) -> dict[str, float]:
        """The wire door and its backend pool, for /metrics."""
        door = self.door
        out: dict[str, float] = {
            "gateway_wire_clients": door.total, "gateway_wire_sessions": len(self.sessions),
            "gateway_wire_max_connections": door.limits.max_connections,
        }
        for kind, n in door.refused.items():
            out[f"gateway_wire_refused_{kind}"] = n
        for key, value in self.pool.stats.items():
            out[f"gateway_wire_backend_pool_{key}"] = value
        return out

    async def start(self) -> None:
        # each client socket is a ClientChannel (a Protocol feeding the parser); its read limit bounds
        # what one client can make the gateway hold unread
        loop = asyncio.get_running_loop()
        if self.worker is not None and self.worker.pg_sock is not None:  # bound by the supervisor
            self._server = await loop.create_server(self._channel, sock=self.worker.pg_sock)
            own = self.worker.cancel_socket(self.worker.index)
            own.unlink(missing_ok=True)
            self._peer_server = await asyncio.start_unix_server(self._peer_cancel, path=str(own))
        else:
            self._server = await loop.create_server(self._channel, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        if self.door.sweep_interval:
            self._sweeper = asyncio.create_task(self._sweep_idle())

    async def _sweep_idle(self) -> None:
        """Close sessions idle past idle_session_timeout / idle_in_transaction_timeout."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.door.sweep_interval)
            now = time.monotonic()
            for _secret, session in list(self.sessions.values()):
                expired = self.door.idle_expired(session, now)
                if expired is not None:
                    log.info("closing an idle session of %s from %s: %s", session.ctx.requester.name,
                             session.channel.address, expired[1].removeprefix("gateway: "))
                    session.channel.write(responses.error(*expired, fatal=True))
                    loop.call_soon(session.channel.close)  # the session loop sees EOF and cleans up
                    session.idle_since = 0.0

    async def drain(self, timeout: float) -> None:
        """Stop accepting; end each session once it has no request in flight (FATAL 57P01), for up to
        ``timeout`` seconds; what is left is cut by :meth:`stop`."""
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout
        log.info("draining %d session(s) for up to %g s", len(self.sessions), timeout)
        loop = asyncio.get_running_loop()
        while self.sessions and time.monotonic() < deadline:
            for _secret, session in list(self.sessions.values()):
                if session.idle_since and not session.relay.busy and not session.holding:
                    session.channel.write(responses.error(
                        "57P01", "gateway: terminating connection due to administrator command (the gateway is "
                        "shutting down)", fatal=True))
                    loop.call_soon(session.channel.close)
                    session.idle_since = 0.0
            await asyncio.sleep(0.05)
        if self.sessions:
            log.warning("%d session(s) still busy after %g s: cut", len(self.sessions), timeout)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._peer_server is not None:
            self._peer_server.close()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass
        close = getattr(self.door, "close", None)
        if close is not None:
            close()

    def _channel(self) -> ClientChannel:
        return ClientChannel(self.door.limits.max_message_before_login, self._open)

    def _open(self, channel: ClientChannel) -> None:
        """A client connected: its session runs in a task of its own."""
        task = asyncio.get_running_loop().create_task(self._client(channel))
        self._tasks.add(task)

    async def _client(self, channel: ClientChannel) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        door = self.door
        refusal = door.admit(channel.host)
        try:
            if refusal is not None:
                if self._refusing >= max(16, door.limits.max_connections // 10):
                    return  # far over: not even a startup read, the socket is closed at once
                self._refusing += 1
                try:
                    await self._refuse_after_startup(channel, refusal)
                finally:
                    self._refusing -= 1
                return
            try:
                await self._serve(channel)
            finally:
                door.leave(channel.host)
        except (ClientGone, SessionClosed, ConnectionError, asyncio.IncompleteReadError):
            pass
        except ProtocolError as exc:
            channel.write(responses.error("08P01", f"gateway: invalid protocol message: {exc}", fatal=True))
        except GatewayError as exc:
            channel.write(responses.error(exc.sqlstate, exc.client_message(), fatal=True))
        except asyncio.CancelledError:
            channel.write(responses.error("57P01", "gateway: the gateway is shutting down", fatal=True))
        except ssl.SSLError as exc:
            log.info("TLS failure from %s: %s", channel.address, exc)
        except Exception:  # never a traceback to the client, never a crash of the server
            log.exception("internal error in a pg session from %s", channel.address)
            channel.write(responses.error("XX000", "gateway: internal error (see the gateway log)", fatal=True))
        finally:
            self._tasks.discard(task)
            await channel.aclose()

    async def _refuse_after_startup(self, channel: ClientChannel, refusal: GatewayError) -> None:
        """Like PostgreSQL, read the startup packet (answering SSLRequest) before refusing, so that
        the client shows the reason; bounded by the startup deadline."""
        try:
            async with asyncio.timeout(min(2.0, self.door.limits.startup_timeout)):
                startup = await read_startup(channel, self.ssl_ctx, False, self._cancel)
        except (TimeoutError, ProtocolError, GatewayError, ssl.SSLError):
            return
        if startup is not None:
            channel.write(responses.error(refusal.sqlstate, refusal.client_message(), fatal=True))

    async def _serve(self, channel: ClientChannel) -> None:
        gw = self.gw
        limits = self.door.limits
        try:
            async with asyncio.timeout(limits.startup_timeout):
                startup = await read_startup(channel, self.ssl_ctx, self.require_tls, self._cancel)
        except TimeoutError:  # closed without a word, as PostgreSQL does (the client may not speak yet)
            log.info("closing a connection from %s: no startup packet within %g s (setting startup_timeout_ms)",
                     channel.address, limits.startup_timeout)
            return
        if startup is None:
            return
        settings = session_settings(startup, gw.validate_setting)
        try:
            async with asyncio.timeout(limits.auth_timeout):
                entry = await authenticate(channel, gw, settings.user, self.throttle, self.cert_pem)
        except TimeoutError:
            log.info("closing a connection from %s: login of %r not done within %g s", channel.address,
                     settings.user, limits.auth_timeout)
            raise LoginTimeout(f"gateway: canceling authentication due to timeout ({limits.auth_timeout:g} s, "
                               "setting auth_timeout_ms)") from None
        refusal = self.door.admit_requester(entry.requester.name, channel.host)
        if refusal is not None:
            raise refusal
        try:
            channel.parser.max_message = limits.max_message
            await self._logged_in(channel, settings, entry)
        finally:
            self.door.leave_requester(entry.requester.name)

    async def _logged_in(self, channel: ClientChannel, settings: Any, entry: Any) -> None:
        gw = self.gw
        from gateway.pipeline import SessionContext
        from gateway.policy.types import PurposeClaim

        session_id = f"s-{next(_session_ids)}-{secrets.token_hex(3)}"
        ctx = SessionContext(
            requester=entry.requester, claim=PurposeClaim(**settings.gateway), front_door="wire",
            client_addr=channel.address, tls=channel.tls, session_id=session_id,
            application_name=settings.application_name,
        )
        if settings.database == ADMIN_DATABASE:  # the admin console: no backend connection at all
            if not may_administer(entry.requester):
                raise PolicyDenied(f"gateway: requester {entry.requester.name} may not use the admin console "
                                   "(database gateway is for the auditor or DBA role)")
            params = reported({}, entry.requester.name, settings.application_name)
            params.setdefault("server_version", "15.0")
            channel.write(b"".join(encode(ParameterStatus(k, v)) for k, v in params.items())
                          + encode(BackendKeyData(secrets.randbits(31) or 1, secrets.token_bytes(4))))
            await run_admin(channel, self, ctx)
            return
        backend = await self.pool.acquire()
        held = [backend]  # what this function still has to give back (the session takes it over)
        try:
            # transaction pooling: startup settings (JDBC sends DateStyle, TimeZone, extra_float_digits) are
            # set on whichever connection the session gets, when it differs (PgBouncer's tracked parameters);
            # application_name is the gateway session's, as in PgBouncer
            pooled = self.pool_mode == "transaction"
            backend_sets = {k: _literal(v) for k, v in settings.backend.items()
                            if not pooled or k != "application_name"}
            if backend_sets:
                try:
                    await backend.simple(startup_sql(backend_sets, {}))
                except ValueError as exc:
                    raise _invalid(str(exc)) from None
                backend.applied = dict(backend_sets)
            await self._run_session(channel, gw, ctx, held, settings.application_name, pooled, backend_sets)
        finally:
            for conn in held:
                if conn.alive:
                    await self.pool.release(conn, reset=not getattr(conn, "reuse", False))
                else:
                    await self.pool.discard(conn)

    async def _run_session(self, channel: ClientChannel, gw: Any, ctx: Any, held: list[Any], app_name: str,
                           pooled: bool, startup_sets: dict[str, str] | None = None) -> None:
        backend = held[0]
        params = reported(backend.server_params, ctx.requester.name, app_name)
        # the backend's own process id, so that pg_backend_pid() agrees with BackendKeyData (the secret
        # stays the gateway's: a cancel goes through the gateway); a random one if it is taken
        pid = backend.key.process_id if backend.key is not None else 0
        while not pid or pid in self.sessions:
            pid = secrets.randbits(31) or 1
        secret = secrets.token_bytes(4)
        lost = asyncio.get_running_loop().create_future()

        def on_lost(exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(None)

        session = PgSession(gw, channel, backend, ctx, self.pool if pooled else None, on_lost,
                            startup_sets=startup_sets if pooled else None,
                            max_named=self.door.limits.max_session_statements)
        held.clear()  # the session holds its connection now (none at times, when pooled)
        self.sessions[pid] = (secret, session)
        backend.attach(session.relay.feed, on_lost)
        channel.write(b"".join(encode(ParameterStatus(k, v)) for k, v in params.items())
                      + encode(BackendKeyData(pid, secret)) + encode(ReadyForQuery("I")))
        await _log_event(gw, ctx, "session_start")
        loop_task = asyncio.ensure_future(session.run())
        try:
            done, _ = await asyncio.wait({loop_task, lost}, return_when=asyncio.FIRST_COMPLETED)
            if loop_task in done:
                loop_task.result()
            else:
                loop_task.cancel()
                raise BackendUnavailable("gateway: lost the connection to the backend database")
        finally:
            if not loop_task.done():
                loop_task.cancel()
            elif not loop_task.cancelled():
                loop_task.exception()  # retrieved: the session ended either way
            self.sessions.pop(pid, None)
            current, session.backend = session.backend, None
            if current is not None:
                current.status = session.relay.status
                if session.relay.busy:  # answers still in flight: never hand this connection to someone else
                    current.broken = True
                # a pooled session without backend state leaves nothing to reset: its connection (and the
                # prepared statements other sessions share on it) goes back as it is
                current.reuse = session.pool is not None and not session.pinned and session.relay.status == "I"
                held.append(current)
            await _log_event(gw, session.ctx, "session_end")

    async def _cancel(self, msg: CancelRequest) -> None:
        if await self._cancel_here(msg.process_id, bytes(msg.secret_key)):
            return
        if self.worker is not None and msg.process_id not in self.sessions:
            await self._pass_cancel(msg.process_id, bytes(msg.secret_key))

    async def _cancel_here(self, process_id: int, secret: bytes) -> bool:
        """Cancel this process's session with that key; False when it is not ours."""
        found = self.sessions.get(process_id)
        if found is None or not hmac.compare_digest(found[0], secret):
            return False
        backend = found[1].backend
        if backend is not None:  # a pooled session between transactions has nothing running
            await backend.cancel()
        return True

    async def _pass_cancel(self, process_id: int, secret: bytes) -> None:
        """The cancel landed on this worker, the session lives on another: tell every other worker
        (over its unix socket in the run's folder); the one holding the key cancels."""
        message = b"C" + process_id.to_bytes(4, "big") + secret[:4].ljust(4, b"\0")
        await asyncio.gather(*(peer_call(path, message, answer=False) for path in self.worker.peers))

    async def reload_other_workers(self) -> list[str]:
        """Ask every other worker to reload (the admin console's RELOAD); the names of those that did not."""
        others = [i for i in range(self.worker.count) if i != self.worker.index]
        answers = await asyncio.gather(*(peer_call(self.worker.cancel_socket(i), b"R", timeout=60.0) for i in others))
        return [f"w{i}" for i, answer in zip(others, answers) if answer != b"1"]

    async def _peer_cancel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Another worker asks: ``C`` + process id + secret (cancel it if it is ours), ``R`` (reload;
        answer 1 or 0), or ``M`` (answer with this worker's metrics text, for an aggregated /metrics)."""
        try:
            kind = await asyncio.wait_for(reader.readexactly(1), 2.0)
            if kind == b"C":
                data = await asyncio.wait_for(reader.readexactly(8), 2.0)
                await self._cancel_here(int.from_bytes(data[:4], "big"), data[4:])
            elif kind == b"R":  # the admin console's RELOAD, on another worker
                writer.write(b"1" if await self.gw.reload() else b"0")
                await writer.drain()
            elif kind == b"M":
                from gateway.frontdoor.http.health import metrics_text

                writer.write(metrics_text(self.gw, self.gw.metrics).encode())
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except Exception:  # noqa: BLE001 - a cancel that fails is a cancel not done, never a crash
            log.exception("answering another worker failed")
        finally:
            writer.close()


async def peer_call(path: Any, message: bytes, *, answer: bool = True, timeout: float = 2.0) -> bytes | None:
    """Send ``message`` to the worker listening at ``path``; its whole answer, or None if it is not
    there (restarting) or too slow."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    except (OSError, asyncio.TimeoutError):
        return None
    try:
        writer.write(message)
        await writer.drain()
        if not answer:
            return b""
        return await asyncio.wait_for(reader.read(), timeout)
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        writer.close()


async def _log_event(gw: Any, ctx: Any, kind: str) -> None:
    try:
        await gw.log_event(ctx, kind=kind)
    except Exception:  # noqa: BLE001 - session bookkeeping only
        log.debug("log_event %s failed", kind, exc_info=True)


class LoginTimeout(GatewayError):
    sqlstate = "08P01"
    http_status = 408
    code = "login_timeout"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _invalid(message: str) -> GatewayError:
    from gateway.errors import InvalidSetting

    return InvalidSetting(f"gateway: {message}")
