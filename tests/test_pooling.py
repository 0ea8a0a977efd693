"""Transaction pooling through a real gateway: many client sessions share a few backend connections.

Named prepared statements and backend settings follow the session to whichever connection it gets
(see test_pooling_prepared.py); ``gateway.*`` settings live in the gateway's session and follow the
client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from frontdoor_pg_support import WireGateway, pooled_gateway
from frontdoor_pg_support import gauge as _gauge

psycopg = pytest.importorskip("psycopg")

POINT = "SELECT zip FROM dmv.persons WHERE person_id = %s"


@pytest.fixture(scope="module")
def pooled_gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from pooled_gateway(dmv_dsn, tmp_path_factory, "pool-audit", 20)


def test_200_idle_clients_and_a_good_client_served_on_20_connections(pooled_gw: WireGateway) -> None:
    idle = []
    try:
        for n in range(200):
            conn = psycopg.connect(pooled_gw.dsn("dmv_clerk"), autocommit=True)
            conn.execute(POINT, (n + 1,)).fetchall()  # each has been served once, and now waits
            idle.append(conn)
        assert _gauge(pooled_gw, "gateway_wire_sessions") >= 200
        assert _gauge(pooled_gw, "gateway_wire_backend_pool_in_use") + _gauge(pooled_gw, "gateway_wire_backend_pool_idle") <= 20
        t0 = time.monotonic()
        with psycopg.connect(pooled_gw.dsn("dmv_clerk"), autocommit=True) as good:
            assert good.execute(POINT, (7,)).fetchall()
        assert time.monotonic() - t0 < 5
        for conn in idle[::20]:  # the idle ones are still served when they come back
            assert conn.execute(POINT, (3,)).fetchall()
    finally:
        for conn in idle:
            conn.close()


def test_transactions_pinned_sessions_and_gateway_settings(pooled_gw: WireGateway) -> None:
    with psycopg.connect(pooled_gw.dsn("cbi_analyst")) as tx, \
            psycopg.connect(pooled_gw.dsn("dmv_clerk"), autocommit=True) as pinned, \
            psycopg.connect(pooled_gw.dsn("dmv_clerk"), autocommit=True) as prepared:
        # a transaction keeps its connection from BEGIN to COMMIT
        tx.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        tx.execute("SET gateway.case_number = 'CR-2026-0042'")
        a = tx.execute("SELECT 1, pg_backend_pid()").fetchone()
        b = tx.execute("SELECT pg_backend_pid()").fetchone()
        assert a is not None and b is not None and a[1] == b[0]
        tx.commit()
        # gateway settings live in the gateway's session: still there in the next transaction
        assert tx.execute("SHOW gateway.purpose").fetchone() == ("criminal_law_enforcement",)
        tx.commit()
        # a backend SET outside a transaction is the session's: set on each connection it gets
        pinned.execute("SET statement_timeout = '123s'")
        for _ in range(5):
            assert pinned.execute("SHOW statement_timeout").fetchone() == ("123s",)
        # named prepared statements (psycopg prepares after a few executions) follow the session
        for n in range(8):
            assert prepared.execute(POINT, (n + 1,), prepare=True).fetchall()
