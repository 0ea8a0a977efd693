"""Noninterference end to end through the wire: two gateways in front of the twin databases.

The twin databases differ only in classified values. Every statement of the adversarial corpus and
the decision fixtures is sent through each gateway by asyncpg (extended protocol) and by a simple
Query, as the restricted requesters; everything a client sees (columns and types, rows, errors,
notices; request ids removed) must be identical.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from frontdoor_pg_support import WireGateway, start_gateway
from gateway.selftest.corpus import CORPUS, load_cases

FIXTURES = Path(__file__).parent / "fixtures" / "analyzer"
CASES = load_cases(CORPUS) + load_cases(FIXTURES / "decisions.sql")
#: requester and options of the restricted profiles
PROFILES = {
    "clerk": ("dmv_clerk", "-c gateway.purpose=service_delivery"),
    "clerk0": ("dmv_clerk", ""),
    "ice": ("ice_ero", "-c gateway.purpose=civil_immigration_enforcement"),
}
_REQUEST_ID = re.compile(r"\(request [^)]*\)")


@pytest.fixture(scope="module")
def twin_gateways(twin_dsns: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WireGateway, WireGateway]]:
    gen_a = start_gateway(twin_dsns[0], Path(tmp_path_factory.mktemp("twin-a")))
    gen_b = start_gateway(twin_dsns[1], Path(tmp_path_factory.mktemp("twin-b")))
    a, b = next(gen_a), next(gen_b)
    try:
        yield a, b
    finally:
        gen_a.close()
        gen_b.close()


async def _connect(gw: WireGateway, profile: str) -> asyncpg.Connection:
    user, options = PROFILES[profile]
    return await asyncpg.connect(host=gw.host, port=gw.port, user=user, password=f"{user}-demo-password",
                                 database="dmv", ssl=False, statement_cache_size=0,
                                 server_settings={"options": options} if options else {})


async def _see(conn: asyncpg.Connection, sql: str, simple: bool) -> tuple[Any, ...]:
    notices: list[str] = []
    conn.add_log_listener(lambda _c, m: notices.append(_REQUEST_ID.sub("", str(m))))
    try:
        if simple:
            status = await conn.execute(sql)
            return ("ok", status, tuple(notices))
        args = (5,) if "$1" in sql else ()
        stmt = await conn.prepare(sql)
        columns = tuple((a.name, a.type.oid) for a in stmt.get_attributes())
        rows = sorted((tuple(r) for r in await stmt.fetch(*args)), key=repr)
        return ("ok", columns, tuple(rows), tuple(notices))
    except asyncpg.PostgresError as exc:
        return ("error", exc.sqlstate, _REQUEST_ID.sub("", str(exc)), tuple(notices))
    except asyncpg.InterfaceError as exc:  # e.g. several statements in a prepared statement
        return ("client", _REQUEST_ID.sub("", str(exc)))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_corpus_does_not_interfere_over_the_wire(twin_gateways: tuple[WireGateway, WireGateway], profile: str) -> None:
    async def main() -> tuple[int, int]:
        conns = [await _connect(gw, profile) for gw in twin_gateways]
        leaks: list[str] = []
        answered = denied = 0
        try:
            for case in CASES:
                for simple in (False, True):
                    a = await _see(conns[0], case.sql, simple)
                    b = await _see(conns[1], case.sql, simple)
                    if a != b:
                        leaks.append(f"{case.source}:{case.line} {case.sql!r}\nA: {str(a)[:300]}\nB: {str(b)[:300]}")
                    if a[0] == "error" and a[1] == "42501":
                        denied += 1
                    elif a[0] == "ok":
                        answered += 1
                    if a[0] == "error":  # keep each session clean for the next case
                        for c in conns:
                            await c.execute("ROLLBACK") if c.is_in_transaction() else None
        finally:
            for c in conns:
                await c.close()
        assert not leaks, "\n\n".join(leaks[:5])
        return answered, denied

    answered, denied = asyncio.run(main())
    assert answered > 0 and denied > 0
