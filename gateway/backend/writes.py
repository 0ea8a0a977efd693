"""Run one allowed staff write on the backend (asyncpg), for both front doors.

Backend sessions are read-only by default (``default_transaction_read_only``, SPEC 4): a write runs in
a transaction of its own that is made read-write before anything else (``SET TRANSACTION READ
WRITE``), on a pool connection. In that transaction, before the write, the target table's constraints,
triggers and rules are read from the live catalog and checked (``policy.writes.constraint_refusal``):
an error that would depend on values the requester may not see refuses the write instead.

Errors never carry PostgreSQL's DETAIL (a unique violation prints the key, a CHECK or NOT NULL
violation the whole failing row, hidden columns included): the SQLSTATE always, the primary message
only for classes whose messages name objects, not values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.errors import BackendUnavailable, GatewayError, PolicyDenied, RowLimitExceeded
from gateway.policy.writes import TableRule, WriteTarget, constraint_refusal, implicit_status_refusal

ACQUIRE_TIMEOUT_S = 10.0
#: classes whose primary messages name objects (constraints, columns, relations), never values
_NAMED_CLASSES = ("0A", "23", "25", "40", "42", "53", "54", "55", "57")

_RULES_SQL = """
SELECT 'unique' AS kind, c.conname::text AS name,
       ARRAY(SELECT a.attname::text FROM unnest(i.indkey) k JOIN pg_catalog.pg_attribute a
             ON a.attrelid = i.indrelid AND a.attnum = k) AS cols,
       NULL::text AS other_schema, NULL::text AS other_table, NULL::text[] AS other_cols,
       (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) AS complex
  FROM pg_catalog.pg_index i LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid
 WHERE i.indrelid = $1 AND i.indisunique
UNION ALL
SELECT CASE c.contype WHEN 'x' THEN 'unique' ELSE 'check' END, c.conname::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_catalog.pg_attribute a
             ON a.attrelid = c.conrelid AND a.attnum = k), NULL, NULL, NULL, false
  FROM pg_catalog.pg_constraint c WHERE c.conrelid = $1 AND c.contype IN ('c', 'x')
UNION ALL
SELECT 'fk_out', c.conname::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_catalog.pg_attribute a
             ON a.attrelid = c.conrelid AND a.attnum = k),
       n.nspname::text, r.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) k JOIN pg_catalog.pg_attribute a
             ON a.attrelid = c.confrelid AND a.attnum = k), false
  FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.confrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
 WHERE c.conrelid = $1 AND c.contype = 'f'
UNION ALL
SELECT 'fk_in', c.conname::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) k JOIN pg_catalog.pg_attribute a
             ON a.attrelid = c.confrelid AND a.attnum = k),
       n.nspname::text, r.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_catalog.pg_attribute a
             ON a.attrelid = c.conrelid AND a.attnum = k), false
  FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
 WHERE c.confrelid = $1 AND c.contype = 'f'
UNION ALL
SELECT CASE WHEN a.attgenerated <> '' THEN 'generated' ELSE 'default' END, a.attname::text,
       ARRAY[a.attname::text], NULL, NULL,
       ARRAY(SELECT ra.attname::text FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_depend d
             ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid AND d.refobjid = ad.adrelid
             JOIN pg_catalog.pg_attribute ra ON ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid
             WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum), false
  FROM pg_catalog.pg_attribute a
 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
   AND (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '')
UNION ALL
SELECT 'trigger', t.tgname::text, NULL, NULL, NULL, NULL, false
  FROM pg_catalog.pg_trigger t WHERE t.tgrelid = $1 AND NOT t.tgisinternal
UNION ALL
SELECT 'trigger', 'rule ' || w.rulename::text, NULL, NULL, NULL, NULL, false
  FROM pg_catalog.pg_rewrite w WHERE w.ev_class = $1 AND w.rulename <> '_RETURN'
UNION ALL
SELECT 'trigger', 'row-level security policy ' || p.polname::text, NULL, NULL, NULL, NULL, false
  FROM pg_catalog.pg_policy p WHERE p.polrelid = $1
"""


class WriteRefused(GatewayError):
    """The database refused an allowed write: its SQLSTATE, a message without values."""

    http_status = 400
    code = "backend_error"

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message, rule="write.backend")
        self.sqlstate = sqlstate


@dataclass(frozen=True)
class Field:
    name: str
    type_oid: int
    type_name: str
    type_kind: str


@dataclass(frozen=True)
class WriteResult:
    fields: tuple[Field, ...]  # the RETURNING columns (empty without RETURNING)
    rows: list[tuple[Any, ...]]  # Python values, or text (``as_text``)
    tag: str  # the command tag: INSERT 0 n, UPDATE n, DELETE n
    rowcount: int


def write_error(exc: BaseException) -> GatewayError:
    sqlstate = getattr(exc, "sqlstate", None) or "XX000"
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError)) or sqlstate[:2] == "08" \
            or sqlstate in ("57P01", "57P02", "57P03"):
        return BackendUnavailable("gateway: the backend database is not reachable; the write was not made")
    primary = (getattr(exc, "message", "") or "").strip()
    if sqlstate[:2] in _NAMED_CLASSES and primary:
        return WriteRefused(sqlstate, f"gateway: the database refused the write: {primary} (details withheld)")
    return WriteRefused(sqlstate, f"gateway: the database refused the write (SQLSTATE {sqlstate}; details withheld)")


async def table_rules(conn: Any, table: tuple[str, str]) -> tuple[tuple[TableRule, ...], tuple[str, ...]]:
    """The target table's constraints, triggers and rules, and its columns, as the live catalog has them."""
    oid = await conn.fetchval("SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                              "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2", *table)
    if oid is None:
        raise PolicyDenied(f"gateway: relation {table[0]}.{table[1]} no longer exists", rule="write.unknown_table")
    columns = await conn.fetch("SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attnum > 0 "
                               "AND NOT attisdropped ORDER BY attnum", oid)
    rules = []
    for row in await conn.fetch(_RULES_SQL, oid):
        other = (row["other_schema"], row["other_table"]) if row["other_table"] else None
        rules.append(TableRule(row["kind"], tuple(row["cols"] or ()), other, tuple(row["other_cols"] or ()),
                               bool(row["complex"]), row["name"] or ""))
    return tuple(rules), tuple(r[0] for r in columns)


def _tag(kind: str, count: int) -> str:
    return f"INSERT 0 {count}" if kind == "insert" else f"{kind.upper()} {count}"


async def run_write(pool: Any, sql: str, target: WriteTarget, bind: Callable[[Any], list[Any]],
                    hidden: Callable[[tuple[str, str]], frozenset[str] | None], *, as_text: bool = False,
                    status: frozenset[str] = frozenset(), row_cap: int = 0) -> WriteResult:
    """Run the write ``sql`` (its parameters from ``bind(prepared.get_parameters())``) in a read-write
    transaction of its own; refused before it runs when a constraint could answer with hidden values,
    or when a default or generated column would write one of ``status`` (the target's status columns
    the purpose may not add or change, 24-74-104). RETURNING more than ``row_cap`` rows (the requester's
    cap per answer, SPEC 9; 0: none) is refused whole and the write rolled back: nothing released."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION READ WRITE")
                rules, columns = await table_rules(conn, target.table)
                problem = constraint_refusal(target, rules, columns, hidden)
                if problem is not None:
                    raise PolicyDenied(f"gateway: {problem}", rule="write.constraint")
                problem = implicit_status_refusal(target, rules, status)
                if problem is not None:
                    raise PolicyDenied(f"gateway: {problem}", rule="write.24_74_104")
                stmt = await conn.prepare(sql)
                args = bind(stmt.get_parameters())
                attrs = stmt.get_attributes()
                fields = tuple(Field(a.name, a.type.oid, a.type.name, a.type.kind) for a in attrs)
                if not attrs:
                    await stmt.fetch(*args)
                    status = stmt.get_statusmsg() or ""
                    count = int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0
                    return WriteResult((), [], _tag(target.kind, count), count)
                if as_text:  # the wire door sends text: PostgreSQL's own output of each value
                    names = ", ".join(f'"__gw_c{i}"' for i in range(len(attrs)))
                    text_sql = (f'WITH "__gw_w"({names}) AS ({sql}) SELECT '
                                + ", ".join(f'"__gw_c{i}"::text' for i in range(len(attrs))) + ' FROM "__gw_w"')
                    records = await conn.fetch(text_sql, *args)
                else:
                    records = await stmt.fetch(*args)
                if row_cap and len(records) > row_cap:  # raised inside the transaction: the write is undone
                    raise RowLimitExceeded(
                        f"gateway: row limit exceeded: the write's RETURNING has more than {row_cap} rows, the cap "
                        "per answer for this requester and purpose; it is refused whole, nothing released and "
                        "nothing written", rule="limits.rows_per_answer")
                rows = [tuple(r.values()) for r in records]
                return WriteResult(fields, rows, _tag(target.kind, len(rows)), len(rows))
    except GatewayError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError) as exc:
        raise write_error(exc) from None


async def describe(pool: Any, sql: str) -> tuple[list[int], list[Field]]:
    """A write's parameter types and RETURNING columns, from the backend (prepared, never run)."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            stmt = await conn.prepare(sql)
            return ([t.oid for t in stmt.get_parameters()],
                    [Field(a.name, a.type.oid, a.type.name, a.type.kind) for a in stmt.get_attributes()])
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError) as exc:
        raise write_error(exc) from None
