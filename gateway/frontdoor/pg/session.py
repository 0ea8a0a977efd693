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
from time import perf_counter
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
from gateway.frontdoor.pg.pooling import CLEARS_ONLY, Pooling, leaves_state
from gateway.frontdoor.pg import writes as pg_writes
from gateway.frontdoor.pg.relay import EXEC, EXT, MARKER_SQL, QUERY, Pending
from gateway.frontdoor.pg.startup import GATEWAY_FIELDS
from gateway.frontdoor.pg.steady import (
    WAIT as _WAIT, Portal, SessionCore, Statement, kind_and_name, query_message,
)
from gateway.wire import (
    Bind, BindComplete, Close, CloseComplete, Describe, NoData, ParameterDescription, Parse,
    ParseComplete, Query, RemoteProtocolError, encode,
)
from gateway.wire.buffer import frame

log = logging.getLogger(__name__)

LOCAL_KINDS = ("gateway_set", "gateway_show", "noop", "deallocate")
_PARSE_COMPLETE = encode(ParseComplete())
_BIND_COMPLETE = encode(BindComplete())
_CLOSE_COMPLETE = encode(CloseComplete())
_NO_DATA = encode(NoData())
_NO_PARAMS = encode(ParameterDescription(()))


#: seconds a Terminate waits for the answers asked for before it (see PgSession._terminate)
TERMINATE_WAIT = 10.0


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


class PgSession(Pooling):
    """``pool`` given: transaction pooling - the backend connection goes back to the pool whenever the
    session is idle outside a transaction, and one is taken again for the next statement (prepared
    statements and settings follow the session, see the module docstring). A session that SETs a
    backend setting inside a transaction block is pinned to its connection from then on (session
    mode). ``gateway.*`` settings live here, never there.

    The steady state (the loop, a read on a cached plan) is :class:`~gateway.frontdoor.pg.steady.SessionCore`
    (compiled); the state it shares with the rest (the attributes of :data:`_CORE_FIELDS`) lives there
    and is read and written here through properties. What it does not do itself it hands to the
    methods below (the rare paths)."""

    def __init__(self, gw: Any, channel: Any, backend: Any, ctx: Any, pool: Any = None,
                 on_lost: Any = None, *, startup_sets: dict[str, str] | None = None, max_named: int = 1000) -> None:
        self.core = SessionCore(self, gw, channel, backend, ctx, pool)  # the hold and the relay too
        self.core.max_named = max_named  # named statements, and named portals, it may hold (each)
        self.on_lost = on_lost
        # backend settings of a pooled session (name -> SQL value): from the startup packet, then its own
        # SETs outside transactions; set on whichever connection it gets, where that one differs
        self._defaults = dict(startup_sets or {})
        self.tracked = dict(self._defaults)
        self._backend_set = False  # a backend SET lives on the connection (one reason to be pinned)
        self.pool_refusals = 0
        self.scope = ClaimScope.starting_with(ctx.claim)  # gateway.* with PostgreSQL's scoping

    @property
    def holding(self) -> bool:
        """Answers held back until their request records are durable."""
        return self.core.hold.active

    def run(self) -> Awaitable[None]:
        return self.core.run()

    # ---- plumbing -----------------------------------------------------------------------
    def _send(self, data: bytes, entry: Pending | None) -> None:
        self.core.send(data, entry)

    def _flush_backend(self) -> None:
        self.core.flush_backend()

    def _take_now(self) -> bool:
        return self.core.take_now()

    def _maybe_release(self) -> None:
        self.core.maybe_release()

    def _release_reset(self, backend: Any) -> None:
        asyncio.get_running_loop().create_task(self.pool.release(backend, reset=True))

    async def _drain(self) -> None:
        try:
            await self.channel.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.core.draining = False
            if self.backend is not None and self.backend.alive:
                self.backend.resume_reading()

    def _outcome_clearing(self, plan: Any, sqlstate: str | None) -> None:
        """A RESET ALL / DISCARD ALL in flight: once it succeeded alone, what it cleared is gone."""
        if plan is self._clearing[0]:
            sql, self._clearing = self._clearing[1], None
            if sqlstate is None and self.relay.status == "I" and not self.relay.pending:
                self._cleared(sql)

    def _outcome_failed(self) -> None:
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
        return self.core.submit(plan, params)

    @staticmethod
    def _submit_failed(exc: Exception) -> GatewayError:
        """``submit_request`` raised: the log refuses (the request is refused with it), else a bug."""
        if isinstance(exc, AuditUnavailable):
            return exc
        raise exc

    async def _log_overlapped(self, plan: Any, params: tuple[object, ...] = ()) -> GatewayError | None:
        """:meth:`_submit`, or the record written first where it must be."""
        problem = self.core.submit(plan, params)
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

    def _refuse_held(self, what: str) -> None:
        """A Parse of one more named statement (or a Bind of one more named portal) than the session
        may hold: refused like PostgreSQL's own limits (54000), the batch skipped to its Sync."""
        verb = "preparing" if what == "prepared statements" else "binding"
        self._refuse_ext("54000", f"gateway: this session already holds {self.core.max_named} named {what}, the "
                                  f"most one session may (wire_max_session_statements); close one before {verb} another")

    def _refuse_cursor(self, plan: Any) -> None:
        error = self.gw.refuse_cursor(self.ctx, plan)  # continuing a portal is a cursor
        self._refuse_ext(error.sqlstate, error.client_message(plan.request_id))

    def _notice_redactions(self, plan: Any) -> None:
        self.core.notice_redactions(plan)

    def _notice_redacted(self, plan: Any) -> None:
        self.relay.synthetic(responses.redaction_notice(tuple(plan.redacted), plan.request_id))

    def _notice_use(self, plan: Any) -> None:
        notice = plan.use_notice  # an exception purpose owes the use notice
        if notice is not None:
            self.relay.synthetic(responses.notice(f"{notice} (request {plan.request_id})"))

    @staticmethod
    def _ready_idle() -> bytes:
        return responses.ready("I")

    def _other(self, t: int, body: bytes) -> Awaitable[None] | None:
        """The messages the core does not handle itself."""
        if t == 72:
            self._flush(body)
        elif t == 67:
            self._close(body)
        elif t == 88:
            return self._terminate()
        elif t == 70:
            self._refuse_query("42501", "gateway: the function call protocol message is not allowed")
        elif t in (100, 99, 102):
            pass  # COPY messages outside COPY mode: dropped, as PostgreSQL does
        else:
            raise RemoteProtocolError(f"unexpected message type {chr(t)!r}")
        return None
    async def _terminate(self) -> None:
        """Terminate: what the client asked for before it (in the same packet, say) is answered first,
        as PostgreSQL answers each message before it reads the next; then the session ends. Waits
        while answers are pending or held for their records, at most TERMINATE_WAIT seconds and only
        while the client's socket is open."""
        core = self.core
        core.flush_backend()  # this batch's statements (its end is not reached: nothing follows Terminate)
        writer = self.channel.writer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TERMINATE_WAIT
        while (self.relay.pending or core.hold.active) and not writer.is_closing() and loop.time() < deadline:
            backend = self.backend
            if self.relay.pending and (backend is None or not backend.alive):
                break  # no answer is coming
            await asyncio.sleep(0.002)
        raise SessionClosed()

    # ---- simple protocol ----------------------------------------------------------------
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
        self._send(query_message(text), Pending(QUERY, plan, done=done))

    # ---- extended protocol --------------------------------------------------------------
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
        self.core.parse_unnamed(body, msg, sql, plan)

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
        return self.core.bind_planned(body, msg, stmt, plan)

    async def _bind_logged(self, body: bytes, msg: Bind, stmt: Statement, plan: Any,
                           params: tuple[object, ...]) -> None:
        """A Bind whose record is durable before it is forwarded (not a read, or the log failing)."""
        problem = await self._log(plan, params)
        if problem is not None:
            self._refuse_ext(problem.sqlstate, problem.client_message(plan.request_id))
            return
        self.core.bind_send(body, msg, stmt, plan)

    def _describe_other(self, body: bytes, kind: str, name: str) -> Awaitable[None] | None:
        """A Describe of a statement, or of a portal the gateway answers itself (the core did the rest)."""
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

    def _flush(self, body: bytes) -> None:
        self._in_batch = True
        if not self.skipping:
            self._send(frame(b"H", body), None)

    def _close(self, body: bytes) -> None:
        self._in_batch = True
        if self.skipping:
            return
        kind, name = kind_and_name(body, 67)
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


#: The session's attributes that live on its :class:`SessionCore` (the compiled steady state): the name
#: here, the core's name. Read and written through properties, from the rare paths only.
_CORE_FIELDS = {
    "gw": "gw", "ctx": "ctx", "channel": "channel", "backend": "backend", "pool": "pool", "pinned": "pinned",
    "relay": "relay", "_hold": "hold", "_out": "out", "skipping": "skipping", "_in_batch": "in_batch",
    "_unnamed_open": "unnamed_open", "_unserved_sync": "unserved_sync", "_draining": "draining",
    "_release_armed": "release_armed", "_reset_on_release": "reset_on_release", "claim_version": "claim_version",
    "idle_since": "idle_since", "statements": "statements", "portals": "portals", "_clearing": "clearing",
    "_last_parse": "last_parse", "_parse_memo": "parse_memo", "tracked": "tracked", "on_lost": "on_lost",
}


def _core_property(field: str) -> property:
    def get(self: PgSession) -> Any:
        return getattr(self.core, field)

    def put(self: PgSession, value: Any) -> None:
        setattr(self.core, field, value)

    return property(get, put, doc=f"``core.{field}``")


for _name, _field in _CORE_FIELDS.items():
    setattr(PgSession, _name, _core_property(_field))
del _name, _field
