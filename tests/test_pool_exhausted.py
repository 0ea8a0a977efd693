"""An exhausted pool refuses the statement, not the session (wire_pool_wait_ms, wire_pool_queue).

One backend connection; a client holds it in a transaction. Another client's statement waits out
``wire_pool_wait_ms`` and gets 53400 while its session goes on; beyond ``wire_pool_queue`` waiters
a statement is refused at once. Queue and waits show in /metrics and in the console's SHOW POOLS."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontdoor_pg_support import WireGateway, start_gateway

psycopg = pytest.importorskip("psycopg")

POINT = "SELECT zip FROM dmv.persons WHERE person_id = %s"
WAIT_MS = 600


@pytest.fixture(scope="module")
def gw1(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, Path(tmp_path_factory.mktemp("exhausted-audit")), GATEWAY_WIRE_POOL_SIZE="1",
                             GATEWAY_POOL_MODE="transaction", GATEWAY_WIRE_POOL_WAIT_MS=str(WAIT_MS),
                             GATEWAY_WIRE_POOL_QUEUE="1")


def _gauges(gw: WireGateway) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{gw.http_port}/metrics", timeout=10).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(gateway_wire_backend_pool_\w+) (\S+)$", text, re.M)}


def test_a_statement_past_the_wait_is_refused_and_the_session_goes_on(gw1: WireGateway) -> None:
    with psycopg.connect(gw1.dsn("dmv_clerk"), autocommit=True) as waiter, \
            psycopg.connect(gw1.dsn("dmv_clerk")) as holder:
        assert waiter.execute(POINT, (1,)).fetchall()
        before = _gauges(gw1)
        assert holder.execute(POINT, (2,)).fetchall()  # a transaction: it keeps the only connection
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="wire_pool_wait_ms"):
            waiter.execute(POINT, (3,))  # extended protocol
        assert time.monotonic() - t0 >= WAIT_MS / 1000 * 0.9
        simple = waiter.pgconn.exec_(b"SELECT 1")  # simple protocol
        assert simple.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"53400"
        assert not waiter.closed and waiter.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        holder.commit()
        assert waiter.execute(POINT, (4,)).fetchall()  # the same session, served again
        after = _gauges(gw1)
        assert after["gateway_wire_backend_pool_wait_timeouts_total"] - before["gateway_wire_backend_pool_wait_timeouts_total"] == 2
        assert after["gateway_wire_backend_pool_wait_seconds_total"] - before["gateway_wire_backend_pool_wait_seconds_total"] >= 1.0
        assert after["gateway_wire_backend_pool_waiting"] == 0


def test_waiters_beyond_the_queue_are_refused_at_once(gw1: WireGateway) -> None:
    with psycopg.connect(gw1.dsn("dmv_clerk"), autocommit=True) as queued, \
            psycopg.connect(gw1.dsn("dmv_clerk"), autocommit=True) as late, \
            psycopg.connect(gw1.dsn("dmv_clerk")) as holder:
        assert late.execute(POINT, (5,)).fetchall() and queued.execute(POINT, (5,)).fetchall()
        assert holder.execute(POINT, (6,)).fetchall()
        seen: list[object] = []

        def wait_in_queue() -> None:
            try:
                queued.execute(POINT, (7,))
                seen.append("served")
            except psycopg.Error as exc:
                seen.append(exc)

        thread = threading.Thread(target=wait_in_queue)
        thread.start()
        deadline = time.monotonic() + 5
        while _gauges(gw1)["gateway_wire_backend_pool_waiting"] < 1:  # the queue (of 1) is full
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with psycopg.connect(f"postgresql://auditor:auditor-demo-password@{gw1.host}:{gw1.port}/gateway",
                             autocommit=True) as console:
            cur = console.execute("SHOW POOLS")
            pool = dict(zip([d.name for d in cur.description], cur.fetchone()))
        assert int(pool["waiting"]) == 1 and int(pool["queue_max"]) == 1 and int(pool["size"]) == 1
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="wire_pool_queue"):
            late.execute(POINT, (8,))
        assert time.monotonic() - t0 < WAIT_MS / 1000  # at once, not after the wait
        holder.commit()  # the queued one gets the connection
        thread.join(10)
        assert seen == ["served"], seen
        assert late.execute(POINT, (9,)).fetchall()
        assert _gauges(gw1)["gateway_wire_backend_pool_queue_full_total"] >= 1


def test_an_unnamed_statement_never_reaches_another_session(gw1: WireGateway) -> None:
    """One backend connection, shared: each session's unnamed statement is its own (Parsed again on
    the connection when another session's replaced it), and one never parsed is not there."""
    ok = psycopg.pq.ExecStatus
    with psycopg.connect(gw1.dsn("dmv_clerk"), autocommit=True) as a, \
            psycopg.connect(gw1.dsn("dmv_clerk"), autocommit=True) as b, \
            psycopg.connect(gw1.dsn("dmv_clerk"), autocommit=True) as c:
        pa, pb = a.pgconn, b.pgconn
        assert pa.prepare(b"", b"SELECT zip FROM dmv.persons WHERE person_id = $1").status == ok.COMMAND_OK
        assert pa.exec_prepared(b"", [b"1"]).fname(0) == b"zip"
        assert pb.prepare(b"", b"SELECT person_id FROM dmv.persons WHERE person_id = $1").status == ok.COMMAND_OK
        assert pb.exec_prepared(b"", [b"1"]).fname(0) == b"person_id"
        again = pa.exec_prepared(b"", [b"2"])  # a's own statement, not b's
        assert again.status == ok.TUPLES_OK and again.fname(0) == b"zip"
        assert pa.describe_prepared(b"").fname(0) == b"zip"
        gone = c.pgconn.exec_prepared(b"", [b"1"])  # c never parsed one: it does not get b's
        assert gone.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"26000"
