"""Fuzz target: the analyzer (``plan_fresh``) on grammar-shaped SQL over the seeded catalog.

The bytes choose a statement from a small SQL grammar (nested subqueries, long IN/VALUES/ARRAY
lists, CASE, CTEs, set operations, joins, casts, function calls over the catalog's real tables and
columns) and may splice odd tokens anywhere. Whatever comes, ``plan_fresh`` must give a plan or a
``gateway:`` refusal; an *analyzer fault* (an unexpected exception it catches and turns into a
refusal) counts as a crash here, since it is a bug the refusal only hides, unless sqlglot's parser
itself raised it on text that is no statement (refused either way; see ``_sqlglot_parser_fault``).

The catalog, the policy and the profile come pickled from the runner (``GATEWAY_FUZZ_ENV``): the
test suite's seeded database, as tests/test_fuzz_atheris.py writes it.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gateway.analysis_pool  # noqa: E402,F401 - registers the pickling of the catalog's mapping proxies
from _atheris import Draw  # noqa: E402
from gateway.analyzer.limits import AnalysisLimits  # noqa: E402
from gateway.plan.fresh import plan_fresh  # noqa: E402

LIMITS = AnalysisLimits()
KINDS = ("select", "empty", "transaction", "set", "show", "gateway_set", "gateway_show", "noop")
FAULT = "the analyzer could not process the statement"

_ODD = ("", ";", ";;", " /* c */ ", " -- c\n", "\x00", "\\", "$", "::", "((", "))", "[", "]", "'", '"', "$1",
        'COLLATE "C"', "OPERATOR(pg_catalog.=)", "NOT NOT", "- -", "~", "||", "LATERAL", "ROWS FROM", "E'\\x41'",
        "$$a$$", "U&'d\\0061'", "1e400", "::int[]", "ONLY", "TABLESAMPLE", "FILTER", "OVER ()", "WITHIN GROUP",
        "IS DISTINCT FROM", "AT TIME ZONE", "ANY(", "ALL(", "#>>", "@>", "->>", "RETURNING", "FOR UPDATE", "*")
_FUNCS = ("lower", "upper", "coalesce", "count", "max", "min", "length", "substring", "md5", "concat",
          "string_agg", "array_agg", "row_number", "greatest", "nullif", "to_char", "now", "pg_sleep",
          "current_setting", "jsonb_build_object", "unnest", "generate_series")
_OPS = ("=", "<>", "<", ">=", "+", "-", "*", "/", "||", "AND", "OR", "LIKE", "ILIKE", "~", "IS NOT DISTINCT FROM")


class _Grammar:
    def __init__(self, d: Draw, tables: list[tuple[str, tuple[str, ...]]]) -> None:
        self.d = d
        self.tables = tables

    def table(self) -> tuple[str, tuple[str, ...]]:
        return self.tables[self.d.below(len(self.tables))]

    def literal(self) -> str:
        d = self.d
        k = d.below(6)
        if k == 0:
            return str(d.byte() * 1000 - d.byte())
        if k == 1:
            return "'" + d.rest_text(d.below(12)).replace("'", "''").replace("\x00", "") + "'"
        return d.pick(("NULL", "TRUE", "1.5", "'2026-01-01'::date", "-0", "'x'::text", "ARRAY[1,2]", "'{}'::int[]"))

    def expr(self, cols: tuple[str, ...], depth: int) -> str:
        d = self.d
        k = d.below(14) if depth > 0 else d.below(2)
        if k == 0:
            return d.pick(cols)
        if k == 1:
            return self.literal()
        if k == 2:
            return f"({self.expr(cols, depth - 1)} {d.pick(_OPS)} {self.expr(cols, depth - 1)})"
        if k == 3:
            args = ", ".join(self.expr(cols, depth - 1) for _ in range(d.below(4)))
            return f"{d.pick(_FUNCS)}({args})"
        if k == 4:
            return f"CASE WHEN {self.expr(cols, depth - 1)} THEN {self.expr(cols, depth - 1)} ELSE {self.literal()} END"
        if k == 5:  # a long list
            n = 1 + d.byte() * (1 + d.below(16))
            return f"{d.pick(cols)} IN ({', '.join(self.literal() if i < 8 else str(i) for i in range(n))})"
        if k == 6:
            return f"NOT {self.expr(cols, depth - 1)}"
        if k == 7:  # deep parentheses or prefix operators
            n = d.byte() + (d.byte() << 2)
            op = d.pick(("(", "NOT ", "- ", "ARRAY[", "(SELECT "))
            close = {"(": ")", "NOT ": "", "- ": "", "ARRAY[": "]", "(SELECT ": ")"}[op]
            return op * n + self.expr(cols, 0) + close * n
        if k == 8:
            return f"({self.query(depth - 1)})"
        if k == 9:
            return f"EXISTS ({self.query(depth - 1)})"
        if k == 10:
            return f"CAST({self.expr(cols, depth - 1)} AS {d.pick(('text', 'int', 'date', 'numeric(3,1)', 'bytea', 'jsonb'))})"
        if k == 11:
            return f"{d.pick(cols)} = ANY(ARRAY[{', '.join(self.literal() for _ in range(d.below(6)))}])"
        if k == 12:
            return f"{d.pick(_FUNCS)}({d.pick(cols)}) OVER (PARTITION BY {d.pick(cols)} ORDER BY {d.pick(cols)})"
        return f"{d.pick(cols)} BETWEEN {self.literal()} AND {self.literal()}"

    def query(self, depth: int) -> str:
        d = self.d
        name, cols = self.table()
        alias = "t" + str(d.below(3))
        k = d.below(8) if depth > 0 else 0
        source = name
        if k == 1:
            source = f"({self.query(depth - 1)})"
            cols = ("*",) + tuple(cols[:3])
        elif k == 2:
            other, ocols = self.table()
            source = f"{name} JOIN {other} o ON o.{d.pick(ocols)} = {alias}.{d.pick(cols)}"
            return f"SELECT {alias}.{d.pick(cols)} FROM {name} {alias} JOIN {other} o ON o.{d.pick(ocols)} = {alias}.{d.pick(cols)}"
        elif k == 3:
            return f"{self.query(depth - 1)} {d.pick(('UNION', 'UNION ALL', 'EXCEPT', 'INTERSECT'))} {self.query(depth - 1)}"
        elif k == 4:
            return f"WITH c AS ({self.query(depth - 1)}) SELECT * FROM c"
        elif k == 5:
            n = 1 + d.byte() * (1 + d.below(8))
            rows = ", ".join(f"({self.literal() if i < 4 else i})" for i in range(n))
            return f"SELECT * FROM (VALUES {rows}) v(x)"
        select = ", ".join(self.expr(cols, depth - 1) for _ in range(1 + d.below(3)))
        text = f"SELECT {select} FROM {source} {alias}"
        if d.below(2):
            text += f" WHERE {self.expr(cols, depth - 1)}"
        if d.below(4) == 0:
            text += f" GROUP BY {d.pick(cols)} HAVING count(*) > {d.below(9)}"
        if d.below(4) == 0:
            text += f" ORDER BY {d.pick(cols)} LIMIT {d.byte()}"
        return text


_ENV: tuple[Any, Any, list[tuple[str, tuple[str, ...]]]] | None = None


def _env() -> tuple[Any, Any, list[tuple[str, tuple[str, ...]]]]:
    global _ENV
    if _ENV is None:
        with open(os.environ["GATEWAY_FUZZ_ENV"], "rb") as f:
            plan_env, profile = pickle.load(f)
        tables = sorted((rel.qualified, tuple(c.name for c in rel.columns) or ("1",))
                        for rel in plan_env.catalog.relations.values() if rel.schema not in ("pg_catalog", "information_schema"))
        _ENV = plan_env, profile, tables
    return _ENV


def prepare() -> None:
    """Load the pickled catalog before the fuzzing starts (not on the first input's clock)."""
    _env()


def statement(data: bytes) -> str:
    """The SQL these bytes choose."""
    d = Draw(data)
    text = _Grammar(d, _env()[2]).query(d.below(6))
    for _ in range(d.below(3)):
        cut = d.below(256) * len(text) // 256
        text = text[:cut] + " " + d.pick(_ODD) + " " + text[cut:]
    return text


def one_input(data: bytes) -> None:
    plan_env, profile, _ = _env()
    sql = statement(data)
    analysis = plan_fresh(sql, profile, plan_env, limits=LIMITS).analysis
    if analysis.error is None:
        assert analysis.statements, sql
        assert all(s.kind in KINDS for s in analysis.statements), (sql, analysis.statements)
    else:
        message = analysis.error.message
        assert message.startswith("gateway:"), (sql, message)
        assert FAULT not in message or _sqlglot_parser_fault(sql), (sql[:2000], message)


def _sqlglot_parser_fault(sql: str) -> bool:
    """Whether sqlglot's own parser raises something other than its errors on ``sql`` (a TypeError on
    ``x #>> )``, say): a bug of sqlglot's on text that is no statement, which the gateway refuses
    (fail closed) as an analyzer fault. Anything else is the gateway's own bug."""
    from sqlglot.errors import SqlglotError

    from gateway.analyzer.dialect import DIALECT

    try:
        DIALECT.parse(sql)
    except SqlglotError:
        return False
    except Exception:  # noqa: BLE001 - exactly what is asked about
        return True
    return False


def seeds() -> list[bytes]:
    return [bytes([i, 3, 7, 1, 2, 9, 4, 0, 5, 11, 13, 6, 8, 10, 12]) for i in range(12)] + [b"\x05" * 40, b"\x07" * 30]


#: Inputs the fuzzer once found (each its own regression; see tests/test_fuzz_atheris.py).
REGRESSIONS: list[bytes] = [
    # ARRAY[ nested 35 deep (600 characters): sqlglot parses each level twice, >40 s; now refused by
    # limits.array_depth before the parse
    b"\x03\x03\x07\x03\x07\x00\x00\x07\xe7\x07\x07\xe4\x07\x07\x07\x07\x07\x07\x07\x07\x07\x03\x07\x00\x00\x07"
    b"\xe7\x07\x07\x07\xf9\xf8\xf8\xf8\xf9\xc0\xf7\xf6\x0c",
    # `WITH $ c AS (...)`: the CTE's alias reads as a Parameter; resolve.ident_name raised AttributeError
    b'\x03\x03\x07\x14output\x03\x07\x00\x00\x07\x07\x07\n\x07\x07,\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x0c',
    # `VALUES (-0 #>> )`: sqlglot's parser raises TypeError (not a ParseError); refused as a fault
    b'\x03\x03\x07udput\x03\x07.\x00\x00\x07\x07\x07\n\xd6\xd6\xd6\xd6\xd6\xd6\xd6\xd6\xd6\x0c',
]
