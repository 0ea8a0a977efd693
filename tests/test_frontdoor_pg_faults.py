"""Faults through the wire: a backend that dies under a session, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdoor_pg_support import WireGateway, start_gateway
from gateway.pgserver import PostgresServer

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def own_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresServer, str]]:
    """A PostgreSQL of this module only: killing its processes disturbs nobody else."""
    from gateway.seed import seed

    server = PostgresServer().start()
    try:
        dsn = server.create_database("dmv_faults")
        asyncio.run(seed(dsn, 100, 3))
        yield server, dsn
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fault_gw(own_backend: tuple[PostgresServer, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(own_backend[1], Path(tmp_path_factory.mktemp("fault-audit")))


def _backend_pids(dsn: str) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'gateway' "
                             "AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchall()
    return [r[0] for r in rows]


def test_backend_killed_gives_08006_and_next_session_works(fault_gw: WireGateway,
                                                           own_backend: tuple[PostgresServer, str]) -> None:
    conn = psycopg.connect(host=fault_gw.host, port=fault_gw.port, user="dmv_clerk", dbname="dmv",
                           password="dmv_clerk-demo-password", sslmode="disable", autocommit=True)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    before = set(_backend_pids(own_backend[1]))
    for pid in before:  # SIGKILL: the backend dies without a goodbye message
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(psycopg.OperationalError) as info:
        conn.execute("SELECT 1")
        conn.execute("SELECT 1")
    # the session's connection died under it, or (transaction pooling: it held none between statements)
    # the pool could not give it a working one while the server restarts (it may refuse the login while
    # it recovers from the crash): FATAL 08006 either way
    message = str(info.value)
    assert ("gateway: lost the connection to the backend database" in message
            or "gateway: the backend closed the connection" in message
            or "gateway: cannot connect to the backend database" in message
            or "gateway: the backend refused the gateway's login: the database system is in recovery mode"
            in message), message
    conn.close()
    deadline = time.monotonic() + 30
    while True:  # the server restarts its backends after a crash; the gateway reconnects on demand
        try:
            with psycopg.connect(host=fault_gw.host, port=fault_gw.port, user="dmv_clerk", dbname="dmv",
                                 password="dmv_clerk-demo-password", sslmode="disable") as again:
                assert again.execute("SELECT 2").fetchone() == (2,)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
