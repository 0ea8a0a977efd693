"""Plan-cache confusion: a cached decision must never be applied to a text it does not fit.

The plan caches reuse one analysis for every text of a shape, splicing each text's literals into the
cached SQL. Wherever the decision depends on a literal's value (which setting ``set_config`` changes,
which output column ``ORDER BY 2`` sorts by) another value must be planned afresh. Each case warms the
caches with an allowed text, then sends a text of the same shape whose fresh plan differs; through a
real ``gateway serve``, by asyncpg's simple Query and psycopg's extended protocol, and in process
against the analyzer alone (the cached answer equals a fresh plan's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from frontdoor_pg_support import WireGateway, start_gateway
from gateway.plan.cache import Analyzer

#: (profile, warm text, text of the same shape whose fresh plan differs)
PAIRS = [
    ("clerk", "SELECT set_config('DateStyle', 'ISO, MDY', true)",
     "SELECT set_config('standard_conforming_strings', 'off', true)"),
    ("clerk", "SELECT set_config('DateStyle', 'ISO, MDY', true)", "SELECT set_config('role', 'postgres', true)"),
    ("clerk", "SELECT set_config('DateStyle', 'ISO, MDY', true)",
     "SELECT set_config('default_transaction_read_only', 'off', true)"),
    ("clerk", "SELECT set_config('jit', 'off', false)", "SELECT set_config('TimeZone', 'Asia/Tokyo', false)"),
    ("clerk", "SELECT current_setting('DateStyle')", "SELECT current_setting('data_directory')"),
    ("clerk", "SELECT current_setting('DateStyle')", "SELECT current_setting('session_authorization')"),
    ("clerk", "SELECT current_setting('DateStyle')", "SELECT current_setting('search_path')"),
    ("clerk", "SELECT current_setting('search_path')", "SELECT current_setting('DateStyle')"),
    ("clerk", "SELECT person_id, place_of_birth FROM dmv.persons ORDER BY 1 LIMIT 5",
     "SELECT person_id, place_of_birth FROM dmv.persons ORDER BY 2 LIMIT 5"),
    ("clerk", "SELECT place_of_birth, person_id FROM dmv.persons GROUP BY 2, 1 ORDER BY 2 LIMIT 5",
     "SELECT place_of_birth, person_id FROM dmv.persons GROUP BY 1, 2 ORDER BY 1 LIMIT 5"),
    ("cbi", "SELECT first_name FROM dmv.persons WHERE person_id = ANY($1) AND $2::bigint > 0",
     "SELECT first_name FROM dmv.persons WHERE person_id = ANY($2) AND $1::bigint > 0"),
    ("clerk", "SELECT DISTINCT ON (1) person_id, place_of_birth FROM dmv.persons ORDER BY 1 LIMIT 5",
     "SELECT DISTINCT ON (2) person_id, place_of_birth FROM dmv.persons ORDER BY 2 LIMIT 5"),
]


def _summary(analysis: Any) -> tuple[Any, ...]:
    return (analysis.decision.action if analysis.decision else None, analysis.error.message if analysis.error else None,
            [(s.sql, s.named) for s in analysis.statements])


@pytest.mark.parametrize(("profile", "warm", "text"), PAIRS)
def test_a_cached_plan_is_the_fresh_plan(analysis_env: Any, profile: str, warm: str, text: str) -> None:
    p = analysis_env.profile(profile)
    env = analysis_env.analyzer
    cached = Analyzer(env.catalog, env.classifier, env.search_path)
    for _ in range(3):  # miss, shape hit, skeleton learned
        cached.analyze(warm, p)
    fresh = Analyzer(env.catalog, env.classifier, env.search_path).fresh(text, p).analysis
    assert _summary(cached.analyze(text, p)) == _summary(fresh)
    assert _summary(cached.analyze(text, p)) == _summary(fresh)  # and once it is cached itself


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, Path(tmp_path_factory.mktemp("redteam-cache")))


#: the statement that reads place_of_birth when the backend reads backslashes the old way
_SMUGGLE = r"SELECT 'x\' AS a, ' UNION ALL SELECT place_of_birth FROM dmv.persons --' AS b"


def test_set_config_of_a_pinned_setting_is_refused_after_an_allowed_one_extended(gw: WireGateway) -> None:
    with psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True, options="-c gateway.purpose=service_delivery") as conn:
        for _ in range(3):
            assert conn.execute("SELECT set_config('DateStyle', 'ISO, MDY', true)").fetchone() == ("ISO, MDY",)
        for name, value in (("standard_conforming_strings", "off"), ("role", "postgres"), ("search_path", "dmv")):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="gateway:"):
                conn.execute(f"SELECT set_config('{name}', '{value}', true)")
        for _ in range(3):
            conn.execute("SELECT current_setting('DateStyle')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="gateway:"):
            conn.execute("SELECT current_setting('data_directory')")
        assert conn.execute("SELECT current_setting('session_authorization')").fetchone() == ("dmv_clerk",)
        shown = conn.execute("SHOW search_path").fetchone()
        assert conn.execute("SELECT current_setting('search_path')").fetchone() == shown
        # the backend still reads strings the standard way: the smuggled UNION stays a string
        assert conn.execute(_SMUGGLE).fetchall() == [("x\\", " UNION ALL SELECT place_of_birth FROM dmv.persons --")]


def test_set_config_of_a_pinned_setting_is_refused_after_an_allowed_one_simple(gw: WireGateway) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(host=gw.host, port=gw.port, user="dmv_clerk", password="dmv_clerk-demo-password",
                                     database="dmv", ssl=False, statement_cache_size=0)
        try:
            for _ in range(3):
                await conn.execute("SELECT set_config('DateStyle', 'ISO, MDY', true)")
            await conn.execute("BEGIN")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="gateway:"):
                await conn.execute("SELECT set_config('standard_conforming_strings', 'off', true)")
            await conn.execute("ROLLBACK")
            rows = await conn.fetch(_SMUGGLE)
            assert [tuple(r) for r in rows] == [("x\\", " UNION ALL SELECT place_of_birth FROM dmv.persons --")]
        finally:
            await conn.close()

    asyncio.run(main())


def test_an_order_by_position_is_decided_per_position(gw: WireGateway) -> None:
    """ORDER BY 1 over a redacted column is answered (masked); ORDER BY 2 sorts by the classified
    column and is refused, as it is when it comes first."""
    with psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True, options="-c gateway.purpose=service_delivery") as conn:
        for _ in range(3):
            rows = conn.execute("SELECT person_id, place_of_birth FROM dmv.persons ORDER BY 1 LIMIT 3").fetchall()
            assert [r[1] for r in rows] == [None, None, None]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="place_of_birth"):
            conn.execute("SELECT person_id, place_of_birth FROM dmv.persons ORDER BY 2 LIMIT 3")
