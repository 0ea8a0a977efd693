"""Utility: a legitimate statement through the gateway gives the database's own answer (column names,
types, rows), with the redacted columns NULL; the exception purposes get it unchanged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

STATEMENTS = [line for line in (Path(__file__).parent / "fixtures" / "analyzer" / "utility.sql").read_text().splitlines()
              if line.strip() and not line.startswith("--")]

#: statements of the utility file that name their individuals or carry no personal data: answered for cbi
CBI_LOOKUPS = {
    "SELECT * FROM persons WHERE person_id = 1",
    "SELECT count(*) FROM licenses WHERE status = 'VALID'",
    "SELECT ARRAY(SELECT plate FROM vehicles WHERE owner_person_id = 1 ORDER BY plate)",
    "SELECT 1 FROM persons p WHERE p.person_id = ANY(ARRAY[1,2,3])",
    "SELECT l.license_class, count(*) FILTER (WHERE l.status = 'VALID') FROM licenses l GROUP BY 1 ORDER BY 1",
}


def test_the_lookups_are_in_the_utility_file() -> None:
    assert CBI_LOOKUPS <= set(STATEMENTS)


@pytest.mark.parametrize("profile", ["clerk", "cbi"])
@pytest.mark.parametrize("sql", STATEMENTS)
def test_answer_equals_the_database(analysis_env, dmv_dsn: str, sql: str, profile: str) -> None:  # type: ignore[no-untyped-def]
    analysis = analysis_env.analyze(sql, profile)
    if profile == "cbi" and analysis.error is not None:
        # outside the agency, a statement whose answer carries personal data must name its individuals
        # (SPEC 9): the searches among these are denied for that reason and no other
        assert "an individual must be named" in analysis.error.message, analysis.error
        assert sql not in CBI_LOOKUPS
        return
    assert analysis.error is None, analysis.error
    if profile == "cbi":
        assert analysis.decision.action == "allow"

    async def go() -> tuple[list, list, list, list]:  # type: ignore[type-arg]
        conn = await asyncpg.connect(dmv_dsn)
        try:
            await conn.execute("SET search_path = dmv, public")
            direct_stmt = await conn.prepare(sql)
            direct = await direct_stmt.fetch()
            async with conn.transaction(readonly=True):
                await conn.execute("SET LOCAL search_path = pg_catalog")
                stmt = await conn.prepare(analysis.statements[0].sql)
                got = await stmt.fetch()
            return ([(a.name, a.type.oid) for a in direct_stmt.get_attributes()], direct,
                    [(a.name, a.type.oid) for a in stmt.get_attributes()], got)
        finally:
            await conn.close()

    direct_cols, direct, cols, got = asyncio.run(go())
    assert cols == direct_cols
    redacted = set(analysis.redacted)
    names = [c[0] for c in cols]
    expected = [tuple(None if names[i] in redacted else v for i, v in enumerate(row)) for row in direct]
    if "now()" not in sql and "current_" not in sql:
        assert [tuple(r) for r in got] == expected
    else:
        assert len(got) == len(expected)
