"""Faults through the wire: a backend that dies under a session, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
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
    def connect(**kw: object) -> psycopg.Connection:
        return psycopg.connect(host=fault_gw.host, port=fault_gw.port, user="dmv_clerk", dbname="dmv",
                               password="dmv_clerk-demo-password", sslmode="disable", **kw)

    in_tx = connect()  # inside a transaction: the session holds its backend connection
    between = connect(autocommit=True)  # between statements (transaction pooling): it holds none
    assert in_tx.execute("SELECT 1").fetchone() == (1,)
    assert between.execute("SELECT 1").fetchone() == (1,)
    before = set(_backend_pids(own_backend[1]))
    for pid in before:  # SIGKILL: the backend dies without a goodbye message; the server then ends
        with contextlib.suppress(ProcessLookupError):  # every other backend (some before we get to them)
            os.kill(pid, signal.SIGKILL)  # with a FATAL, and recovers from the crash
    with pytest.raises(psycopg.OperationalError) as info:
        in_tx.execute("SELECT 1")
        in_tx.execute("SELECT 1")
    assert "gateway: lost the connection to the backend database" in str(info.value), str(info.value)
    in_tx.close()
    # the idle pooled connections died too (EOF, or a FATAL left unread): the pool never hands those
    # out, and waits out the server's crash recovery (57P03) instead of refusing the statement
    assert between.execute("SELECT 2").fetchone() == (2,)
    between.close()
    with connect() as again:  # and a new session works
        assert again.execute("SELECT 3").fetchone() == (3,)
