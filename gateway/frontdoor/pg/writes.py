"""Staff writes on the wire (the policy's ``writes:`` grants, ``policy/writes.py``).

An allowed write does not go through the session's backend connection, which is read-only (SPEC 4):
the gateway runs it itself in a read-write transaction of its own (``backend/writes.py``) and answers
the client as PostgreSQL would: RowDescription (Describe), DataRows of the RETURNING items, the command
tag (``UPDATE 3``). So a write is refused inside an explicit transaction block (BEGIN ... COMMIT): it
could not be part of that transaction. Simple protocol: the write must be the Query's only statement.
Extended protocol: Parse and Describe are answered by the gateway (the parameter and result types
from the backend), Bind is the request (logged, durable), Execute runs it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from gateway.errors import FeatureNotSupported, GatewayError, PolicyDenied
from gateway.frontdoor.http.values import ParamError, coerce_param
from gateway.wire import CommandComplete, DataRow, FieldDescription, NoData, ParameterDescription, RowDescription, encode

_IN_TRANSACTION = FeatureNotSupported(
    "gateway: a staff write runs in a transaction of its own: send it outside BEGIN ... COMMIT (autocommit)",
    rule="write.in_transaction")
_ALONE = FeatureNotSupported("gateway: a write must be sent as a statement of its own", rule="write.alone")


@dataclass
class WritePortal:
    """A bound write: its plan (logged) and its parameters, waiting for Execute."""

    plan: Any
    params: tuple[object, ...]
    result_formats: tuple[int, ...] = ()


def _in_transaction(session: Any) -> bool:
    return session.relay.status != "I" or session.scope.in_transaction


def _bind(params: tuple[object, ...]) -> Any:
    def bind(types: Any) -> list[Any]:
        if len(types) != len(params):
            raise GatewayError(f"gateway: the write has {len(types)} parameter(s) but {len(params)} were bound")
        out = []
        for n, (value, t) in enumerate(zip(params, types), 1):
            if isinstance(value, (bytes, bytearray, memoryview)):
                raise FeatureNotSupported(f"gateway: parameter ${n} of a write is in binary format for type "
                                          f"{t.name}; send it in text format", rule="write.binary_parameter")
            try:
                out.append(coerce_param(value, t.name, n, t.kind))
            except ParamError as exc:
                raise GatewayError(str(exc)) from None
        return out
    return bind


_BINARY_OUT = {21: ">h", 23: ">i", 20: ">q", 700: ">f", 701: ">d"}


def _field_format(formats: tuple[int, ...], i: int) -> int:
    return formats[0] if len(formats) == 1 else (formats[i] if i < len(formats) else 0)


def _value(text: str | None, oid: int, fmt: int) -> bytes | None:
    if text is None:
        return None
    if fmt == 0 or oid in (25, 1043, 1042, 19):
        return str(text).encode("utf-8")
    if oid == 16:
        return b"\x01" if text in ("t", "true") else b"\x00"
    if oid in _BINARY_OUT:
        return struct.pack(_BINARY_OUT[oid], int(text) if oid in (20, 21, 23) else float(text))
    raise FeatureNotSupported(f"gateway: a RETURNING column of type oid {oid} cannot be sent in binary format; "
                              "ask for text format", rule="write.binary_result")


_BINARY_OK = frozenset(_BINARY_OUT) | {16, 25, 1043, 1042, 19}


def _format(formats: tuple[int, ...], i: int, oid: int) -> int:
    """The format a column is sent in: binary where asked and the gateway can encode it, else text
    (a column the client asked binary for that cannot be encoded is refused at Execute)."""
    fmt = _field_format(formats, i)
    return fmt if fmt == 0 or oid in _BINARY_OK else -1


def _description(fields: Any, formats: tuple[int, ...] = ()) -> bytes:
    if not fields:
        return encode(NoData())
    return encode(RowDescription(tuple(FieldDescription(f.name, type_oid=f.type_oid, format=max(_format(formats, i, f.type_oid), 0))
                                       for i, f in enumerate(fields))))


def _rows(result: Any, formats: tuple[int, ...]) -> bytes:
    out = []
    for row in result.rows:
        values = []
        for i, (v, f) in enumerate(zip(row, result.fields)):
            if _format(formats, i, f.type_oid) < 0:
                raise FeatureNotSupported(f"gateway: RETURNING column {f.name} (type {f.type_name}) cannot be sent in "
                                          "binary format; ask for text format", rule="write.binary_result")
            values.append(_value(v, f.type_oid, _field_format(formats, i)))
        out.append(encode(DataRow(tuple(values))))
    return b"".join(out) + encode(CommandComplete(result.tag))


async def _run(session: Any, plan: Any, params: tuple[object, ...]) -> Any:
    """Run the logged write; its outcome is recorded; returns the result or the error."""
    import time

    started = time.perf_counter()
    gw, ctx = session.gw, session.ctx
    try:
        result = await gw.run_write(plan, _bind(params), as_text=True)
    except GatewayError as exc:
        gw.log_outcome(ctx, plan, rows=0, duration_ms=(time.perf_counter() - started) * 1000.0, sqlstate=exc.sqlstate,
                       status="refused" if isinstance(exc, PolicyDenied) else "error", rows_affected=0)
        return exc
    gw.log_outcome(ctx, plan, rows=len(result.rows), duration_ms=(time.perf_counter() - started) * 1000.0,
                   rows_affected=result.rowcount)
    return result


async def query_write(session: Any, plan: Any) -> None:
    """A Query holding a write: refused unless alone and outside a transaction block; logged, run, answered."""
    import dataclasses

    from gateway.policy.types import Decision

    problem: GatewayError | None = None
    if len([s for s in plan.statements if s.kind != "empty"]) != 1:
        problem = _ALONE
    elif _in_transaction(session) or session.relay.busy:
        problem = _IN_TRANSACTION
    if problem is not None:
        plan = dataclasses.replace(plan, error=problem, decision=Decision("deny", problem.message.removeprefix("gateway: "),
                                                                          rule=problem.rule or ""))
    else:
        plan = session.gw.admit(session.ctx, plan)
    if plan.error is not None:
        await session._log(plan)
        session._refuse_query(plan.error.sqlstate, plan.error.client_message(plan.request_id))
        return
    logged = await session._log(plan)
    if logged is not None:
        session._refuse_query(logged.sqlstate, logged.client_message(plan.request_id))
        return
    result = await _run(session, plan, ())
    if isinstance(result, GatewayError):
        session._refuse_query(result.sqlstate, result.client_message(plan.request_id))
        return
    session._notice_redactions(plan)
    head = _description(result.fields) if result.fields else b""
    session.relay.synthetic(head + _rows(result, ()), ready=True)


async def describe_statement(session: Any, stmt: Any) -> bytes:
    """Describe of a prepared write: its parameter types and result columns, from the backend."""
    types, fields = await session.gw.describe_write(stmt.local.sql)
    if not stmt.param_types or not any(stmt.param_types):
        stmt.param_types = tuple(types)
    return encode(ParameterDescription(tuple(types))) + _description(fields)


async def bind_write(session: Any, stmt: Any, msg: Any, params: tuple[object, ...]) -> WritePortal | GatewayError:
    """The Bind of a write: the request (planned again if the claim changed), admitted and logged."""
    plan = stmt.fresh_plan
    stmt.fresh_plan = None
    gw = session.gw
    if plan is None or stmt.claim_version != session.claim_version or not gw.holds(session.ctx, plan):
        plan = gw.plan_hot(session.ctx, stmt.sql) or await gw.plan_cold(session.ctx, stmt.sql)
        if plan.error is not None:
            await session._log(plan)
            return plan.error
        if not plan.statements or plan.statements[0].kind != "write":
            return FeatureNotSupported("gateway: the statement is no longer a write this requester may make; "
                                       "prepare it again", rule="write.replan")
    plan = session.gw.admit(session.ctx, plan, params)
    if plan.error is not None:
        await session._log(plan, params)
        return plan.error
    logged = await session._log(plan, params)
    if logged is not None:
        return logged
    session._notice_redactions(plan)
    return WritePortal(plan, params, tuple(msg.result_formats))


async def execute_write(session: Any, portal: WritePortal) -> bytes | GatewayError:
    if _in_transaction(session):
        return _IN_TRANSACTION
    result = await _run(session, portal.plan, portal.params)
    if isinstance(result, GatewayError):
        return result
    try:
        return _rows(result, portal.result_formats)
    except GatewayError as exc:
        return exc


async def portal_description(session: Any, portal: WritePortal) -> bytes:
    """Describe of a bound write portal: its result columns (from the backend), in the formats Bind asked."""
    _types, fields = await session.gw.describe_write(portal.plan.statements[0].sql)
    return _description(fields, portal.result_formats)
