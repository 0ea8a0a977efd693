"""Transaction pooling with a pool in front: DISCARD ALL / RESET ALL between users only clear state.

They never pin a session; a session pinned by a backend SET unpins after one of them (when nothing
else holds it), its connection is reset before anyone else gets it, and the gateway's own session
state (gateway.* claim, prepared statements) is cleared as PostgreSQL clears its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from frontdoor_pg_support import WireGateway, pooled_gateway
from frontdoor_pg_support import gauge as _gauge

psycopg = pytest.importorskip("psycopg")

POINT = "SELECT zip FROM dmv.persons WHERE person_id = %s"
POOL = 5


@pytest.fixture(scope="module")
def gw5(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from pooled_gateway(dmv_dsn, tmp_path_factory, "reset-audit", POOL)


def _backend_connections(dmv_dsn: str) -> int:
    """Client connections on the backend itself, this one left out."""
    with psycopg.connect(dmv_dsn, autocommit=True) as direct:
        row = direct.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _wire_held(gw: WireGateway) -> float:
    return _gauge(gw, "gateway_wire_backend_pool_in_use") + _gauge(gw, "gateway_wire_backend_pool_idle")


def test_30_clients_with_discard_all_share_5_connections(gw5: WireGateway, dmv_dsn: str) -> None:
    others = _backend_connections(dmv_dsn) - _wire_held(gw5)  # the gateway's own (catalog, HTTP door)
    clients = [psycopg.connect(gw5.dsn("dmv_clerk"), autocommit=True) for _ in range(30)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients))

    def work(n: int, conn: psycopg.Connection) -> None:
        try:
            barrier.wait(timeout=30)
            for round_ in range(6):
                assert conn.execute(POINT, ((n * 7 + round_) % 50 + 1,)).fetchall()
                conn.execute("DISCARD ALL" if round_ % 2 else "RESET ALL")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work, args=(n, c)) for n, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        assert _gauge(gw5, "gateway_wire_sessions") >= 30  # all 30 still connected...
        assert _wire_held(gw5) <= POOL  # ...on at most 5 backend connections
        assert _backend_connections(dmv_dsn) - others <= POOL  # counted on the backend itself
    finally:
        for c in clients:
            c.close()


def test_a_set_pins_until_discard_all_then_the_session_unpins(gw5: WireGateway) -> None:
    """30 sessions, one after the other, each SET a backend setting (it follows the session) and clear it. With 5
    connections, the sixth would wait out the pool if a cleared session kept its connection."""
    clients = []
    try:
        for n in range(30):
            conn = psycopg.connect(gw5.dsn("dmv_clerk"), autocommit=True)
            clients.append(conn)
            conn.execute("SET statement_timeout = '77s'")
            assert conn.execute("SHOW statement_timeout").fetchone() == ("77s",)  # it stays with the session
            conn.execute("DISCARD ALL" if n % 2 else "RESET ALL")
            assert conn.execute("SHOW statement_timeout").fetchone() != ("77s",)
            assert conn.execute(POINT, (n + 1,)).fetchall()
        assert _wire_held(gw5) <= POOL
        # the connections went back clean: no one sees another session's setting
        for conn in clients[::5]:
            for _ in range(3):
                assert conn.execute("SHOW statement_timeout").fetchone() != ("77s",)
    finally:
        for c in clients:
            c.close()


def test_discard_all_clears_the_gateway_session_state(gw5: WireGateway) -> None:
    with psycopg.connect(gw5.dsn("cbi_analyst"), autocommit=True) as conn:
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        for n in range(6):  # psycopg prepares it after a few runs: a named statement, the session pins
            conn.execute("SELECT count(*) FROM dmv.persons WHERE person_id = %s", (n + 1,), prepare=True)
        assert conn.execute("SHOW gateway.purpose").fetchone() == ("criminal_law_enforcement",)
        conn.execute("DISCARD ALL")
        assert conn.execute("SHOW gateway.purpose").fetchone() != ("criminal_law_enforcement",)
        # a named statement of this client (it pins the session) is gone too, as in PostgreSQL
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no stated purpose"):
            conn.execute("SELECT count(*) FROM dmv.persons WHERE person_id = %s", (1,))
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        pg = conn.pgconn
        sql = b"SELECT count(*) FROM dmv.persons WHERE person_id = $1"
        assert pg.prepare(b"mine", sql).status == psycopg.pq.ExecStatus.COMMAND_OK
        assert pg.exec_prepared(b"mine", [b"1"]).status == psycopg.pq.ExecStatus.TUPLES_OK
        assert pg.exec_(b"DISCARD ALL").status == psycopg.pq.ExecStatus.COMMAND_OK
        gone = pg.exec_prepared(b"mine", [b"1"])
        assert gone.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"26000"
        assert pg.exec_(b"SET gateway.purpose = 'criminal_law_enforcement'").status == psycopg.pq.ExecStatus.COMMAND_OK
        assert pg.exec_(b"SET gateway.case_number = 'CR-2026-0042'").status == psycopg.pq.ExecStatus.COMMAND_OK
        assert pg.prepare(b"mine", sql).status == psycopg.pq.ExecStatus.COMMAND_OK  # the name is free again
        assert pg.exec_prepared(b"mine", [b"2"]).status == psycopg.pq.ExecStatus.TUPLES_OK
        assert conn.execute("SELECT count(*) FROM dmv.persons WHERE person_id = %s", (3,), prepare=True).fetchone()


def test_discard_all_in_a_transaction_is_refused_and_keeps_the_pin(gw5: WireGateway) -> None:
    with psycopg.connect(gw5.dsn("dmv_clerk")) as conn:
        conn.execute("SET statement_timeout = '66s'")
        conn.commit()
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            conn.execute("DISCARD ALL")
        conn.rollback()
        conn.autocommit = True
        for _ in range(3):  # the failed DISCARD ALL cleared nothing: the setting is still there
            assert conn.execute("SHOW statement_timeout").fetchone() == ("66s",)
