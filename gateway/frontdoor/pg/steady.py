"""The wire session's steady state, compiled (mypyc, see ``setup.py``): the message loop and the
common case of every handler, on typed state.

:class:`SessionCore` holds what the hot path reads and writes (the backend connection, the relay, the
statements and portals, the batch flags) and runs :meth:`SessionCore.run`: a read on a cached plan
(Query; Parse/Bind/Describe/Execute/Sync of an unnamed or prepared statement whose plan is reused) is
done here without leaving compiled code except for the gateway's own calls (``plan_hot``, ``admit``,
``submit_request``, the log's ``append_outcome``). Everything else (a cold plan, a refusal, a write, a setting, a
pooled connection that needs a round trip, Flush, Close, notices of the rare kinds) is handed to the
:class:`~gateway.frontdoor.pg.session.PgSession` that owns the core (``owner``), in plain Python,
which returns an awaitable when it must wait; the loop awaits it before the next message.

The pure-Python module is the fallback (``GATEWAY_PURE_PYTHON=1``) and behaves the same.
"""

from __future__ import annotations

import asyncio
from time import monotonic, perf_counter
from typing import Any

from gateway.backend.pool import BackendPool
from gateway.frontdoor.pg.hold import DurableHold
from gateway.frontdoor.pg.pooling import renamed_bind, startup_sql
from gateway.frontdoor.pg.relay import EXEC, EXT, QUERY, SYNC, Pending, Relay
from gateway.audit.params import bind_params
from gateway.audit.splice import plan_outcome
from gateway.plan.hit import HotPlanner
from gateway.wire import Bind, Execute, Parse, Query, encode
from gateway.wire.buffer import Reader, cstr, frame
from gateway.wire.parser import FrontendParser

HIGH_WATER = 4 * 1024 * 1024
#: messages one pump handles before it gives the event loop a turn: a client pipelining thousands of
#: statements in one read (a 256 kB read holds ~5,000 short queries, ~0.5 s of work) made every other
#: client wait for all of them; 64 queries are ~10 ms. Ordinary batches are far below it.
PUMP_BUDGET = 64
#: request records of one session not yet durable at which it stops reading its client until they
#: are: the writer seals in arrival order, so a client pipelining thousands made every other client's
#: record (and answer) wait behind all of theirs; and its answers were all held while any was pending
MAX_IN_FLIGHT = 128
#: :meth:`SessionCore.submit`: the record must be durable before anything is sent
WAIT: object = object()
_SYNC = frame(b"S", b"")
_LOCAL_KINDS = ("gateway_set", "gateway_show", "noop", "deallocate")


class Statement:
    """A client's prepared statement (the unnamed one under ``""``)."""

    def __init__(self, sql: str, param_types: tuple[int, ...], forwarded_sql: str | None,
                 server_name: str | None = None, local: Any = None, fresh_plan: Any = None,
                 claim_version: int = 0) -> None:
        self.sql = sql
        self.param_types = param_types
        self.forwarded_sql = forwarded_sql  # None for statements the gateway answers itself
        self.server_name = server_name  # a named statement: its name on the backend (backend/prepared.py)
        self.local = local  # the PlannedStatement of a gateway_set / gateway_show / write
        self.fresh_plan = fresh_plan  # the plan held for the next Bind (Parse-time, then the last Bind's)
        self.claim_version = claim_version

    def __repr__(self) -> str:
        return f"Statement(sql={self.sql!r}, server_name={self.server_name!r})"


class Portal:
    def __init__(self, statement: Statement, plan: Any, executed: bool = False, claim_version: int = 0) -> None:
        self.statement = statement
        self.plan = plan
        self.executed = executed  # a second Execute of a portal continues it: a cursor
        self.claim_version = claim_version  # the session's claim when it was bound: executed only under that one

    def __repr__(self) -> str:
        return f"Portal(statement={self.statement!r}, executed={self.executed!r})"


class SessionCore:
    """The hot state of one wire session and its steady-state handlers (see the module docstring)."""

    def __init__(self, owner: Any, gw: Any, channel: Any, backend: Any, ctx: Any, pool: Any) -> None:
        self.owner = owner  # the PgSession: the rare paths
        self.gw = gw
        self.hot: HotPlanner = gw.hot  # the cached decisions (plan/hit.py)
        self.ctx = ctx
        self.channel = channel
        self.parser: FrontendParser = channel.parser
        self.backend = backend  # None while a pooled session holds no connection
        self.pool: BackendPool | None = pool
        self.pinned = pool is None
        hold = DurableHold(self.write_now, owner._record_failed)  # no record, no answer
        self.hold = hold
        self.relay = Relay(hold.write, owner._write_backend, self.outcome, on_row_limit=owner._row_limit)
        self.out: list[bytes] = []
        self.skipping = False
        self.in_batch = False  # an extended-protocol message came since the last Sync
        self.unnamed_open = False  # an unnamed statement parsed and not executed yet: keep the connection
        self.unserved_sync = False
        self.draining = False
        self.release_armed = False
        self.reset_on_release = False  # the connection had session state: the pool resets it on release
        self.claim_version = 0
        self.idle_since = 0.0  # monotonic time since which the session waits for its client; 0: it does not
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        #: named statements, and named portals, the session may hold (``wire_max_session_statements``): a
        #: client could otherwise make the gateway keep millions (and their plans) for it
        self.max_named = 1000
        self.clearing: Any = None  # (plan, sql) of a RESET ALL / DISCARD ALL in flight
        self.last_parse: Any = None  # (body, Parse) of the last Parse: a repeated body is not decoded again
        self.parse_memo: Any = None  # (sql, types, bytes) of the last rewritten unnamed Parse, encoded
        self.tracked: dict[str, str] = {}
        self.on_lost: Any = None
        self.release_cb: Any = self.maybe_release  # bound once
        self.feed_cb: Any = self.relay.feed  # bound once: a pooled connection's sink

    # ---- plumbing -----------------------------------------------------------------------
    def write_now(self, data: bytes) -> None:
        """To the client's socket (the hold calls this once the records are durable)."""
        writer = self.channel.writer
        try:
            writer.write(data)
        except RuntimeError:  # the client's transport is closed (it went away mid-answer): drop the bytes
            return
        if not self.draining and writer.transport.get_write_buffer_size() > HIGH_WATER:
            self.draining = True
            if self.backend is not None:
                self.backend.pause_reading()
            asyncio.get_running_loop().create_task(self.owner._drain())

    def send(self, data: bytes, entry: Pending | None) -> None:
        """Queue ``data`` for the backend (written once per client batch) and the answer it expects."""
        if entry is not None:
            self.relay.pending.append(entry)
        self.out.append(data)

    def flush_backend(self) -> None:
        out = self.out
        if out:
            data = b"".join(out) if len(out) > 1 else out[0]
            out.clear()
            backend = self.backend
            if backend is not None and backend.alive:
                backend.write(data)

    def outcome(self, plan: Any, rows: int, t0: float, sqlstate: str | None) -> None:
        """An answer is complete (the relay calls this): its outcome record."""
        if self.clearing is not None:
            self.owner._outcome_clearing(plan, sqlstate)
        try:
            # what Gateway.log_outcome queues, without its keyword call: the outcome as a tuple
            self.gw.audit.append_outcome(plan_outcome(plan, rows, (perf_counter() - t0) * 1000.0, sqlstate))
        except Exception:  # noqa: BLE001 - the answer is already on its way; never break the relay
            self.owner._outcome_failed()

    def submit(self, plan: Any, params: tuple[object, ...]) -> Any:
        """Start writing a read's request record and let the statement go to the backend meanwhile: the
        answer is held back until the record is durable, so the fsync overlaps the query instead of
        adding to it (None). Returns the error to refuse with, or ``WAIT``: the record must be durable
        before anything is sent (not a read, or the log is known to be failing: then the wait refuses
        cleanly)."""
        gw = self.gw
        if not gw.audit.available:
            return WAIT
        for st in plan.statements:
            if st.kind != "select":
                return WAIT  # only reads run before their record is durable
        try:
            gw.submit_request(self.ctx, plan, params, None, self.hold)  # the hold is the record's DurableWaiter
        except Exception as exc:  # noqa: BLE001 - AuditUnavailable (told apart by the owner)
            return self.owner._submit_failed(exc)
        self.hold.waiting()  # the log tells it (durable/failed) from its batch's loop callback, never before this
        return None

    def notice_redactions(self, plan: Any) -> None:
        for st in plan.statements:
            if st.redacted:
                self.owner._notice_redacted(plan)
                break
        profile = plan.profile
        if profile is not None and profile.exception:  # only an exception purpose owes the use notice
            self.owner._notice_use(plan)

    def take_now(self) -> bool:
        """A backend connection for this session without an await: one that is here already, or a free
        one from the pool that needs nothing first. False: the owner's ``_ready_backend`` must wait
        (for a connection, its health check, or the session's settings on it)."""
        if self.backend is not None:
            return True
        pool = self.pool
        if pool is None:
            return False
        backend = pool.take_now()
        if backend is None:
            return False
        applied = backend.applied
        if applied != self.tracked and startup_sql(self.tracked, applied):  # settings first: a round trip
            pool.release_now(backend)
            return False
        backend.attach(self.feed_cb, self.on_lost)
        self.backend = backend
        return True

    def maybe_release(self) -> None:
        """The relay has no answer pending: give the connection back if nothing ties the session to it."""
        self.release_armed = False
        backend = self.backend
        relay = self.relay
        if (backend is None or self.pinned or self.out or relay.pending or relay.status != "I"
                or self.draining or self.unnamed_open or not backend.alive):
            return
        self.backend = None
        backend.status = "I"
        if self.reset_on_release:
            self.reset_on_release = False
            backend.detach()
            self.owner._release_reset(backend)
        else:
            pool = self.pool
            if pool is not None:
                pool.release_now(backend)  # (which detaches it)

    def connection(self) -> Any:
        """``self.backend``, read afresh (not narrowed by an earlier check in the caller)."""
        return self.backend

    # ---- the loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """The session's task. It runs what is parsed (:meth:`pump`), awaits what a handler must wait
        for, and parks while it waits for the client: meanwhile the channel's ``data_received`` runs each
        client batch through :meth:`pump` itself and wakes the task only when the batch must wait. A
        channel without ``park`` (a test's or a benchmark's) is read with ``fill`` instead."""
        channel = self.channel
        park: Any = getattr(channel, "park", None)
        if park is not None:
            channel.driver = self
        turns = 0  # awaits since the task last waited for its client: most never suspend (a backend is
        # there), so a pipeline of statements that each return one ran to its end in one loop turn
        try:
            while True:
                later = self.pump()
                if later is None:
                    turns = 0
                    if park is None:
                        await channel.fill()
                        continue
                    later = await park()
                    if later is None:
                        continue
                await later
                turns += 1
                if turns == PUMP_BUDGET:
                    turns = 0
                    await asyncio.sleep(0)  # the other clients' turn
        finally:
            if park is not None:
                channel.driver = None

    def pump(self) -> Any:
        """Handle every whole message parsed so far, then end the batch (:meth:`batch_end`). Returns
        None when all of it was done here, else the first awaitable a handler (or the batch's end)
        returned: the task awaits it and pumps again."""
        parser = self.parser
        self.idle_since = 0.0
        handled = 0
        hold = self.hold
        while True:
            if handled == PUMP_BUDGET or hold.records >= MAX_IN_FLIGHT:
                # the rest after a loop turn (or once the records are durable): the task awaits it, pumps again
                if self.backend is not None:
                    self.flush_backend()  # the backend starts on what is queued (without one it stays queued)
                if handled == PUMP_BUDGET:
                    return asyncio.sleep(0)
                return self.records_durable()
            handled += 1
            raw = parser.next_raw()
            if raw is None:
                return self.batch_end()
            t, body = raw
            if t == 81:
                later = self.query(body)
            elif t == 66:
                later = self.bind(body)
            elif t == 69:
                later = self.execute(body)
            elif t == 83:
                self.sync(body)
                continue
            elif t == 80:
                later = self.parse(body)
            elif t == 68:
                later = self.describe(body)
            else:
                later = self.owner._other(t, body)
            if later is not None:
                return later

    def records_durable(self) -> Any:
        """A future done once none of this session's records waits (the hold's answers are out)."""
        done = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self.hold.when_idle(wake)
        return done

    def batch_end(self) -> Any:
        """Everything parsed is handled: one backend write for the batch, the pooled connection given
        back once its answers are in. Returns what must be awaited first (a pooled connection to wait
        for, a backend that does not keep up), else None: the session waits for its client."""
        if self.pool is not None:
            # (no re-read of self.backend after a check of it here: mypyc would keep the narrowed type)
            if self.out and self.backend is None and not self.take_now():
                return self.owner._take_backend()  # waits for a free connection (pool wait setting)
            if not self.release_armed and not self.pinned:
                self.release_armed = True
                if self.relay.pending:
                    self.relay.idle_waiters.append(self.release_cb)
                else:
                    self.flush_backend()
                    self.maybe_release()
        self.flush_backend()
        backend = self.connection()
        if backend is not None and backend.transport.get_write_buffer_size() > HIGH_WATER:
            return asyncio.sleep(0.005)  # the backend is not keeping up
        self.idle_since = monotonic()  # the door's sweeper closes sessions idle past their timeout
        return None

    # ---- simple protocol ----------------------------------------------------------------
    def query(self, body: bytes) -> Any:
        if self.skipping:
            return None
        sql = query_text(body)
        gw = self.gw
        plan = self.hot.query(self.ctx, sql)  # the common case: one read the caches know, admitted (plan/hit.py)
        if plan is None:
            plan = gw.plan_hot(self.ctx, sql)
            if plan is None:
                return self.owner._query_cold(sql)
            statements = plan.statements
            if plan.error is not None or len(statements) != 1 or statements[0].kind != "select":
                return self.owner._query_planned(plan)
            plan = gw.admit(self.ctx, plan)  # caps and rate limits (SPEC 9)
        if plan.error is None:
            problem = self.submit(plan, ())
            if problem is None:
                self.notice_redactions(plan)
                self.send(query_message(plan.statements[0].sql), Pending(QUERY, plan, cap=row_cap(plan)))
                return None
            if problem is not WAIT:
                self.owner._refuse_query(problem.sqlstate, problem.client_message(plan.request_id))
                return None
        return self.owner._query_admitted(plan)

    # ---- extended protocol --------------------------------------------------------------
    def parse(self, body: bytes) -> Any:
        self.in_batch = True
        if self.skipping:
            return None
        last = self.last_parse
        if last is not None and last[0] == body:
            msg = last[1]  # the same Parse again (a client that does not keep prepared statements)
        else:
            msg = Parse.decode(Reader(body))
            self.last_parse = (body, msg)
        name = msg.name
        if name and name not in self.statements and named(self.statements) >= self.max_named:
            self.owner._refuse_held("prepared statements")  # (a name held already: 42P05, as before)
            return None
        plan = self.hot.parse(self.ctx, msg.sql)  # the caches (plan/hit.py), else the Gateway's plan_hot
        if plan is None:
            plan = self.gw.plan_hot(self.ctx, msg.sql, msg.param_types)
        if plan is None:
            return self.owner._parse_cold(body, msg)
        if plan.error is None and not msg.name:
            statements = plan.statements
            if len(statements) == 1:
                st = statements[0]
                if st.kind == "select" and self.backend is not None:  # the common case: an unnamed read
                    if not self.pinned:
                        self.unnamed_open = True
                    self.parse_unnamed(body, msg, st.sql, plan)
                    return None
        return self.owner._parse_planned(body, msg, plan)

    def parse_unnamed(self, body: bytes, msg: Parse, sql: str, plan: Any) -> None:
        stmt = Statement(msg.sql, msg.param_types, sql, None, None, plan, self.claim_version)
        self.statements[""] = stmt
        self.backend.unnamed = stmt  # whose unnamed statement the connection holds
        if sql == msg.sql:
            data = frame(b"P", body)
        else:  # the same rewritten statement again and again (pgbench -M extended): encoded once
            memo = self.parse_memo
            if memo is not None and memo[0] == sql and memo[1] == msg.param_types:
                data = memo[2]
            else:
                data = encode(Parse("", sql, msg.param_types))
                self.parse_memo = (sql, msg.param_types, data)
        self.send(data, Pending(EXT))

    def bind(self, body: bytes) -> Any:
        self.in_batch = True
        if self.skipping:
            return None
        msg = Bind.decode(Reader(body))
        stmt = self.statements.get(msg.statement)
        if stmt is None:
            # never forwarded: a backend name is the gateway's, and a pooled connection's unnamed
            # statement may be another client's
            self.owner._refuse_ext("26000", f'prepared statement "{msg.statement}" does not exist' if msg.statement
                                   else "unnamed prepared statement does not exist")
            return None
        portal = msg.portal
        if portal and portal not in self.portals and named(self.portals) >= self.max_named:
            self.owner._refuse_held("portals")
            return None
        if stmt.local is not None or not self.take_now():
            return self.owner._bind_later(body, msg, stmt)
        held = stmt.fresh_plan
        # the held plan (the Parse-time one, then the last Bind's) again while nothing it was decided
        # under changed (Gateway.rebind: claim, catalog, policy, requesters, the day's profile)
        if held is None or stmt.claim_version != self.claim_version:
            return self.owner._bind_plan(body, msg, stmt)  # planned again
        params = bind_params(msg.params, msg.param_formats, stmt.param_types)  # for the request log
        plan = self.hot.bind(self.ctx, held, params)  # rebind and admit in one copy (plan/hit.py)
        if plan is None:
            plan = self.gw.rebind(self.ctx, held)
            if plan is None:
                return self.owner._bind_plan(body, msg, stmt)  # planned again
            plan = self.gw.admit(self.ctx, plan, params)  # caps and rate limits (SPEC 9)
        return self.bind_admitted(body, msg, stmt, plan, params)

    def bind_planned(self, body: bytes, msg: Bind, stmt: Statement, plan: Any) -> Any:
        params = bind_params(msg.params, msg.param_formats, stmt.param_types)  # for the request log
        return self.bind_admitted(body, msg, stmt, self.gw.admit(self.ctx, plan, params), params)

    def bind_admitted(self, body: bytes, msg: Bind, stmt: Statement, plan: Any, params: tuple[object, ...]) -> Any:
        if plan.error is not None:
            return self.owner._log_refuse_ext(plan, params)
        problem = self.submit(plan, params)
        if problem is WAIT:
            return self.owner._bind_logged(body, msg, stmt, plan, params)
        if problem is not None:
            self.owner._refuse_ext(problem.sqlstate, problem.client_message(plan.request_id))
            return None
        self.bind_send(body, msg, stmt, plan)
        return None

    def bind_send(self, body: bytes, msg: Bind, stmt: Statement, plan: Any) -> None:
        self.notice_redactions(plan)
        self.portals[msg.portal] = Portal(stmt, plan, False, self.claim_version)
        name = stmt.server_name
        if name is not None:
            held = self.backend.prepared
            if name in held:
                held.touch(name)
            else:
                name = self.owner._ensure_prepared(stmt)
            body = renamed_bind(body, name)
        elif self.backend.unnamed is not stmt:
            self.owner._ensure_unnamed(stmt)
        self.send(frame(b"B", body), Pending(EXT))

    def describe(self, body: bytes) -> Any:
        self.in_batch = True
        if self.skipping:
            return None
        kind, name = kind_and_name(body, 68)
        if kind == "P":
            portal = self.portals.get(name)
            if portal is None or portal.statement.local is None:
                self.send(frame(b"D", body), Pending(EXT))
                return None
        return self.owner._describe_other(body, kind, name)

    def execute(self, body: bytes) -> Any:
        self.unnamed_open = False
        self.in_batch = True
        if self.skipping:
            return None
        portal = self.portals.get(execute_portal(body))
        if portal is None:
            self.send(frame(b"E", body), Pending(EXEC, None))
            return None
        plan = portal.plan
        if portal.statement.local is not None:
            return self.owner._execute_local(portal)
        if plan is not None and (portal.claim_version != self.claim_version
                                 or (plan.basis is not None and not self.gw.holds(self.ctx, plan))):
            self.owner._refuse_stale(plan)
            return None
        cap = row_cap(plan) if plan is not None else 0
        if plan is not None and portal.executed and cap:
            self.owner._refuse_cursor(plan)  # continuing a portal is a cursor
            return None
        portal.executed = True
        if plan is not None and plan.statements[0].kind != "select":
            return self.owner._execute_other(body, plan)
        self.send(frame(b"E", body), Pending(EXEC, plan, cap=cap))
        return None

    def sync(self, body: bytes) -> None:
        self.skipping = False
        self.in_batch = False
        if self.unserved_sync:  # the batch was refused for want of a backend connection
            self.unserved_sync = False
            self.relay.pending.append(Pending(SYNC))
            self.relay.feed(self.owner._ready_idle())
            return
        self.send(_SYNC if not body else frame(b"S", body), Pending(SYNC))


def named(held: dict[str, Any]) -> int:
    """How many of a session's statements (or portals) are named: all but the unnamed one."""
    return len(held) - 1 if "" in held else len(held)


def row_cap(plan: Any) -> int:
    """``plan.row_cap`` (rows per answer, 0: no cap) without the property chain."""
    profile = plan.profile
    if profile is None:
        return 0
    caps = profile.caps
    if caps is None:
        return 0
    cap = caps.rows_per_answer
    return int(cap) if cap else 0


def query_message(sql: str) -> bytes:
    """A Query message (as ``encode(Query(sql))``)."""
    return frame(b"Q", cstr(sql))


def query_text(body: bytes) -> str:
    """The SQL of a Query body (as ``Query.decode``, which raises the protocol error when it is malformed)."""
    end = body.find(b"\0")
    if end >= 0:
        try:
            return body[:end].decode("utf-8")
        except UnicodeDecodeError:
            pass
    return str(Query.decode(Reader(body)).sql)


def execute_portal(body: bytes) -> str:
    """The portal an Execute body names (as ``Execute.decode``, which raises when it is malformed)."""
    end = body.find(b"\0")
    if end >= 0 and len(body) >= end + 5:
        try:
            return body[:end].decode("utf-8")
        except UnicodeDecodeError:
            pass
    return str(Execute.decode(Reader(body)).portal)


def kind_and_name(body: bytes, message: int) -> tuple[str, str]:
    """The kind (``S`` or ``P``) and name of a Describe (``message`` 68) or Close (67) body (as their
    ``decode``, which raises the protocol error when it is malformed)."""
    if len(body) >= 2 and (body[0] == 83 or body[0] == 80):
        end = body.find(b"\0", 1)
        if end >= 0:
            try:
                return chr(body[0]), body[1:end].decode("utf-8")
            except UnicodeDecodeError:
                pass
    from gateway.wire import Close, Describe

    msg: Any = Describe.decode(Reader(body)) if message == 68 else Close.decode(Reader(body))
    return str(msg.kind), str(msg.name)

