"""Session state must not travel between requesters through the shared backend pool.

In transaction pooling the next requester's statements run on the connection the last one used. A
``SET`` is tracked per session (re-applied or reset at each hand-over), but ``SELECT set_config(name,
value, false)`` changed the connection itself: another requester then read timestamps in the first
one's time zone and floats cut to its ``extra_float_digits``. Session-level ``set_config`` is refused
(``jit``, which asyncpg turns off for its type introspection, is made statement-local); a local one
ends with its transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from frontdoor_pg_support import WireGateway, pooled_gateway

CBI = "-c gateway.purpose=criminal_law_enforcement -c gateway.case_number=CR-2026-0042"


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from pooled_gateway(dmv_dsn, tmp_path_factory, "redteam-pool", 1)  # one backend connection for all


def _other(gw: WireGateway) -> list[tuple[object, ...]]:
    with psycopg.connect(gw.dsn("cbi_analyst"), autocommit=True, options=CBI) as conn:
        return [conn.execute(sql).fetchone() for sql in ("SHOW TimeZone", "SHOW extra_float_digits", "SELECT 1.0::float8 / 3")]


def test_set_config_does_not_reach_the_next_requester(gw: WireGateway) -> None:
    before = _other(gw)
    with psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True, options="-c gateway.purpose=service_delivery") as conn:
        for name, value in (("TimeZone", "Asia/Tokyo"), ("extra_float_digits", "-15"), ("statement_timeout", "1")):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="outlive the statement"):
                conn.execute(f"SELECT set_config('{name}', '{value}', false)")
        with conn.transaction():
            assert conn.execute("SELECT set_config('TimeZone', 'Asia/Tokyo', true)").fetchone() == ("Asia/Tokyo",)
            assert conn.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)
        assert _other(gw) == before  # the clerk's session is still open: its connection is the other's now
    assert before[2] == (1.0 / 3,)


def test_asyncpg_type_introspection_still_works(gw: WireGateway) -> None:
    """asyncpg runs set_config('jit', 'off', false) before introspecting an array parameter's type."""
    async def main() -> None:
        conn = await asyncpg.connect(host=gw.host, port=gw.port, user="cbi_analyst", password="cbi_analyst-demo-password",
                                     database="dmv", ssl=False, server_settings={"options": CBI})
        try:
            rows = await conn.fetch("SELECT person_id FROM dmv.persons WHERE person_id = ANY($1::bigint[])", [3, 5])
            assert sorted(r[0] for r in rows) == [3, 5]
            assert await conn.fetchval("SELECT set_config('jit', 'off', false)") == "off"
        finally:
            await conn.close()

    asyncio.run(main())
    assert _other(gw)[0] is not None
