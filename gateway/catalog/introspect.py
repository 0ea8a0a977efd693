"""Load the live catalog from the backend through asyncpg.

Types are printed with ``search_path = pg_catalog`` so that every type outside ``pg_catalog`` comes
back schema-qualified: the rewrite casts NULLs to these names on a backend session whose
``search_path`` is ``pg_catalog`` too.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.catalog.model import Catalog, Column, Relation

_KINDS = {"r": "table", "v": "view", "m": "matview", "f": "foreign", "p": "partitioned"}

RELATIONS_SQL = """
SELECT c.oid, n.nspname, c.relname, c.relkind,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END AS viewdef
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'
ORDER BY n.nspname, c.relname
"""

COLUMNS_SQL = """
SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_sql,
       a.atttypid, a.attnotnull
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'
ORDER BY a.attrelid, a.attnum
"""

FUNCTIONS_SQL = """
SELECT n.nspname, p.proname, p.prokind, p.prosecdef
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
"""


def build_catalog(relation_rows: list[Any], column_rows: list[Any], function_rows: list[Any]) -> Catalog:
    """Assemble a :class:`Catalog` from the three introspection result sets (pure)."""
    columns: dict[int, list[Column]] = {}
    for row in column_rows:
        columns.setdefault(row["attrelid"], []).append(
            Column(row["attname"], row["type_sql"], int(row["atttypid"]), bool(row["attnotnull"]))
        )
    relations: dict[tuple[str, str], Relation] = {}
    digest = hashlib.sha256()
    for row in relation_rows:
        rel = Relation(
            schema=row["nspname"],
            name=row["relname"],
            kind=_KINDS[_char(row["relkind"])],
            columns=tuple(columns.get(row["oid"], ())),
            oid=int(row["oid"]),
            view_definition=row["viewdef"],
        )
        relations[(rel.schema, rel.name)] = rel
        digest.update(repr((rel.schema, rel.name, rel.kind, rel.columns, rel.view_definition)).encode())
    functions = frozenset((r["nspname"], r["proname"]) for r in function_rows)
    digest.update(repr(sorted(functions)).encode())
    return Catalog(relations=relations, functions=functions, version=digest.hexdigest()[:16])


async def load_catalog(conn: Any) -> Catalog:
    """Read the catalog over an asyncpg connection (types printed as seen from ``pg_catalog``)."""
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL search_path = pg_catalog")
        relation_rows = await conn.fetch(RELATIONS_SQL)
        column_rows = await conn.fetch(COLUMNS_SQL)
        function_rows = await conn.fetch(FUNCTIONS_SQL)
    return build_catalog(relation_rows, column_rows, function_rows)


async def catalog_fingerprint(conn: Any) -> str:
    """A cheap digest that changes when relations, columns or views change (for refresh)."""
    row = await conn.fetchrow(
        "SELECT pg_catalog.md5(pg_catalog.string_agg(c.oid::text || ':' || c.relname || ':' || "
        "c.relnatts::text || ':' || pg_catalog.md5(COALESCE(pg_catalog.pg_get_viewdef(c.oid), '')), ',' "
        "ORDER BY c.oid)) AS fp FROM pg_catalog.pg_class c WHERE c.relkind IN ('r','v','m','f','p') "
        "AND c.relnamespace NOT IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('pg_catalog','information_schema','pg_toast'))"
    )
    return str(row["fp"])


def _char(value: object) -> str:
    """asyncpg returns PostgreSQL's ``"char"`` as bytes."""
    return value.decode() if isinstance(value, bytes) else str(value)
