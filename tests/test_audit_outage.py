"""Outcome records kept across a short log outage (issue 12), on both sinks.

While the request log cannot be written (a full disk: the log path turned into a symlink to
``/dev/full``; the PostgreSQL sink's database stopped and restarted) every request is refused, as
before, but the records nobody waits for (the ``outcome`` of a request answered just before, an
``alert``) are held in order, up to ``audit_outage_buffer_bytes``, and written into the chain when
the log is back. Past the bound a ``records_lost`` checkpoint says how many and for which requests.

The sink-level tests drive a real sink on a real file or database; the end-to-end tests run a real
``gateway serve`` with clients on both front doors and a long query whose outcome falls inside the
outage.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from frontdoor_pg_support import start_gateway

from gateway.audit.file_sink import AuditLog
from gateway.audit.pg_sink import PgAuditLog, iter_pg_records, verify_pg
from gateway.audit.record import per_request
from gateway.audit.splice import outcome_entry
from gateway.audit.verify import iter_records, verify_files
from gateway.errors import AuditUnavailable
from gateway.pgserver.launcher import PostgresServer

KEY = bytes(range(32))
FAST_HTTP = {"GATEWAY_HTTP_RATE_PER_SECOND": "100000", "GATEWAY_HTTP_RATE_BURST": "100000"}


def request(i: int) -> dict[str, Any]:
    return {"type": "request", "request_id": f"r{i}", "front_door": "pg", "decision": "allow"}


def outcome(i: int) -> tuple[Any, ...]:
    """A request's outcome as the front doors queue it (``append_outcome``, folded per batch)."""
    return outcome_entry(f"r{i}", "ok", 1, None, 1.0, None)


@contextmanager
def full_disk(path: Path) -> Iterator[None]:
    """The live log moved aside and its path made a symlink to /dev/full (every write: ENOSPC);
    on exit the same file is put back, so the chain continues in it."""
    aside = path.with_name(path.name + ".aside")
    os.rename(path, aside)
    path.symlink_to("/dev/full")
    try:
        yield
    finally:
        path.unlink()
        os.rename(aside, path)


async def wait_for(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


# -- the sinks alone ---------------------------------------------------------------------------


def test_file_sink_holds_outcomes_across_a_full_disk_and_writes_them_in_order(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"

    async def go() -> None:
        log = AuditLog(path, instance="gw1", key=KEY)
        log.retry_seconds = 0.1
        await log.start()
        for i in range(3):
            await log.append(request(i))
        with full_disk(path):
            for i in range(3):
                log.append_outcome(outcome(i))  # answered just before the disk filled up
            with pytest.raises(AuditUnavailable):
                await log.append(request(3))  # no record, no answer: refused as before
            log.append_outcome(outcome(3))  # its read ran meanwhile (wire door): no record, so no outcome
            await wait_for(lambda: log.held == 3)
            assert not log.available
        # back: the held outcomes are written by the writer's retry, without any new request
        await wait_for(lambda: log.held == 0 and log.available)
        await log.append(request(4))
        await log.close()

    asyncio.run(go())
    records = list(per_request(iter_records([tmp_path])))
    kinds = [(r["type"], r.get("reason") or r.get("request_id")) for r in records]
    resume = kinds.index(("checkpoint", "resume"))
    assert kinds[:resume] == [("checkpoint", "start"), ("request", "r0"), ("request", "r1"), ("request", "r2"),
                              ("checkpoint", "reopen")]
    after = [k for k in kinds[resume + 1:] if k[0] != "checkpoint"]
    assert after == [("outcome", "r0"), ("outcome", "r1"), ("outcome", "r2"), ("request", "r4")]
    assert ("request", "r3") not in kinds and ("outcome", "r3") not in kinds
    assert "No space left on device" in records[resume]["after_error"]
    assert not [r for r in records if r.get("reason") == "records_lost"]
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings


def test_past_the_bound_a_records_lost_checkpoint_names_the_requests(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"

    async def go() -> int:
        log = AuditLog(path, instance="gw1", key=KEY, outage_buffer_bytes=700)
        log.retry_seconds = 0.1
        await log.start()
        for i in range(10):
            await log.append(request(i))
        with full_disk(path):
            for i in range(10):
                log.append_outcome(outcome(i))
            with pytest.raises(AuditUnavailable):
                await log.append(request(10))
            await asyncio.sleep(0.3)
            held = log.held
            assert 1 <= held < 10
        await wait_for(lambda: log.held == 0 and log.available)
        await log.close()
        return held

    held = asyncio.run(go())
    records = list(per_request(iter_records([tmp_path])))
    lost = [r for r in records if r.get("reason") == "records_lost"]
    assert len(lost) == 1
    kept = [r["request_id"] for r in records if r["type"] == "outcome"]
    assert kept == [f"r{i}" for i in range(held)]  # the first ones, in order
    assert lost[0]["lost"] == 10 - held and lost[0]["types"] == {"outcome": 10 - held}
    assert lost[0]["request_ids"] == [f"r{i}" for i in range(held, 10)]
    assert lost[0]["outage_buffer_bytes"] == 700
    # the checkpoint comes before the held outcomes, right after the resume checkpoint
    order = [r.get("reason") or r["type"] for r in records]
    assert order.index("records_lost") == order.index("resume") + 1
    assert verify_files([tmp_path], KEY).ok


def stop_server(server: PostgresServer) -> None:
    """Stop the cluster (fast: its sessions are cut) but keep it, to start again on the same port."""
    done = server._pg_ctl(["-D", str(server.data_dir), "-m", "fast", "-w", "-t", "30", "stop"])
    assert done.returncode == 0, done.stderr


def start_server(server: PostgresServer) -> None:
    """Start a cluster stopped by :func:`stop_server` (``restart`` reuses its options: same port)."""
    assert server._runtime is not None
    done = server._pg_ctl(["-D", str(server.data_dir), "-l", str(server._runtime / "server.log"),
                           "-w", "-t", "30", "restart"])
    assert done.returncode == 0, done.stderr


def restart(server: PostgresServer, down_seconds: float) -> None:
    stop_server(server)
    time.sleep(down_seconds)
    start_server(server)


@pytest.fixture
def audit_server() -> Iterator[PostgresServer]:
    """A cluster of its own for the audit database, so that restarting it leaves the backend alone."""
    server = PostgresServer().start()
    try:
        server.create_database("audit")
        yield server
    finally:
        server.stop()


def test_pg_sink_holds_outcomes_while_its_database_restarts(audit_server: PostgresServer) -> None:
    dsn = audit_server.dsn("audit")

    async def go() -> None:
        log = PgAuditLog(dsn, instance="gw1", key=KEY, connect_timeout=2)
        log.retry_seconds = 0.1
        await log.start()
        for i in range(3):
            await log.append(request(i))
        stopped = asyncio.get_running_loop().run_in_executor(None, restart, audit_server, 1.5)
        await asyncio.sleep(0.5)  # the server is down now (stop -m fast takes well under that)
        for i in range(3):
            log.append_outcome(outcome(i))
        with pytest.raises(AuditUnavailable):
            await log.append(request(3))
        await wait_for(lambda: log.held == 3)
        await stopped
        await wait_for(lambda: log.held == 0 and log.available, timeout=30)
        await log.append(request(4))
        await log.close()
        records = list(per_request([r async for r in iter_pg_records(dsn)]))
        kinds = [(r["type"], r.get("reason") or r.get("request_id")) for r in records]
        resume = kinds.index(("checkpoint", "resume"))
        assert [k for k in kinds[resume + 1:] if k[0] != "checkpoint"] == [
            ("outcome", "r0"), ("outcome", "r1"), ("outcome", "r2"), ("request", "r4")]
        assert ("request", "r3") not in kinds
        result = await verify_pg(dsn, KEY)
        assert result.ok, result.findings

    asyncio.run(go())


# -- through a real gateway ----------------------------------------------------------------------


class Clients:
    """HTTP and wire clients asking point lookups in loops until stopped, and one long query.

    HTTP answers carry their request id (``answered``); wire answers are counted. A refusal (the
    log down) is counted in ``refused`` and the client goes on (wire: with a new session).
    """

    def __init__(self, gw: Any) -> None:
        self.gw = gw
        self.stop = threading.Event()
        self.answered: list[str] = []
        self.wire_answers = 0
        self.refused = 0
        self.long_result: list[Any] = []
        self.long_sent = threading.Event()
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def start(self, long_sql: str, records: Any) -> None:
        """Start the clients; return once the long query's request record is in ``records()``."""
        self.threads = [threading.Thread(target=self._guard, args=(self._http,)) for _ in range(2)]
        self.threads += [threading.Thread(target=self._guard, args=(self._wire, k)) for k in range(2)]
        self.threads.append(threading.Thread(target=self._guard, args=(self._long, long_sql)))
        for t in self.threads:
            t.start()
        assert self.long_sent.wait(30)
        deadline = time.monotonic() + 30
        while not any(r["type"] == "request" and "generate_series" in str(r.get("sql_received"))
                      for r in records()):
            assert time.monotonic() < deadline and not self.errors, self.errors
            time.sleep(0.1)
        time.sleep(0.3)  # the clients keep asking meanwhile

    def wait_long(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.long_result and not self.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.long_result, f"the long query was not answered: {self.errors}"

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not self.errors, self.errors

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.errors.append(exc)

    def _http(self) -> None:
        body = {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = $1", "params": [9],
                "purpose": "service_delivery"}
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                r = client.post(f"http://127.0.0.1:{self.gw.http_port}/v1/query", json=body,
                                headers={"Authorization": "Bearer dmv_clerk-demo-token"})
                if r.status_code == 200:
                    self.answered.append(r.json()["request_id"])
                elif r.status_code == 503:
                    self.refused += 1
                    time.sleep(0.02)
                else:
                    raise AssertionError(r.text)

    def _wire(self, k: int) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.gw.dsn("dmv_clerk"), autocommit=True,
                                     options="-c gateway.purpose=service_delivery") as conn:
                    while not self.stop.is_set():
                        n += 1
                        conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s",
                                     (k * 1000 + n % 900 + 1,)).fetchall()
                        self.wire_answers += 1
            except psycopg.Error as exc:
                assert exc.sqlstate in ("58030", None, "08006"), exc
                self.refused += 1
                time.sleep(0.02)

    def _long(self, sql: str) -> None:
        with psycopg.connect(self.gw.dsn("dmv_clerk"), autocommit=True,
                             options="-c gateway.purpose=service_delivery") as conn:
            self.long_sent.set()
            self.long_result.append(conn.execute(sql).fetchone())


def _seconds_of_count(dmv_dsn: str, seconds: float) -> str:
    """A query that runs about ``seconds`` on this machine (pg_sleep is refused by the gateway)."""
    with psycopg.connect(dmv_dsn, autocommit=True) as conn:
        n = 1_000_000
        t0 = time.perf_counter()
        conn.execute("SELECT count(*) FROM generate_series(1, %s)", (n,)).fetchone()
        took = max(time.perf_counter() - t0, 0.01)
    return f"SELECT count(*) FROM generate_series(1, {int(n * seconds / took)})"


def check_log(records: list[dict[str, Any]], clients: Clients) -> None:
    """Every answered request has its request record and its outcome; the long query's outcome,
    queued during the outage, was written after the log came back; nothing was lost."""
    assert clients.long_result, "the long query was not answered"
    assert clients.refused > 0, "no request was refused: the outage did not happen while clients ran"
    records = list(per_request(records))
    requests = {r["request_id"]: r for r in records if r["type"] == "request"}
    outcomes = {r["request_id"]: i for i, r in enumerate(records) if r["type"] == "outcome"}
    missing = [rid for rid in clients.answered if rid not in requests or rid not in outcomes]
    assert not missing, f"{len(missing)} answered HTTP requests without both records: {missing[:5]}"
    orphans = [rid for rid in outcomes if rid not in requests]
    assert not orphans, f"outcomes of requests that have no record (refused, never answered): {orphans[:5]}"
    wire = [rid for rid, r in requests.items() if r["front_door"] == "wire" and rid in outcomes]
    assert len(wire) >= clients.wire_answers
    assert not [r for r in records if r.get("reason") == "records_lost"]
    long_id = next(rid for rid, r in requests.items() if "generate_series" in str(r.get("sql_received")))
    resume = next(i for i, r in enumerate(records) if r.get("reason") == "resume")
    assert outcomes[long_id] > resume, "the long query's outcome should have waited out the outage"


def test_file_log_full_for_seconds_while_clients_run(dmv_dsn: str, tmp_path: Path) -> None:
    long_sql = _seconds_of_count(dmv_dsn, 1.5)
    audit_dir = tmp_path / "log"
    audit_dir.mkdir()
    for gw in start_gateway(dmv_dsn, audit_dir, log_path=tmp_path / "gateway.log", **FAST_HTTP):
        clients = Clients(gw)
        try:
            clients.start(long_sql, lambda: list(iter_records([audit_dir])))
            with full_disk(audit_dir / "requests.jsonl"):
                time.sleep(1.0)
                clients.wait_long()  # the long query ends during the outage: its outcome is held
                time.sleep(0.5)
            time.sleep(1.5)
        finally:
            clients.finish()
    records = list(iter_records([audit_dir]))
    assert len(clients.answered) > 10 and clients.wire_answers > 10
    check_log(records, clients)
    result = verify_files([audit_dir], _key(audit_dir))
    assert result.ok, result.findings


def _key(audit_dir: Path) -> bytes:
    from gateway.audit.keyfile import read_key

    return read_key(audit_dir / "audit.key")


async def _pg_records(dsn: str) -> list[dict[str, Any]]:
    try:
        return [r async for r in iter_pg_records(dsn)]
    except Exception:  # noqa: BLE001 - the table is not there yet
        return []


def test_pg_log_database_restarted_while_clients_run(dmv_dsn: str, audit_server: PostgresServer,
                                                     tmp_path: Path) -> None:
    long_sql = _seconds_of_count(dmv_dsn, 1.5)
    dsn = audit_server.dsn("audit")
    key_file = tmp_path / "audit.key"
    key_file.write_text(os.urandom(32).hex() + "\n")
    key_file.chmod(0o600)
    env = {"GATEWAY_AUDIT_DSN": dsn, "GATEWAY_AUDIT_KEY": str(key_file), **FAST_HTTP}
    for gw in start_gateway(dmv_dsn, tmp_path, **env):
        clients = Clients(gw)
        try:
            clients.start(long_sql, lambda: asyncio.run(_pg_records(dsn)))
            stop_server(audit_server)
            time.sleep(1.0)
            clients.wait_long()  # the long query ends while the audit database is down: its outcome is held
            time.sleep(0.5)
            start_server(audit_server)
            time.sleep(1.5)
        finally:
            clients.finish()

    async def read() -> tuple[list[dict[str, Any]], Any]:
        from gateway.audit.keyfile import read_key

        return [r async for r in iter_pg_records(dsn)], await verify_pg(dsn, read_key(key_file))

    records, result = asyncio.run(read())
    assert len(clients.answered) > 10 and clients.wire_answers > 10
    check_log(records, clients)
    assert result.ok, result.findings
