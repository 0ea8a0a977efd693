"""Named prepared statements re-prepared across pooled backend connections (PgBouncer's
max_prepared_statements): clients that prepare (asyncpg, psycopg with prepare_threshold=0, pgbench -M
prepared, JDBC past prepareThreshold) no longer pin a backend connection.

Each client's statement names map to the gateway's (``gw_<hash of rewritten SQL and types>``): many
clients preparing the same text share one backend statement; a connection that lacks it gets the
Parse first. Counted on the backend (pg_stat_activity) and in /metrics."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdoor_pg_support import ROOT, WireGateway, start_gateway

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")

POOL = 4
POINT = "SELECT zip FROM dmv.persons WHERE person_id = %s"
POINT_1 = "SELECT zip FROM dmv.persons WHERE person_id = $1"


@pytest.fixture(scope="module")
def gw4(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, Path(tmp_path_factory.mktemp("prepared-audit")), GATEWAY_WIRE_POOL_SIZE=str(POOL),
                             GATEWAY_POOL_MODE="transaction", GATEWAY_WIRE_POOL_WAIT_MS="20000")


def _gauges(gw: WireGateway) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{gw.http_port}/metrics", timeout=10).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(gateway_wire_\w+) (\S+)$", text, re.M)}


def _backend_connections(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as direct:
        row = direct.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _wire_held(gw: WireGateway) -> float:
    g = _gauges(gw)
    return g["gateway_wire_backend_pool_in_use"] + g["gateway_wire_backend_pool_idle"]


def _others(gw: WireGateway, dsn: str) -> float:
    """Backend connections of the gateway itself (catalog, HTTP door) and other tests: not the wire pool."""
    return _backend_connections(dsn) - _wire_held(gw)


def _asyncpg(gw: WireGateway) -> object:
    return asyncpg.connect(host=gw.host, port=gw.port, user="dmv_clerk", password="dmv_clerk-demo-password",
                           database="dmv", ssl=False)


def test_40_asyncpg_clients_with_prepared_statements_share_4_connections(gw4: WireGateway, dmv_dsn: str) -> None:
    others = _others(gw4, dmv_dsn)
    before = _gauges(gw4)
    seen: dict[str, float] = {}

    async def main() -> None:
        conns = [await _asyncpg(gw4) for _ in range(40)]
        try:
            start = asyncio.Event()

            async def client(n: int, conn: object) -> int:
                await start.wait()
                stmt = await conn.prepare(POINT_1)  # type: ignore[attr-defined]
                got = 0
                for r in range(8):
                    got += len(await stmt.fetch((n * 7 + r) % 50 + 1))
                    # asyncpg's statement cache: fetch() with arguments prepares a named statement too
                    got += len(await conn.fetch("SELECT person_id FROM dmv.persons WHERE person_id = $1", r + 1))  # type: ignore[attr-defined]
                return got

            tasks = [asyncio.ensure_future(client(n, c)) for n, c in enumerate(conns)]
            start.set()
            results = await asyncio.wait_for(asyncio.gather(*tasks), 240)
            assert all(r >= 8 for r in results), results
            seen.update(_gauges(gw4))  # all 40 still connected, each holding its prepared statements
            seen["backend"] = _backend_connections(dmv_dsn) - others
        finally:
            for c in conns:
                await c.close()  # type: ignore[attr-defined]

    asyncio.run(main())
    assert seen["gateway_wire_sessions"] >= 40
    assert seen["gateway_wire_backend_pool_in_use"] + seen["gateway_wire_backend_pool_idle"] <= POOL
    assert seen["backend"] <= POOL
    parses = seen["gateway_wire_backend_pool_prepared_parses_total"] - before["gateway_wire_backend_pool_prepared_parses_total"]
    shared = seen["gateway_wire_backend_pool_prepared_shared_total"] - before["gateway_wire_backend_pool_prepared_shared_total"]
    clients = (seen["gateway_wire_backend_pool_prepared_client_parses_total"]
               - before["gateway_wire_backend_pool_prepared_client_parses_total"])
    assert clients >= 80  # 40 clients x 2 statements, each prepared by name
    assert shared > 0 and parses < clients  # the same text is one backend statement per connection
    assert seen["gateway_wire_backend_pool_wait_timeouts_total"] == before["gateway_wire_backend_pool_wait_timeouts_total"]


def test_30_psycopg_clients_prepare_threshold_0_share_4_connections(gw4: WireGateway, dmv_dsn: str) -> None:
    others = _others(gw4, dmv_dsn)
    clients = [psycopg.connect(gw4.dsn("dmv_clerk"), autocommit=True, prepare_threshold=0) for _ in range(30)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients))

    def work(n: int, conn: psycopg.Connection) -> None:
        try:
            barrier.wait(timeout=60)
            for r in range(8):
                assert conn.execute(POINT, ((n * 3 + r) % 50 + 1,)).fetchall()
            assert conn._prepared._names  # psycopg holds named statements (it prepared on first use)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work, args=(n, c)) for n, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        assert not errors, errors[:3]
        assert _gauges(gw4)["gateway_wire_sessions"] >= 30
        assert _wire_held(gw4) <= POOL
        assert _backend_connections(dmv_dsn) - others <= POOL
        for conn in clients[::7]:  # and they go on using their statements
            assert conn.execute(POINT, (9,)).fetchall()
    finally:
        for c in clients:
            c.close()


@pytest.mark.skipif(shutil.which("pgbench") is None and not Path("/usr/lib/postgresql/15/bin/pgbench").exists(),
                    reason="pgbench not installed")
def test_pgbench_prepared_30_clients_on_4_connections(gw4: WireGateway, dmv_dsn: str, tmp_path: Path) -> None:
    pgbench = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    script = tmp_path / "point.sql"
    script.write_text("\\set id random(1, 50)\nSELECT zip FROM dmv.persons WHERE person_id = :id;\n")
    others = _others(gw4, dmv_dsn)
    env = dict(os.environ, PGPASSWORD="dmv_clerk-demo-password", PGSSLMODE="disable")
    proc = subprocess.Popen([pgbench, "-n", "-M", "prepared", "-c", "30", "-j", "2", "-t", "40", "-f", str(script),
                             "-h", gw4.host, "-p", str(gw4.port), "-U", "dmv_clerk", "dmv"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_sessions, peak_backend = 0.0, 0.0
    while proc.poll() is None:
        g = _gauges(gw4)
        peak_sessions = max(peak_sessions, g["gateway_wire_sessions"])
        peak_backend = max(peak_backend, g["gateway_wire_backend_pool_in_use"] + g["gateway_wire_backend_pool_idle"])
        time.sleep(0.1)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert re.search(r"number of transactions actually processed: 1200/1200", out), out
    assert "number of failed transactions: 0" in out or "failed" not in out, out
    assert peak_sessions >= 20  # most of the 30 were connected at once
    assert peak_backend <= POOL and _backend_connections(dmv_dsn) - others <= POOL


@pytest.mark.skipif(not list(Path("/usr/share/java").glob("postgresql*.jar")) or shutil.which("java") is None,
                    reason="JDBC driver not installed")
def test_jdbc_30_connections_past_prepare_threshold_on_4(gw4: WireGateway, dmv_dsn: str) -> None:
    jar = sorted(str(p) for p in Path("/usr/share/java").glob("postgresql*.jar"))[0]
    others = _others(gw4, dmv_dsn)
    source = ROOT / "tests/clients/jdbc/JdbcPooled.java"
    proc = subprocess.Popen(["java", "-cp", jar, str(source), gw4.host, str(gw4.port), "30", "10", "3000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed while all 30 are still open
    if line.strip() != "ok=300 open=30":
        proc.kill()
        pytest.fail(f"JDBC client: {line!r} {proc.communicate()[1][-3000:]}")
    g = _gauges(gw4)
    assert g["gateway_wire_sessions"] >= 30
    assert g["gateway_wire_backend_pool_in_use"] + g["gateway_wire_backend_pool_idle"] <= POOL
    assert _backend_connections(dmv_dsn) - others <= POOL
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""


def test_statements_are_prepared_again_after_the_backend_connections_are_killed(gw4: WireGateway, dmv_dsn: str) -> None:
    async def main() -> None:
        conn = await _asyncpg(gw4)
        try:
            stmt = await conn.prepare(POINT_1)
            assert await stmt.fetch(1)
            pids = set()
            for _ in range(10):
                pids.add(await conn.fetchval("SELECT pg_backend_pid()"))
            before = _gauges(gw4)["gateway_wire_backend_pool_prepared_parses_total"]
            with psycopg.connect(dmv_dsn, autocommit=True) as direct:  # the idle ones get a FATAL, left unread
                for pid in pids:
                    direct.execute("SELECT pg_terminate_backend(%s)", (pid,))
                deadline = time.monotonic() + 20
                while direct.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                                     (list(pids),)).fetchone() != (0,):  # they are gone...
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            await asyncio.sleep(0.5)  # ...and the gateway has read their goodbye (this test is not about that race)
            for n in range(5):  # the same client statement, on connections that never saw it
                assert await stmt.fetch(n + 2)
            assert await conn.fetchval("SELECT pg_backend_pid()") not in pids
            assert _gauges(gw4)["gateway_wire_backend_pool_prepared_parses_total"] > before
        finally:
            await conn.close()

    asyncio.run(main())


def test_deallocate_discard_all_and_close_forget_the_clients_names(gw4: WireGateway) -> None:
    with psycopg.connect(gw4.dsn("dmv_clerk"), autocommit=True) as conn:
        pg = conn.pgconn
        sql = b"SELECT zip FROM dmv.persons WHERE person_id = $1"
        ok = psycopg.pq.ExecStatus

        def sqlstate(res: object) -> bytes | None:
            return res.error_field(psycopg.pq.DiagnosticField.SQLSTATE)  # type: ignore[attr-defined]

        assert pg.prepare(b"mine", sql).status == ok.COMMAND_OK
        assert sqlstate(pg.prepare(b"mine", sql)) == b"42P05"  # the name is taken (the client's own name)
        assert pg.exec_prepared(b"mine", [b"1"]).status == ok.TUPLES_OK
        assert pg.describe_prepared(b"mine").nfields == 1
        assert pg.exec_(b"DEALLOCATE mine").status == ok.COMMAND_OK
        assert sqlstate(pg.exec_prepared(b"mine", [b"1"])) == b"26000"
        assert sqlstate(pg.exec_(b"DEALLOCATE mine")) == b"26000"
        assert pg.prepare(b"mine", sql).status == ok.COMMAND_OK  # the name is free again
        assert pg.prepare(b"other", sql).status == ok.COMMAND_OK  # same text, another name: one backend statement
        assert pg.exec_prepared(b"other", [b"2"]).status == ok.TUPLES_OK
        assert pg.exec_(b"DEALLOCATE ALL").status == ok.COMMAND_OK
        assert sqlstate(pg.exec_prepared(b"mine", [b"1"])) == b"26000"
        assert sqlstate(pg.exec_prepared(b"other", [b"1"])) == b"26000"
        assert pg.prepare(b"mine", sql).status == ok.COMMAND_OK
        assert pg.exec_(b"DISCARD ALL").status == ok.COMMAND_OK
        assert sqlstate(pg.exec_prepared(b"mine", [b"1"])) == b"26000"
        assert pg.prepare(b"mine", sql).status == ok.COMMAND_OK
        assert pg.exec_prepared(b"mine", [b"3"]).status == ok.TUPLES_OK
        # the gateway's own backend names are not the client's to use
        assert sqlstate(pg.exec_prepared(b"gw_000000000000000000000000", [b"1"])) == b"26000"
        assert sqlstate(pg.describe_prepared(b"nope")) == b"26000"
        # a failed Parse leaves no name behind (as in PostgreSQL)
        assert sqlstate(pg.prepare(b"bad", b"SELECT nosuchcolumn FROM dmv.persons")) is not None
        assert sqlstate(pg.exec_prepared(b"bad", [])) == b"26000"
        # psycopg's own DEALLOCATE (it evicts from its cache with one) through the extended protocol
        assert conn.execute("DEALLOCATE mine", prepare=False) is not None
        assert sqlstate(pg.exec_prepared(b"mine", [b"1"])) == b"26000"


def test_a_prepared_statement_whose_plan_a_catalog_reload_invalidates(pg_server: object, tmp_path: Path) -> None:
    from gateway.seed import seed

    dsn = pg_server.create_database("dmv_prepared_reload")  # type: ignore[attr-defined]
    asyncio.run(seed(dsn, 60, 3))
    (tmp_path / "audit").mkdir()
    for gw in start_gateway(dsn, tmp_path / "audit", GATEWAY_WIRE_POOL_SIZE="2", GATEWAY_POOL_MODE="transaction"):
        async def main() -> None:
            conn = await _asyncpg(gw)
            try:
                stmt = await conn.prepare(POINT_1)
                assert await stmt.fetch(1)
                with psycopg.connect(dsn, autocommit=True) as direct:
                    direct.execute("ALTER TABLE dmv.persons RENAME COLUMN zip TO zip_code")
                deadline = time.monotonic() + 30
                while True:  # the gateway reloads its catalog (it polls); then the plan no longer holds
                    try:
                        await stmt.fetch(1)
                    except asyncpg.PostgresError as exc:
                        assert exc.sqlstate in ("42703", "42501"), exc
                        break
                    assert time.monotonic() < deadline, "the catalog change was never seen"
                    await asyncio.sleep(0.5)
                assert await conn.fetchval("SELECT 7") == 7  # the session goes on
                with psycopg.connect(dsn, autocommit=True) as direct:
                    direct.execute("ALTER TABLE dmv.persons RENAME COLUMN zip_code TO zip")
                deadline = time.monotonic() + 30
                while True:  # and once the column is back, the same client statement runs again
                    try:
                        if await stmt.fetch(2):
                            break
                    except asyncpg.PostgresError:
                        pass
                    assert time.monotonic() < deadline, "the statement never came back"
                    await asyncio.sleep(0.5)
            finally:
                await conn.close()

        asyncio.run(main())
