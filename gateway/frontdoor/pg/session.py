"""One authenticated client session: read client messages, plan, log, forward; the relay answers.

Simple protocol: a Query is planned as a whole, logged, and forwarded with the rewritten SQL.
Extended protocol: each Parse is planned once (the plan's rewritten SQL is what the backend
prepares), each Bind is logged as one request, Describe is answered by the backend for the rewritten
statement. A refusal is sent to the backend as a failing statement (see :mod:`relay`) so the backend
skips to Sync and keeps its transaction state like a real error would, and the relay substitutes
the gateway's ErrorResponse. ``gateway.*`` settings never reach the backend.

Transaction pooling (``pool`` given) is :mod:`pooling`: prepared statements and settings follow the
session from connection to connection; only a SET inside a transaction block pins it to one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable
from time import monotonic, perf_counter
from typing import Any

from gateway.errors import (
    AuditUnavailable, FeatureNotSupported, GatewayError, InvalidSetting, TransactionAborted,
    UnknownSetting,
)
from gateway.audit.params import bind_params
from gateway.backend.prepared import server_name
from gateway.policy.claim_scope import ClaimScope, transaction_event
from gateway.policy.types import Decision
from gateway.frontdoor.pg import responses
from gateway.frontdoor.pg.hold import DurableHold
from gateway.frontdoor.pg.pooling import CLEARS_ONLY, Pooling, leaves_state, renamed_bind
from gateway.frontdoor.pg import writes as pg_writes
from gateway.frontdoor.pg.relay import EXEC, EXT, MARKER_SQL, QUERY, SYNC, Pending, Relay
from gateway.frontdoor.pg.startup import GATEWAY_FIELDS
from gateway.wire import (
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, NoData, ParameterDescription, Parse,
    ParseComplete, Query, RemoteProtocolError, encode,
)
from gateway.wire.buffer import Reader, cstr, frame

log = logging.getLogger(__name__)

LOCAL_KINDS = ("gateway_set", "gateway_show", "noop", "deallocate")
_PARSE_COMPLETE = encode(ParseComplete())
_BIND_COMPLETE = encode(BindComplete())
_CLOSE_COMPLETE = encode(CloseComplete())
_NO_DATA = encode(NoData())
_NO_PARAMS = encode(ParameterDescription(()))
_SYNC = frame(b"S", b"")
HIGH_WATER = 4 * 1024 * 1024
_WAIT = object()  # see PgSession._submit


class SessionClosed(Exception):
    """The client sent Terminate or went away."""


class UnknownStatement(GatewayError):
    sqlstate = "26000"
    http_status = 400
    code = "unknown_prepared_statement"


class StalePortal(GatewayError):
    sqlstate = "0A000"
    http_status = 409
    code = "stale_portal"


class DuplicateStatement(GatewayError):
    sqlstate = "42P05"
    http_status = 400
    code = "duplicate_prepared_statement"


@dataclasses.dataclass(frozen=True)
class Deallocate:
    """DEALLOCATE name / ALL: answered by the gateway, which forgets the client's names (the backend
    statements stay, shared, until the connection's bound closes them)."""

    name: str | None  # None: ALL
    kind: str = "deallocate"
    setting: None = None

    @property
    def command_tag(self) -> str:
        return "DEALLOCATE" if self.name is not None else "DEALLOCATE ALL"

    @property
    def sql(self) -> str:
        return f'DEALLOCATE "{self.name}"' if self.name is not None else "DEALLOCATE ALL"


def _as_local(st: Any) -> Any:
    if st.kind == "set" and st.sql == "DEALLOCATE ALL":
        return Deallocate(None)
    if st.kind == "set" and st.sql.startswith('DEALLOCATE "'):
        return Deallocate(st.sql[len('DEALLOCATE "'):-1])
    return st


@dataclasses.dataclass(slots=True)
class Statement:
    sql: str
    param_types: tuple[int, ...]
    forwarded_sql: str | None  # None for statements the gateway answers itself
    server_name: str | None = None  # a named statement: its name on the backend (see backend/prepared.py)
    local: Any = None  # the PlannedStatement of a gateway_set / gateway_show
    fresh_plan: Any = None  # the plan held for the next Bind (Parse-time, then the last Bind's)
    claim_version: int = 0


@dataclasses.dataclass(slots=True)
class Portal:
    statement: Statement
    plan: Any
    executed: bool = False  # a second Execute of a portal continues it: a cursor
    claim_version: int = 0  # the session's claim when it was bound: executed only under that one


class PgSession(Pooling):
    """``pool`` given: transaction pooling - the backend connection goes back to the pool whenever the
    session is idle outside a transaction, and one is taken again for the next statement (prepared
    statements and settings follow the session, see the module docstring). A session that SETs a
    backend setting inside a transaction block is pinned to its connection from then on (session
    mode). ``gateway.*`` settings live here, never there."""

    def __init__(self, gw: Any, channel: Any, backend: Any, ctx: Any, pool: Any = None,
                 on_lost: Any = None, *, startup_sets: dict[str, str] | None = None) -> None:
        self.gw = gw
        self.channel = channel
        self.backend = backend  # None while a pooled session holds no connection
        self.ctx = ctx
        self.pool = pool
        self.pinned = pool is None
        self.on_lost = on_lost
        # backend settings of a pooled session (name -> SQL value): from the startup packet, then its own
        # SETs outside transactions; set on whichever connection it gets, where that one differs
        self._defaults = dict(startup_sets or {})
        self.tracked = dict(self._defaults)
        self._unnamed_open = False  # an unnamed statement parsed and not executed yet: keep the connection
        self._backend_set = False  # a backend SET lives on the connection (one reason to be pinned)
        self._clearing: tuple[Any, str] | None = None  # (plan, sql) of a RESET ALL / DISCARD ALL in flight
        self._reset_on_release = False  # the connection had session state: the pool resets it on release
        self._release_armed = False
        self._in_batch = False  # an extended-protocol message came since the last Sync
        self._unserved_sync = False
        self.pool_refusals = 0
        self.claim_version = 0
        self.scope = ClaimScope.starting_with(ctx.claim)  # gateway.* with PostgreSQL's scoping
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.skipping = False
        self.idle_since = 0.0  # monotonic time since which the session waits for its client; 0: it does not
        self._out: list[bytes] = []
        self._last_parse: tuple[bytes, Parse] | None = None  # the last Parse body and its message (frozen)
        self._parse_memo: tuple[str, tuple[int, ...], bytes] | None = None  # the last rewritten unnamed Parse, encoded
        self._draining = False
        self._hold = DurableHold(self._write_now, self._record_failed)  # no record, no answer
        self.relay = Relay(self._write_client, self._write_backend, self._outcome, on_row_limit=self._row_limit)
        self._handlers = {
            ord("Q"): self._query, ord("P"): self._parse, ord("B"): self._bind, ord("D"): self._describe,
            ord("E"): self._execute, ord("S"): self._sync, ord("H"): self._flush, ord("C"): self._close,
            ord("X"): self._terminate, ord("F"): self._function_call, ord("d"): self._ignore,
            ord("c"): self._ignore, ord("f"): self._ignore,
        }

    @property
    def holding(self) -> bool:
        """Answers held back until their request records are durable."""
        return self._hold.active

    # ---- plumbing -----------------------------------------------------------------------
    def _write_client(self, data: bytes) -> None:
        self._hold.write(data)

    def _write_now(self, data: bytes) -> None:
        writer = self.channel.writer
        try:
            writer.write(data)
        except RuntimeError:  # the client's transport is closed (it went away mid-answer): drop the bytes
            return
        if not self._draining and writer.transport.get_write_buffer_size() > HIGH_WATER:
            self._draining = True
            if self.backend is not None:
                self.backend.pause_reading()
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            await self.channel.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._draining = False
            if self.backend is not None and self.backend.alive:
                self.backend.resume_reading()

    def _send(self, data: bytes, entry: Pending | None) -> None:
        if entry is not None:
            self.relay.expect(entry)
        self._out.append(data)

    def _flush_backend(self) -> None:
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            if self.backend is not None and self.backend.alive:
                self.backend.write(data)

    def _outcome(self, plan: Any, rows: int, t0: float, sqlstate: str | None) -> None:
        if self._clearing is not None and plan is self._clearing[0]:
            sql, self._clearing = self._clearing[1], None
            if sqlstate is None and self.relay.status == "I" and not self.relay.pending:
                self._cleared(sql)
        try:
            self.gw.log_outcome(self.ctx, plan, rows=rows, duration_ms=(perf_counter() - t0) * 1000.0,
                                sqlstate=sqlstate)
        except Exception:  # noqa: BLE001 - the answer is already on its way; never break the relay
            log.exception("log_outcome failed")

    def _row_limit(self, plan: Any, rows: int, t0: float, record: bool) -> bytes:
        """An answer over the requester's row cap: its error (nothing of the answer is released)."""
        error = self.gw.refuse_rows(self.ctx, plan, rows, (perf_counter() - t0) * 1000.0, record=record)
        return responses.error(error.sqlstate, error.client_message())

    async def _log(self, plan: Any, params: tuple[object, ...] = ()) -> GatewayError | None:
        """Write the request record; a refusal error if the log is unavailable."""
        try:
            await self.gw.log_request(self.ctx, plan, params=params)
        except AuditUnavailable as exc:
            return exc
        return None

    def _submit(self, plan: Any, params: tuple[object, ...]) -> Any:
        """Start writing a read's request record and let the statement go to the backend meanwhile: the
        answer is held back until the record is durable, so the fsync overlaps the query instead of
        adding to it (None). Returns the error to refuse with, or ``_WAIT``: the record must be durable
        before anything is sent (not a read, or the log is known to be failing: then the wait refuses
        cleanly)."""
        gw = self.gw
        if not getattr(gw.audit, "available", False):
            return _WAIT
        for st in plan.statements:
            if st.kind != "select":
                return _WAIT  # only reads run before their record is durable
        hold = self._hold
        try:
            gw.submit_request(self.ctx, plan, params, then=hold.done)
        except AuditUnavailable as exc:
            return exc
        hold.waiting()  # its done-callback runs on a later loop turn, never before this
        return None

    async def _log_overlapped(self, plan: Any, params: tuple[object, ...] = ()) -> GatewayError | None:
        """:meth:`_submit`, or the record written first where it must be."""
        problem = self._submit(plan, params)
        if problem is _WAIT:
            return await self._log(plan, params)
        return problem  # type: ignore[no-any-return]

    async def _log_refuse_ext(self, plan: Any, params: tuple[object, ...] = ()) -> None:
        """A refused extended-protocol message: its record, then the error for the batch."""
        await self._log(plan, params)
        self._refuse_ext(plan.error.sqlstate, plan.error.client_message(plan.request_id))

    def _record_failed(self, message: str) -> None:
        """An answer's request record failed: it is never released, and the session ends."""
        writer = self.channel.writer
        writer.write(responses.error("58030", message, fatal=True))
        writer.close()

    def _refuse_query(self, sqlstate: str, message: str) -> None:
        """Answer a Query (or FunctionCall) with an error, in order, through the backend."""
        self._send(encode(Query(MARKER_SQL)), Pending(QUERY, data=responses.error(sqlstate, message)))

    def _refuse_ext(self, sqlstate: str, message: str) -> None:
        """Fail the current extended-protocol batch with an error; skip client messages until Sync."""
        self._send(encode(Parse("", MARKER_SQL)), Pending(EXT, data=responses.error(sqlstate, message)))
        self.skipping = True

    def _notice_redactions(self, plan: Any) -> None:
        for st in plan.statements:
            if st.redacted:
                self.relay.synthetic(responses.redaction_notice(tuple(plan.redacted), plan.request_id))
                break
        profile = plan.profile
        if profile is not None and profile.exception:  # only an exception purpose owes the use notice
            notice = plan.use_notice
            if notice is not None:
                self.relay.synthetic(responses.notice(f"{notice} (request {plan.request_id})"))

    # ---- the loop -----------------------------------------------------------------------
    # A handler does the common case without a coroutine (a read on a cached plan, answered by the
    # backend) and returns None; anything that must wait (a cold plan, a backend connection from the
    # pool, a record that must be durable first, a staff write, gateway settings) it returns as an
    # awaitable, which the loop awaits before the next message.
    async def run(self) -> None:
        parser = self.channel.parser
        handlers = self._handlers
        pooled = self.pool is not None
        while True:
            raw = parser.next_raw()
            if raw is None:
                if pooled:
                    if self._out and self.backend is None:
                        if not self._take_now():
                            await self._take_backend()  # waits for a free connection (pool wait setting)
                            if self.backend is None:
                                continue  # refused: the queued statements got the pool's error
                    if not self._release_armed and not self.pinned:
                        self._release_armed = True
                        if self.relay.pending:
                            self.relay.idle_waiters.append(self._maybe_release)
                        else:
                            self._flush_backend()
                            self._maybe_release()
                self._flush_backend()
                backend = self.backend
                while backend is not None and backend.transport.get_write_buffer_size() > HIGH_WATER:
                    await asyncio.sleep(0.005)  # the backend is not keeping up
                self.idle_since = monotonic()  # the door's sweeper closes sessions idle past their timeout
                await self.channel.fill()
                self.idle_since = 0.0
                continue
            handler = handlers.get(raw[0])
            if handler is None:
                raise RemoteProtocolError(f"unexpected message type {chr(raw[0])!r}")
            later = handler(raw[1])
            if later is not None:
                await later

    # ---- simple protocol ----------------------------------------------------------------
    def _query(self, body: bytes) -> Awaitable[None] | None:
        if self.skipping:
            return None
        sql = _text(body)
        plan = self.gw.plan_hot(self.ctx, sql)
        if plan is None:
            return self._query_cold(sql)
        statements = plan.statements
        if plan.error is None and len(statements) == 1 and statements[0].kind == "select":
            # the common case: one read, planned from the caches
            plan = self.gw.admit(self.ctx, plan)  # caps and rate limits (SPEC 9)
            if plan.error is None:
                problem = self._submit(plan, ())
                if problem is None:
                    self._notice_redactions(plan)
                    self._send(_query_message(statements[0].sql), Pending(QUERY, plan))
                    return None
                if problem is not _WAIT:
                    self._refuse_query(problem.sqlstate, problem.client_message(plan.request_id))
                    return None
            return self._query_admitted(plan)
        return self._query_planned(plan)

    async def _query_cold(self, sql: str) -> None:
        await self._query_planned(await self.gw.plan_cold(self.ctx, sql))

    async def _query_planned(self, plan: Any) -> None:
        if plan.error is not None:
            await self._log(plan)
            self._refuse_query(plan.error.sqlstate, plan.error.client_message(plan.request_id))
            return
        statements = plan.statements
        local = [s for s in map(_as_local, statements) if s.kind in LOCAL_KINDS]
        if local:
            if len(statements) != 1:
                error = FeatureNotSupported("gateway: SET and SHOW of gateway settings, and DEALLOCATE, must be "
                                            "sent alone")
                await self._log(dataclasses.replace(plan, error=error, decision=Decision(
                    "deny", error.message.removeprefix("gateway: "), rule="wire.local_alone")))
                self._refuse_query(error.sqlstate, error.client_message(plan.request_id))
                return
            result = await self._run_local(local[0], describe=True)
            if isinstance(result, GatewayError):
                self._refuse_query(result.sqlstate, result.client_message())
            else:
                self.relay.synthetic(result, ready=True)
            return
        if any(s.kind == "write" for s in statements):  # a staff write the policy allows (writes.py)
            await pg_writes.query_write(self, plan)
            return
        await self._query_admitted(self.gw.admit(self.ctx, plan))  # caps and rate limits (SPEC 9)

    async def _query_admitted(self, plan: Any) -> None:
        if plan.error is not None:
            await self._log(plan)
            self._refuse_query(plan.error.sqlstate, plan.error.client_message(plan.request_id))
            return
        statements = plan.statements
        sets = any(s.kind == "set" for s in statements)
        if sets and not await self._ready_backend(query=True):  # refused: no backend connection in time
            return
        problem = await self._log_overlapped(plan)
        if problem is not None:
            self._refuse_query(problem.sqlstate, problem.client_message(plan.request_id))
            return
        self._notice_redactions(plan)
        text = ";\n".join(s.sql for s in statements if s.kind != "empty" and s.sql)
        real = [s for s in statements if s.kind != "empty"]
        tracked = self._trackable(real[0]) if len(real) == 1 else None
        if tracked is not None:
            pass  # a setting of the session's own: set on every connection it gets (no pin)
        elif any(leaves_state(s) for s in statements):
            self._backend_set = True
            if not self.pinned:
                self.pin()  # a backend setting now lives on this connection: session mode from here on
        elif (self.pool is not None and len(real) == 1
              and real[0].kind == "set" and real[0].sql.startswith(CLEARS_ONLY)
              and self.relay.status == "I" and not self.relay.pending):
            self._clearing = (plan, real[0].sql)  # may unpin once it succeeded (see _cleared)
        await self._observe(statements)
        done = None
        if sets and self.backend is not None:
            done = self._settings_done(statements, tracked)
        self._send(_query_message(text), Pending(QUERY, plan, done=done))

    def _function_call(self, body: bytes) -> None:
        self._refuse_query("42501", "gateway: the function call protocol message is not allowed")

    def _ignore(self, body: bytes) -> None:
        return None  # COPY messages outside COPY mode: dropped, as PostgreSQL does

    def _terminate(self, body: bytes) -> None:
        raise SessionClosed()

    # ---- extended protocol --------------------------------------------------------------
    def _parse(self, body: bytes) -> Awaitable[None] | None:
        self._in_batch = True
        if self.skipping:
            return None
        last = self._last_parse
        if last is not None and last[0] == body:
            msg = last[1]  # the same Parse again (a client that does not keep prepared statements)
        else:
            msg = Parse.decode(Reader(body))
            self._last_parse = (body, msg)
        plan = self.gw.plan_hot(self.ctx, msg.sql, msg.param_types)
        if plan is None:
            return self._parse_cold(body, msg)
        return self._parse_planned(body, msg, plan)

    async def _parse_cold(self, body: bytes, msg: Parse) -> None:
        later = self._parse_planned(body, msg, await self.gw.plan_cold(self.ctx, msg.sql, msg.param_types))
        if later is not None:
            await later

    def _parse_planned(self, body: bytes, msg: Parse, plan: Any) -> Awaitable[None] | None:
        if plan.error is not None:
            return self._log_refuse_ext(plan)
        statements = [s for s in plan.statements if s.kind != "empty"]
        if len(statements) > 1:
            self._refuse_ext("42601", "cannot insert multiple commands into a prepared statement")
            return None
        st = _as_local(statements[0]) if statements else None
        if st is not None and st.kind in LOCAL_KINDS:
            self.statements[msg.name] = Statement(msg.sql, msg.param_types, None, local=st)
            self.relay.synthetic(_PARSE_COMPLETE)
            return None
        if st is not None and st.kind == "write":  # run by the gateway itself (writes.py)
            self.statements[msg.name] = Statement(msg.sql, msg.param_types, None, local=st, fresh_plan=plan,
                                                  claim_version=self.claim_version)
            self.relay.synthetic(_PARSE_COMPLETE)
            return None
        # a duplicate name is forwarded too (rewritten, like any Parse): the backend answers 42P05 if the
        # statement exists, and the client text itself never reaches the backend
        sql = st.sql if st is not None else ""
        leaves = st is not None and leaves_state(st) and self._trackable(st) is None  # else: decided at Execute
        if leaves:
            self._backend_set = True
        if not self.pinned:
            if leaves:
                self.pin()  # a backend setting lives on this connection
            elif not msg.name:
                self._unnamed_open = True
        if msg.name:
            return self._parse_named(msg, sql, plan)
        if not self._take_now():
            return self._parse_unnamed_later(body, msg, sql, plan)
        self._parse_unnamed(body, msg, sql, plan)
        return None

    async def _parse_unnamed_later(self, body: bytes, msg: Parse, sql: str, plan: Any) -> None:
        if await self._ready_backend():
            self._parse_unnamed(body, msg, sql, plan)

    def _parse_unnamed(self, body: bytes, msg: Parse, sql: str, plan: Any) -> None:
        stmt = Statement(msg.sql, msg.param_types, sql, fresh_plan=plan, claim_version=self.claim_version)
        self.statements[""] = stmt
        self.backend.unnamed = stmt  # whose unnamed statement the connection holds
        if sql == msg.sql:
            data = frame(b"P", body)
        else:  # the same rewritten statement again and again (pgbench -M extended): encoded once
            memo = self._parse_memo
            if memo is not None and memo[0] == sql and memo[1] == msg.param_types:
                data = memo[2]
            else:
                data = encode(Parse("", sql, msg.param_types))
                self._parse_memo = (sql, msg.param_types, data)
        self._send(data, Pending(EXT))

    async def _parse_named(self, msg: Parse, sql: str, plan: Any) -> None:
        """A named statement is prepared under the gateway's name for its rewritten SQL and types:
        answered at once when this connection already holds it (another client prepared the same)."""
        if msg.name in self.statements:
            self._refuse_ext("42P05", f'prepared statement "{msg.name}" already exists')
            return
        if not await self._ready_backend():
            return
        stmt = Statement(msg.sql, msg.param_types, sql, server_name=server_name(sql, msg.param_types),
                         fresh_plan=plan, claim_version=self.claim_version)
        self.statements[msg.name] = stmt
        held = self.backend.prepared
        held.counters.client_parses += 1
        assert stmt.server_name is not None
        if stmt.server_name in held:
            held.touch(stmt.server_name)
            held.counters.shared += 1
            self.relay.synthetic(_PARSE_COMPLETE)
            return
        for old in held.victims(keep=stmt.server_name):
            self._send(encode(Close("S", old)), Pending(EXT, swallow=True, done=held.close(old)))
            held.counters.evicted += 1
        held.counters.parses += 1
        change = held.add(stmt.server_name)
        self._send(encode(Parse(stmt.server_name, sql, msg.param_types)),
                   Pending(EXT, done=self._forget_on_failure(msg.name, stmt, change)))

    def _bind(self, body: bytes) -> Awaitable[None] | None:
        self._in_batch = True
        if self.skipping:
            return None
        msg = Bind.decode(Reader(body))
        stmt = self.statements.get(msg.statement)
        if stmt is None:
            # never forwarded: a backend name is the gateway's, and a pooled connection's unnamed
            # statement may be another client's
            self._refuse_ext("26000", f'prepared statement "{msg.statement}" does not exist' if msg.statement
                             else "unnamed prepared statement does not exist")
            return None
        if stmt.local is not None or not self._take_now():
            return self._bind_later(body, msg, stmt)
        return self._bind_plan(body, msg, stmt)

    async def _bind_later(self, body: bytes, msg: Bind, stmt: Statement) -> None:
        """A Bind that waits: for a backend connection, or run by the gateway itself."""
        if stmt.local is None and not await self._ready_backend():
            return
        if stmt.local is not None and stmt.local.kind == "write":
            bound = await pg_writes.bind_write(self, stmt, msg, _params(msg, stmt.param_types))
            if isinstance(bound, GatewayError):
                self._refuse_ext(bound.sqlstate, bound.client_message())
                return
            self.portals[msg.portal] = Portal(stmt, bound, claim_version=self.claim_version)
            self.relay.synthetic(_BIND_COMPLETE)
            return
        if stmt.local is not None:
            self.portals[msg.portal] = Portal(stmt, None)
            self.relay.synthetic(_BIND_COMPLETE)
            return
        later = self._bind_plan(body, msg, stmt)
        if later is not None:
            await later

    def _bind_plan(self, body: bytes, msg: Bind, stmt: Statement) -> Awaitable[None] | None:
        """The plan of a forwarded statement's Bind: the held one (the Parse-time plan, then the last
        Bind's) again while nothing it was decided under changed (:meth:`Gateway.rebind`: claim,
        catalog, policy, requesters, the day's profile), else planned again (from the caches)."""
        held = stmt.fresh_plan
        plan = self.gw.rebind(self.ctx, held) if held is not None and stmt.claim_version == self.claim_version \
            else None
        if plan is None:
            plan = self.gw.plan_hot(self.ctx, stmt.sql, stmt.param_types)
            if plan is None:
                return self._bind_cold(body, msg, stmt)
            if plan.error is not None:
                return self._log_refuse_ext(plan)
            self._replanned(stmt, plan)
        return self._bind_planned(body, msg, stmt, plan)

    async def _bind_cold(self, body: bytes, msg: Bind, stmt: Statement) -> None:
        plan = await self.gw.plan_cold(self.ctx, stmt.sql, stmt.param_types)
        if plan.error is not None:
            await self._log_refuse_ext(plan)
            return
        self._replanned(stmt, plan)
        later = self._bind_planned(body, msg, stmt, plan)
        if later is not None:
            await later

    def _replanned(self, stmt: Statement, plan: Any) -> None:
        sql = plan.statements[0].sql if plan.statements else ""
        if sql != stmt.forwarded_sql and stmt.server_name is not None:
            # the purpose (or a catalog reload) changed the rewrite: another backend statement
            stmt.server_name = server_name(sql, stmt.param_types)
            stmt.forwarded_sql = sql
        elif sql != stmt.forwarded_sql:  # the purpose changed the rewrite: prepare it again
            stmt.forwarded_sql = sql
            self.backend.unnamed = None
        stmt.claim_version = self.claim_version
        stmt.fresh_plan = plan  # held for the next Bind (Gateway.rebind checks it still holds)

    def _bind_planned(self, body: bytes, msg: Bind, stmt: Statement, plan: Any) -> Awaitable[None] | None:
        params = _params(msg, stmt.param_types)
        plan = self.gw.admit(self.ctx, plan, params)  # caps and rate limits (SPEC 9)
        if plan.error is not None:
            return self._log_refuse_ext(plan, params)
        problem = self._submit(plan, params)
        if problem is _WAIT:
            return self._bind_logged(body, msg, stmt, plan, params)
        if problem is not None:
            self._refuse_ext(problem.sqlstate, problem.client_message(plan.request_id))
            return None
        self._bind_send(body, msg, stmt, plan)
        return None

    async def _bind_logged(self, body: bytes, msg: Bind, stmt: Statement, plan: Any,
                           params: tuple[object, ...]) -> None:
        """A Bind whose record is durable before it is forwarded (not a read, or the log failing)."""
        problem = await self._log(plan, params)
        if problem is not None:
            self._refuse_ext(problem.sqlstate, problem.client_message(plan.request_id))
            return
        self._bind_send(body, msg, stmt, plan)

    def _bind_send(self, body: bytes, msg: Bind, stmt: Statement, plan: Any) -> None:
        self._notice_redactions(plan)
        self.portals[msg.portal] = Portal(stmt, plan, claim_version=self.claim_version)
        if stmt.server_name is not None:
            body = renamed_bind(body, self._ensure_prepared(stmt))
        else:
            self._ensure_unnamed(stmt)
        self._send(frame(b"B", body), Pending(EXT))

    def _describe(self, body: bytes) -> Awaitable[None] | None:
        self._in_batch = True
        if self.skipping:
            return None
        kind, name = _kind_and_name(body, Describe)
        if kind == "S":
            stmt = self.statements.get(name)
            if stmt is not None and stmt.local is not None and stmt.local.kind == "write":
                return self._describe_write(pg_writes.describe_statement(self, stmt))
            if stmt is not None and stmt.local is not None:
                self.relay.synthetic(_NO_PARAMS + _local_description(stmt.local))
                return None
            if stmt is None and name:
                self._refuse_ext("26000", f'prepared statement "{name}" does not exist')
                return None
            if stmt is not None:
                if not self._take_now():
                    return self._describe_later(body, stmt)
                self._describe_statement(body, stmt)
                return None
        else:
            portal = self.portals.get(name)
            if portal is not None and portal.statement.local is not None and portal.statement.local.kind == "write":
                return self._describe_write(pg_writes.portal_description(self, portal.plan))
            if portal is not None and portal.statement.local is not None:
                self.relay.synthetic(_local_description(portal.statement.local))
                return None
        self._send(frame(b"D", body), Pending(EXT))
        return None

    async def _describe_later(self, body: bytes, stmt: Statement) -> None:
        if await self._ready_backend():
            self._describe_statement(body, stmt)

    def _describe_statement(self, body: bytes, stmt: Statement) -> None:
        """Describe a forwarded statement, under its backend name (prepared there first if need be)."""
        if stmt.server_name is not None:
            self._send(encode(Describe("S", self._ensure_prepared(stmt))), Pending(EXT))
            return
        self._ensure_unnamed(stmt)
        self._send(frame(b"D", body), Pending(EXT))

    def _execute(self, body: bytes) -> Awaitable[None] | None:
        self._unnamed_open = False
        self._in_batch = True
        if self.skipping:
            return None
        portal = self.portals.get(_execute_portal(body))
        if portal is None:
            self._send(frame(b"E", body), Pending(EXEC, None))
            return None
        plan = portal.plan
        if portal.statement.local is not None:
            return self._execute_local(portal)
        if plan is not None and (portal.claim_version != self.claim_version
                                 or (plan.basis is not None and not self.gw.holds(self.ctx, plan))):
            self._refuse_stale(plan)
            return None
        if plan is not None and portal.executed and plan.row_cap:
            error = self.gw.refuse_cursor(self.ctx, plan)  # continuing a portal is a cursor
            self._refuse_ext(error.sqlstate, error.client_message(plan.request_id))
            return None
        portal.executed = True
        if plan is not None and plan.statements[0].kind != "select":
            return self._execute_other(body, plan)
        self._send(frame(b"E", body), Pending(EXEC, plan))
        return None

    def _refuse_stale(self, plan: Any) -> None:
        """A portal bound under a claim (or a policy, requesters file, catalog) no longer in force is not
        executed: its answer was decided for another one (SPEC 3, 8). Its request has an outcome record
        that says so; the client binds it again, under what is in force now."""
        error = StalePortal("gateway: the portal was bound under a purpose or policy no longer in force (SET "
                            "gateway.*, RESET ALL, a reload); bind it again")
        self.gw.log_outcome(self.ctx, plan, rows=0, duration_ms=0.0, sqlstate=error.sqlstate, status="refused")
        self._refuse_ext(error.sqlstate, error.client_message(plan.request_id))

    async def _execute_local(self, portal: Portal) -> None:
        """Execute a portal the gateway answers itself: a staff write, a gateway setting."""
        if portal.statement.local.kind == "write":
            if portal.claim_version != self.claim_version:
                error = StalePortal("gateway: the write portal was bound under a purpose no longer in force; "
                                    "bind it again")
                self._refuse_ext(error.sqlstate, error.client_message())
                return
            if portal.executed:
                self._refuse_ext("0A000", "gateway: a write portal runs once; bind it again")
                return
            portal.executed = True
            result = await pg_writes.execute_write(self, portal.plan)
            if isinstance(result, GatewayError):
                self._refuse_ext(result.sqlstate, result.client_message(portal.plan.plan.request_id))
            else:
                self.relay.synthetic(result)
            return
        result = await self._run_local(portal.statement.local, describe=False)
        if isinstance(result, GatewayError):
            self._refuse_ext(result.sqlstate, result.client_message())
        else:
            self.relay.synthetic(result)

    async def _execute_other(self, body: bytes, plan: Any) -> None:
        """Execute a statement that is not a read: transaction events and settings are followed."""
        done = None
        await self._observe(plan.statements)
        st = plan.statements[0]
        if st.kind == "set":
            if not await self._ready_backend():
                return
            tracked = self._trackable(st)
            if tracked is None and leaves_state(st) and not self._backend_set:
                self._backend_set = True  # in a transaction after all: the setting pins the session
                if not self.pinned:
                    self.pin()
            done = self._settings_done(plan.statements, tracked)
        self._send(frame(b"E", body), Pending(EXEC, plan, done=done))

    def _sync(self, body: bytes) -> None:
        self.skipping = False
        self._in_batch = False
        if self._unserved_sync:  # the batch was refused for want of a backend connection
            self._unserved_sync = False
            self.relay.expect(Pending(SYNC))
            self.relay.feed(responses.ready("I"))
            return
        self._send(_SYNC if not body else frame(b"S", body), Pending(SYNC))

    def _flush(self, body: bytes) -> None:
        self._in_batch = True
        if not self.skipping:
            self._send(frame(b"H", body), None)

    def _close(self, body: bytes) -> None:
        self._in_batch = True
        if self.skipping:
            return
        kind, name = _kind_and_name(body, Close)
        if kind == "S":
            stmt = self.statements.pop(name, None)
            # the client's name is forgotten; the backend statement stays (shared, bounded, LRU-closed)
            local = (stmt is not None and (stmt.local is not None or stmt.server_name is not None)) \
                or (stmt is None and bool(name))
        else:
            portal = self.portals.pop(name, None)
            local = portal is not None and portal.statement.local is not None
        if local:
            self.relay.synthetic(_CLOSE_COMPLETE)
        else:
            self._send(frame(b"C", body), Pending(EXT))

    async def _describe_write(self, answer: Any) -> None:
        try:
            self.relay.synthetic(await answer)
        except GatewayError as exc:
            self._refuse_ext(exc.sqlstate, exc.client_message())

    # ---- gateway settings ---------------------------------------------------------------
    async def _run_local(self, st: Any, *, describe: bool) -> bytes | GatewayError:
        """Apply SET/RESET gateway.x or answer SHOW; returns the answer bytes or an error."""

        if st.kind == "noop":
            return responses.command_complete(st.command_tag or "SET")
        if st.kind == "deallocate":
            if st.name is None:
                for name in [n for n in self.statements if n]:
                    del self.statements[name]
            elif self.statements.pop(st.name, None) is None:
                return UnknownStatement(f'prepared statement "{st.name}" does not exist')
            return responses.command_complete(st.command_tag)
        name, value = st.setting if st.setting else ("", None)
        key = name.lower().removeprefix("gateway.")
        if st.kind == "gateway_show":
            if name.lower().startswith("gateway.") and key not in GATEWAY_FIELDS:
                return UnknownSetting(f'gateway: unrecognized configuration parameter "{name}"')
            shown = self.gw.show_value(self.ctx, name)
            head = responses.show_description(name) if describe else b""
            return head + responses.show_rows(shown)
        if key not in GATEWAY_FIELDS:
            return UnknownSetting(f'gateway: unrecognized configuration parameter "{name}"')
        if value is not None:
            problem = self.gw.validate_setting(f"gateway.{key}", value)
            if problem:
                return InvalidSetting(f"gateway: invalid value for gateway.{key}: {problem}")
        if self.scope.in_transaction and not self.relay.busy and self.relay.status == "E":
            return TransactionAborted("current transaction is aborted, commands ignored until end of transaction block")
        trial = self.scope.copy()
        applied = trial.set(key, value, local=st.sql == "SET LOCAL")
        problem = await self._claim_changed(trial)
        if problem is not None:
            return problem
        if not applied:
            return responses.notice("SET LOCAL can only be used in transaction blocks", "25P01") \
                + responses.command_complete(st.command_tag or "SET")
        return responses.command_complete(st.command_tag or "SET")

    async def _observe(self, statements: Any) -> None:
        """Transaction events, RESET ALL and DISCARD ALL scope the gateway.* settings as PostgreSQL does."""
        for st in statements:
            event = transaction_event(st.kind, st.sql)
            if event is None:
                continue
            trial = self.scope.copy()
            kind, name = event
            if kind == "commit" and not self.relay.busy and self.relay.status == "E":
                kind = "rollback"  # COMMIT of a failed transaction rolls it back
            if kind == "discard_all":
                if trial.in_transaction:
                    continue  # the backend refuses DISCARD ALL inside a transaction block
                trial.discard_all()
            elif kind == "reset_all":
                trial.reset_all()
            else:
                trial.event(kind, name)
            if await self._claim_changed(trial) is not None:
                log.warning("a purpose change by %s could not be logged", kind)

    async def _claim_changed(self, trial: ClaimScope) -> GatewayError | None:
        """Make ``trial`` the session's scope; a change of the effective purpose is logged first."""
        old, claim = self.ctx.claim, trial.claim
        if claim.purpose != old.purpose:
            try:  # recorded first: a purpose change that cannot be logged does not happen
                await self.gw.log_event(dataclasses.replace(self.ctx, claim=claim), kind="purpose_change",
                                        previous_purpose=old.purpose, claim=claim, accepted=True)
            except AuditUnavailable as exc:
                return exc
        self.scope = trial
        if claim != old:
            self.ctx = dataclasses.replace(self.ctx, claim=claim)
            self.claim_version += 1
        return None



def _local_description(st: Any) -> bytes:
    if st.kind == "gateway_show" and st.setting:
        return responses.show_description(st.setting[0])
    return _NO_DATA


def _params(msg: Bind, param_types: tuple[int, ...] = ()) -> tuple[object, ...]:
    """Bind parameters for the request log (see :mod:`gateway.audit.params`)."""
    return bind_params(msg.params, msg.param_formats, param_types)


def _text(body: bytes) -> str:
    """The SQL of a Query body (as ``Query.decode``, which raises the protocol error when it is malformed)."""
    end = body.find(b"\0")
    if end >= 0:
        try:
            return body[:end].decode("utf-8")
        except UnicodeDecodeError:
            pass
    return Query.decode(Reader(body)).sql


def _execute_portal(body: bytes) -> str:
    """The portal an Execute body names (as ``Execute.decode``, which raises when it is malformed)."""
    end = body.find(b"\0")
    if end >= 0 and len(body) >= end + 5:
        try:
            return body[:end].decode("utf-8")
        except UnicodeDecodeError:
            pass
    return Execute.decode(Reader(body)).portal


def _kind_and_name(body: bytes, message: Any) -> tuple[str, str]:
    """The kind (``S`` or ``P``) and name of a Describe or Close body (as ``message.decode``, which
    raises the protocol error when it is malformed)."""
    if len(body) >= 2 and (body[0] == 83 or body[0] == 80):
        end = body.find(b"\0", 1)
        if end >= 0:
            try:
                return chr(body[0]), body[1:end].decode("utf-8")
            except UnicodeDecodeError:
                pass
    msg = message.decode(Reader(body))
    return msg.kind, msg.name


def _query_message(sql: str) -> bytes:
    return frame(b"Q", cstr(sql))
