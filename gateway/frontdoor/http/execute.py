"""Run one planned SELECT on the backend through asyncpg: parameters bound server-side, a
read-only transaction, a cursor for ``offset``/``limit``, at most ``cap + 1`` rows fetched.

Backend errors become :class:`ApiError`: the SQLSTATE always, PostgreSQL's own message only for
classes whose messages cannot quote a value (syntax and access, feature, resources, cancellation);
a data error (class 22, 23) or anything else gets a generic message, since PostgreSQL quotes values
in them (``invalid input syntax for type integer: "DACA"``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.frontdoor.http.errors import ApiError
from gateway.frontdoor.http.values import ParamError, coerce_param, column_type_name, encode_value

#: SQLSTATE classes whose messages PostgreSQL writes from names and settings, never from values.
MESSAGE_SAFE_CLASSES = ("0A", "42", "53", "54", "57")
#: SQLSTATEs that mean the backend went away (connection, shutdown, cannot connect now).
UNAVAILABLE_CLASSES = ("08",)
UNAVAILABLE_STATES = ("57P01", "57P02", "57P03")
ACQUIRE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    type_oid: int


@dataclass(frozen=True)
class Result:
    columns: tuple[Column, ...]
    rows: list[list[Any]]
    has_more: bool
    duration_ms: float


def backend_error(exc: BaseException, request_id: str) -> ApiError:
    """The answer for an exception from asyncpg or the socket under it."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError)) or (
        sqlstate and (sqlstate[:2] in UNAVAILABLE_CLASSES or sqlstate in UNAVAILABLE_STATES)
    ):
        return ApiError(503, "backend_unavailable", "the backend database is not reachable; try again later",
                        request_id=request_id, sqlstate=sqlstate or "08006")
    if sqlstate and sqlstate[:2] in MESSAGE_SAFE_CLASSES:
        message = f"the database refused the statement: {getattr(exc, 'message', '') or exc}"
    elif sqlstate:
        message = f"the database refused the statement (SQLSTATE {sqlstate})"
    else:
        message = "the database refused the statement"
    return ApiError(400, "backend_error", f"{message} (request {request_id})", request_id=request_id,
                    sqlstate=sqlstate or "XX000")


def _coerce(params: tuple[Any, ...], types: Any, request_id: str) -> list[Any]:
    if len(params) != len(types):
        raise ApiError(400, "invalid_parameter",
                       f"the statement has {len(types)} placeholder(s) but {len(params)} parameter(s) were sent",
                       request_id=request_id)
    try:
        return [coerce_param(v, t.name, n, t.kind) for n, (v, t) in enumerate(zip(params, types), 1)]
    except ParamError as exc:
        raise ApiError(400, "invalid_parameter", str(exc), request_id=request_id) from None


async def run_select(pool: Any, sql: str, params: tuple[Any, ...], *, offset: int, cap: int,
                     request_id: str) -> Result:
    """Run ``sql`` and return up to ``cap`` rows after ``offset`` (``has_more`` if there are more)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            async with conn.transaction(readonly=True):
                stmt = await conn.prepare(sql)
                args = _coerce(params, stmt.get_parameters(), request_id)
                attrs = stmt.get_attributes()
                cursor = await stmt.cursor(*args)
                if offset:
                    await cursor.forward(offset)
                records = await cursor.fetch(cap + 1)
    except ApiError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError) as exc:
        raise backend_error(exc, request_id) from None
    columns = tuple(Column(a.name, column_type_name(a.type.name, a.type.kind), a.type.oid) for a in attrs)
    type_names = [a.type.name for a in attrs]
    rows = [[encode_value(v, t) for v, t in zip(rec.values(), type_names)] for rec in records[:cap]]
    return Result(columns, rows, len(records) > cap, (loop.time() - started) * 1000.0)
