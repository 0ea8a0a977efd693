"""Run one statement the gateway's way on a database and capture everything a requester would see.

Used by the noninterference suite: the capture of two databases that differ only in classified
values must be identical (rows, column names and types, row counts, errors, notices).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Capture:
    columns: tuple[tuple[str, int], ...]
    rows: tuple[tuple[Any, ...], ...]
    error: tuple[str, str] | None
    notices: tuple[str, ...]

    def unordered(self) -> Capture:
        return Capture(self.columns, tuple(sorted(self.rows, key=repr)), self.error, self.notices)


async def capture(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...] = ()) -> Capture:
    """Run ``sql`` read-only with the backend settings the gateway pins."""
    notices: list[str] = []

    def on_notice(_conn: object, message: object) -> None:
        notices.append(str(message))

    conn.add_log_listener(on_notice)
    try:
        async with conn.transaction(readonly=True):
            await conn.execute("SET LOCAL search_path = pg_catalog")
            await conn.execute("SET LOCAL statement_timeout = '20s'")
            try:
                stmt = await conn.prepare(sql)
                columns = tuple((a.name, a.type.oid) for a in stmt.get_attributes())
                rows = tuple(tuple(r) for r in await stmt.fetch(*args))
                return Capture(columns, rows, None, tuple(notices))
            except asyncpg.PostgresError as exc:
                return Capture((), (), (exc.sqlstate, str(exc)), tuple(notices))
    finally:
        conn.remove_log_listener(on_notice)
