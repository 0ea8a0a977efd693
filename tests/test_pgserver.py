"""The throwaway PostgreSQL launcher: binaries, SCRAM login, 127.0.0.1 only, reuse, clean stop."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg
import pytest

from gateway.pgserver import PgServerError, PostgresServer, find_pg_bin


def _fetch(dsn: str, sql: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_find_pg_bin_has_the_programs() -> None:
    path = find_pg_bin()
    for name in ("initdb", "pg_ctl", "postgres", "psql"):
        assert (path / name).exists(), name


def test_pg_bin_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not system:
        pytest.skip("no system PostgreSQL to point PG_BIN at")
    monkeypatch.setenv("PG_BIN", str(system[-1]))
    assert find_pg_bin() == system[-1]
    monkeypatch.setenv("PG_BIN", str(tmp_path))
    with pytest.raises(PgServerError, match="PG_BIN"):
        find_pg_bin()


def test_session_server_speaks_scram_on_loopback(pg_server: PostgresServer, admin_dsn: str) -> None:
    assert admin_dsn == f"postgresql://{pg_server.superuser}:{pg_server.password}@127.0.0.1:{pg_server.port}/postgres"
    assert _fetch(admin_dsn, "SHOW listen_addresses") == "127.0.0.1"
    assert _fetch(admin_dsn, "SHOW password_encryption") == "scram-sha-256"
    assert _fetch(admin_dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is True
    assert _fetch(admin_dsn, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method <> 'scram-sha-256'") == 0
    wrong = admin_dsn.replace(pg_server.password, "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        _fetch(wrong, "SELECT 1")


def test_fresh_db_gives_distinct_empty_databases(fresh_db) -> None:  # type: ignore[no-untyped-def]
    a, b = fresh_db("same name"), fresh_db("same name")
    assert a != b
    assert _fetch(a, "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')") == 0
    assert _fetch(b, "SELECT current_database()") != _fetch(a, "SELECT current_database()")


def test_start_stop_is_quick_and_leaves_nothing() -> None:
    began = time.monotonic()
    server = PostgresServer().start()
    started = time.monotonic() - began
    port, data = server.port, server.data_dir
    assert data is not None and data.exists()
    assert _fetch(server.create_database("probe"), "SELECT current_database()") == "probe"
    server.stop()
    assert started < 10, f"start took {started:.1f}s"
    assert _port_is_free(port)
    assert not data.exists()
    assert not server.running
    with pytest.raises(PgServerError):
        server.dsn()
    server.stop()  # idempotent


def test_given_data_dir_is_reused(tmp_path: Path) -> None:
    data = tmp_path / "cluster"
    with PostgresServer(data) as first:
        first.create_database("kept")
        password = first.password
    assert (data / "PG_VERSION").exists()
    with PostgresServer(data, password="ignored: the folder remembers its own") as second:
        assert second.password == password
        assert _fetch(second.dsn("kept"), "SELECT current_database()") == "kept"
    assert data.exists()


def test_two_servers_get_different_ports(pg_server: PostgresServer) -> None:
    with PostgresServer() as other:
        assert other.port != pg_server.port
        assert _fetch(other.dsn(), "SELECT 1") == 1
