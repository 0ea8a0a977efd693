"""Transaction pooling for one wire session: the backend connection taken from the pool for a
statement and given back when the session is idle outside a transaction, and what follows the session
from connection to connection.

A named prepared statement lives on the backend under the gateway's name for its rewritten SQL and
types (:mod:`gateway.backend.prepared`), prepared again on whichever connection runs it; the unnamed
statement is Parsed again where another session replaced it. Backend settings from the startup
packet, and a SET alone outside a transaction, are the session's own (``tracked``) and set on each
connection it gets where that one differs (:func:`startup_sql`). A SET inside a transaction block
pins the session to its connection; a RESET ALL / DISCARD ALL that clears every such state unpins it.

:class:`Pooling` is the part of :class:`~gateway.frontdoor.pg.session.PgSession` that does this; the
session's state it uses is set up in ``PgSession.__init__``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from gateway.errors import BackendUnavailable, GatewayError, LimitExceeded
from gateway.frontdoor.pg import responses
from gateway.frontdoor.pg.relay import EXEC, EXT, QUERY, SYNC, Pending
from gateway.wire import Close, Parse, encode


class Pooling:
    """Transaction pooling (``pool`` given): the backend connection goes back to the pool whenever the
    session is idle outside a transaction, and one is taken again for the next statement."""

    # set by PgSession.__init__
    pool: Any
    backend: Any
    pinned: bool
    on_lost: Any
    relay: Any
    scope: Any
    tracked: dict[str, str]
    _defaults: dict[str, str]
    statements: dict[str, Any]
    portals: dict[str, Any]
    _out: list[bytes]
    _send: Callable[[bytes, Pending | None], None]
    skipping: bool
    _in_batch: bool
    _unserved_sync: bool
    _unnamed_open: bool
    _draining: bool
    _backend_set: bool
    _reset_on_release: bool
    _release_armed: bool
    pool_refusals: int

    def _write_backend(self, data: bytes) -> None:
        if self.backend is not None:
            self.backend.write(data)

    def pin(self) -> None:
        """From now on this session keeps its backend connection (it has state there)."""
        self.pinned = True

    def _take_now(self) -> bool:
        """A backend connection for this session without an await: one that is here already, or a free
        one from the pool that needs nothing first. False: :meth:`_ready_backend` must wait (for a
        connection, its health check, or the session's settings on it)."""
        if self.backend is not None:
            return True
        if self.pool is None:
            return False
        backend = self.pool.take_now()
        if backend is None:
            return False
        if startup_sql(self.tracked, backend.applied):  # settings to apply first: that is a round trip
            self.pool.release_now(backend)
            return False
        backend.attach(self.relay.feed, self.on_lost)
        self.backend = backend
        return True

    async def _take_backend(self, query: bool = False) -> bool:
        """Take a connection from the pool. When none is free in time (or the queue is full), every
        statement waiting for it is answered with the pool's error and the session goes on."""
        try:
            backend = self.pool.take_now() or await self.pool.acquire()
        except LimitExceeded as exc:
            self._refuse_unserved(exc, query)
            return False
        sql = startup_sql(self.tracked, backend.applied)
        if sql:  # the session's startup settings, where this connection has others
            try:
                await backend.simple(sql, timeout=10)
            except (BackendUnavailable, ValueError) as exc:
                await self.pool.discard(backend)
                self._refuse_unserved(BackendUnavailable(f"gateway: the backend connection could not take the "
                                                         f"session's settings ({exc})"), query)
                return False
            backend.applied = dict(self.tracked)
        backend.attach(self.relay.feed, self.on_lost)
        self.backend = backend
        return True

    async def _ready_backend(self, query: bool = False) -> bool:
        """A backend connection now, for a message that names a prepared statement (its backend name
        depends on what that connection holds). False: the pool refused and the batch is answered."""
        if self.backend is not None:
            return True
        if self.pool is None:
            return False
        return await self._take_backend(query)

    def _ensure_prepared(self, stmt: Any) -> str:
        """The statement's backend name, prepared first on this connection if it lacks it (the answer to
        that Parse is swallowed); over the bound, the least recently used statements are closed."""
        name = stmt.server_name
        assert name is not None and self.backend is not None
        held = self.backend.prepared
        if name in held:
            held.touch(name)
            return name
        for old in held.victims(keep=name):
            self._send(encode(Close("S", old)), Pending(EXT, swallow=True, done=held.close(old)))
            held.counters.evicted += 1
        self._send(encode(Parse(name, stmt.forwarded_sql or "", stmt.param_types)),
                   Pending(EXT, swallow=True, done=held.add(name)))
        held.counters.parses += 1
        return name

    def _ensure_unnamed(self, stmt: Any) -> None:
        """The connection's unnamed statement is this session's (else Parse it again, answer swallowed):
        between transactions another session may have used the connection."""
        assert self.backend is not None
        if self.backend.unnamed is not stmt:
            self._send(encode(Parse("", stmt.forwarded_sql or "", stmt.param_types)), Pending(EXT, swallow=True))
            self.backend.unnamed = stmt

    def _trackable(self, st: Any) -> tuple[str, str | None] | None:
        """A session-level SET of a client setting, alone and outside a transaction, in a pooled session:
        (name, SQL value or None for DEFAULT). It becomes the session's own, like a startup setting."""
        if self.pool is None or self.pinned or st.kind != "set" or self.scope.in_transaction \
                or self.relay.status != "I":
            return None
        found = _SESSION_SET.match(st.sql)
        return (found.group(1), found.group(2)) if found else None

    def _settings_done(self, statements: Any, tracked: tuple[str, str | None] | None) -> Any:
        """For a SET / RESET / DISCARD sent now: what to do once the backend answered (None: nothing)."""
        backend = self.backend
        assert backend is not None
        clears_prepared = backend.prepared.clear() if any(s.sql == "DISCARD ALL" for s in statements) else None
        if tracked is None:
            backend.applied = None  # RESET / DISCARD / a pinned SET: what the connection carries is unknown
        resets = [s.sql for s in statements if s.kind == "set" and s.sql.startswith(("RESET", "DISCARD ALL"))]

        def done(ok: bool) -> None:
            if clears_prepared is not None:
                clears_prepared(ok)
            if not ok:
                return
            if tracked is not None:
                name, value = tracked
                if value is None:
                    self.tracked.pop(name, None)
                    if name in self._defaults:
                        self.tracked[name] = self._defaults[name]
                else:
                    self.tracked[name] = value
                if backend.applied is not None:
                    backend.applied = None if value is None else {**backend.applied, name: value}
            for sql in resets:
                if sql in ("RESET ALL", "DISCARD ALL"):
                    self.tracked = dict(self._defaults)
                else:
                    name = sql.removeprefix("RESET ")
                    self.tracked.pop(name, None)
                    if name in self._defaults:
                        self.tracked[name] = self._defaults[name]
        return done

    def _forget_on_failure(self, name: str, stmt: Any, change: Any) -> Any:
        """The Parse of a client's named statement: if the backend refused or skipped it, the client's
        name does not exist either (as in PostgreSQL)."""
        def done(ok: bool) -> None:
            change(ok)
            if not ok and self.statements.get(name) is stmt:
                del self.statements[name]
        return done

    def _refuse_unserved(self, exc: GatewayError, query: bool = False) -> None:
        """Answer what was queued for a backend that never came as the backend would answer an error:
        each simple Query gets the error and ReadyForQuery; an extended batch gets the error once and
        ReadyForQuery at its Sync (the rest of the batch is skipped, as after any error). The relay
        does the rest: outcome records (with the error's SQLSTATE), gateway answers in order."""
        error = responses.error(exc.sqlstate, exc.client_message())
        ready = responses.ready("I")
        stream: list[bytes] = []
        in_batch_error = False
        for entry in self.relay.pending:
            if entry.kind == QUERY:
                stream += (error, ready)
            elif entry.kind in (EXT, EXEC) and not in_batch_error:
                stream.append(error)
                in_batch_error = True
            elif entry.kind == SYNC:
                stream.append(ready)
                in_batch_error = False
        self._out.clear()
        self._unnamed_open = False
        if query:  # the simple Query being handled now
            stream += (error, ready)
        elif in_batch_error or self._in_batch:
            if not in_batch_error:
                stream.append(error)
            self.skipping = True
            self._unserved_sync = True  # that batch's Sync is answered here, without a backend
        self.pool_refusals += 1
        self.relay.feed(b"".join(stream))

    def _maybe_release(self) -> None:
        """The relay has no answer pending: give the connection back if nothing ties the session to it."""
        self._release_armed = False
        backend = self.backend
        if (backend is None or self.pinned or self._out or self.relay.pending or self.relay.status != "I"
                or self._draining or self._unnamed_open or not backend.alive):
            return
        self.backend = None
        backend.detach()
        backend.status = "I"
        reset, self._reset_on_release = self._reset_on_release, False
        if reset:
            asyncio.get_running_loop().create_task(self.pool.release(backend, reset=True))
        else:
            self.pool.release_now(backend)

    def _state_left(self) -> bool:
        """Backend state that ties the session to its connection: a backend SET, or a statement left
        under the client's own name (only the unnamed one; named ones are the gateway's, see
        :meth:`_ensure_prepared`, and follow the session to any connection)."""
        return self._backend_set or any(st.local is None and st.server_name is None and name
                                        for name, st in self.statements.items())

    def _cleared(self, sql: str) -> None:
        """A RESET ALL / DISCARD ALL that ran alone, outside a transaction, succeeded, and
        nothing was sent after it: what it cleared is gone, and without other state the session unpins.
        The connection is reset (DISCARD ALL) when it goes back to the pool, as PgBouncer's
        server_reset_query does: what the client did not clear never reaches another client."""
        if sql in ("RESET ALL", "DISCARD ALL"):
            self._backend_set = False
        if sql == "DISCARD ALL":
            self.statements.clear()  # every prepared statement of the session, the gateway's too
            self.portals.clear()
        if self.pinned and self.pool is not None and not self._state_left():
            self.pinned = False
            self._reset_on_release = True
            if not self._release_armed:
                self._release_armed = True
                self.relay.idle_waiters.append(self._maybe_release)


_SESSION_SET = re.compile(r"SET (?:SESSION )?(\w+) (?:= (.+)|TO DEFAULT)\Z", re.S)
CLEARS_ONLY = ("RESET ", "DISCARD ", "DEALLOCATE ")  # they take state away, never leave any
_TRANSACTION_SCOPED = ("SET LOCAL ", "SET TRANSACTION ")  # gone when the transaction ends


def leaves_state(st: Any) -> bool:
    """A backend statement that leaves session state on its connection past the transaction: a SET.
    RESET / DISCARD / DEALLOCATE only clear state, and SET LOCAL / SET TRANSACTION end with the
    transaction (which keeps its connection anyway): none of them pins a pooled session."""
    return st.kind == "set" and not st.sql.startswith(CLEARS_ONLY + _TRANSACTION_SCOPED)


def startup_sql(want: dict[str, str], applied: dict[str, str] | None) -> str:
    """What makes a connection whose session settings are ``applied`` (None: unknown) carry ``want``
    (name -> SQL value, a literal as the analyzer writes it)."""
    if applied == want:
        return ""  # the usual case: nothing to change
    if applied is None:
        parts = ["RESET ALL"]
        todo = want.items()
    else:
        parts = [f"RESET {name}" for name in applied if name not in want]
        todo = [(k, v) for k, v in want.items() if applied.get(k) != v]
    parts += [f"SET {name} = {value}" for name, value in todo]
    return "; ".join(parts)


def renamed_bind(body: bytes, statement: str) -> bytes:
    """A Bind body with its statement name replaced (portal name and the rest kept as they are)."""
    portal_end = body.index(0)
    name_end = body.index(0, portal_end + 1)
    return body[:portal_end + 1] + statement.encode() + body[name_end:]
