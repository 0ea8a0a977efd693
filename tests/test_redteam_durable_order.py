"""No answer before its record is durable (SPEC 6), seen at the moment each answer arrives.

The gateway runs with a shim (``tests/native/slowsync.c``, LD_PRELOAD) that makes every write to the
request log (opened ``O_DSYNC``: the write returns once the data is on disk) return 2 ms late and,
just before it returns, notes how far the log is durable. A client that receives an answer looks at
those notes at once: the record of the answer must end within the durable part. An answer released
when its record was queued, written but not yet returned, or durable only for another session's batch
shows as a record beyond the durable mark. Every way in: psycopg simple, extended, prepared; asyncpg;
a raw pipeline of 20 Parse/Bind/Execute per Sync; transaction pooling.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import asyncpg
import psycopg
import pytest

from frontdoor_pg_support import ROOT, WireGateway, next_message, raw_login, start_gateway
from gateway import wire as w
from gateway.audit.keyfile import read_key
from gateway.audit.literals import LiteralHasher

SQL = "SELECT person_id, first_name FROM dmv.persons WHERE person_id = {}"
SHIM = Path(__file__).parent / "native" / "slowsync.c"
PER_CLIENT = 20
#: How late each durable write returns. 2 ms is some forty times the gateway's own path from a durable batch to
#: the client's socket (~50 µs), and still fails the tests when the hold is broken: with ``DurableHold.waiting``
#: a no-op 117 of 120 answers arrived early; with ``failed`` releasing what it held, 13 answers had no
#: record (checked at 2 ms and at the 20 ms / 5 ms this file used before, which cost 1.5-2x the time).
DELAY_US = "2000"


def _log_checked(tmp_path: Path, marks: Marks, marks_path: Path, every: int) -> int:
    """Check every arrived answer against the durable marks; the number checked."""
    hasher = LiteralHasher(read_key(tmp_path / "audit.key"))
    log = tmp_path / "requests.jsonl"
    inode = os.stat(log).st_ino
    end_of: dict[str, int] = {}
    offset = 0
    for line in log.read_bytes().splitlines(keepends=True):
        offset += len(line)
        try:
            record = json.loads(line)
        except ValueError:
            continue  # verify judges a torn line
        if record.get("type") == "request":
            end_of.setdefault(record["sql_received"], offset)
    durable: list[tuple[int, int]] = []  # (marks bytes up to this note, durable size of the log)
    at = 0
    for line in marks_path.read_bytes().splitlines(keepends=True):
        at += len(line)
        ino, size = line.split()
        if int(ino) == inode:
            durable.append((at, int(size)))
    early, missing = [], []
    for n, seen_bytes in marks.seen:
        end = end_of.get(hasher.hash_sql(SQL.format(n)))
        if end is None:
            missing.append(n)
            continue
        durable_then = max((size for upto, size in durable if upto <= seen_bytes), default=0)
        if durable_then < end:
            early.append((n, end, durable_then))
    assert not missing, f"{len(missing)} answers have no request record: {missing[:10]}"
    assert not early, f"{len(early)} answers arrived before their records were durable: {early[:5]}"
    verify = subprocess.run([sys.executable, "-m", "gateway", "audit", "verify", str(log)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return len(marks.seen)


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the slow-sync shim")
    out = tmp_path_factory.mktemp("slowsync") / "slowsync.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM), "-ldl"], check=True, timeout=60)
    return out


class Marks:
    """The shim's notes: the size of the marks file when an answer arrived (read after the run)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[int, int]] = []  # (request number, marks bytes when its answer arrived)
        self.lock = threading.Lock()

    def arrived(self, n: int) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            size = 0
        with self.lock:
            self.seen.append((n, size))


def _psycopg(gw: WireGateway, mode: str, base: int, marks: Marks, tolerate: bool = False) -> None:
    """``tolerate``: a refused request (the log failed: 58030, the session ended) is not a failure;
    connect again and go on."""
    conn = None
    try:
        for n in range(base, base + PER_CLIENT):
            if conn is None or conn.closed:
                conn = psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True, options="-c gateway.purpose=service_delivery",
                                       prepare_threshold=0 if mode == "prepared" else 5)
            try:
                if mode == "simple":
                    cur = conn.execute(SQL.format(n).encode(), prepare=False)
                else:
                    cur = conn.execute(SQL.format(n), prepare=mode == "prepared")
                cur.fetchall()
            except psycopg.Error as exc:
                if not tolerate:
                    raise
                assert exc.sqlstate in (None, "58030"), exc
                conn.close()
                continue
            marks.arrived(n)
    finally:
        if conn is not None:
            conn.close()


def _asyncpg(gw: WireGateway, base: int, marks: Marks) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(host=gw.host, port=gw.port, user="dmv_clerk", password="dmv_clerk-demo-password",
                                     database="dmv", ssl=False, server_settings={"options": "-c gateway.purpose=service_delivery"})
        try:
            for n in range(base, base + PER_CLIENT):
                await conn.fetch(SQL.format(n))
                marks.arrived(n)
        finally:
            await conn.close()

    asyncio.run(main())


def _pipelined(gw: WireGateway, base: int, marks: Marks) -> None:
    sock = raw_login(gw, "dmv_clerk", "-c gateway.purpose=service_delivery")
    parser = w.BackendParser()
    try:
        for start in range(base, base + PER_CLIENT, 20):
            sent = list(range(start, min(start + 20, base + PER_CLIENT)))
            batch = [m for n in sent for m in (w.Parse("", SQL.format(n)), w.Bind("", ""), w.Execute(""))]
            sock.sendall(b"".join(w.encode(m) for m in (*batch, w.Sync())))
            while True:
                msg = next_message(sock, parser)
                if isinstance(msg, w.CommandComplete):
                    marks.arrived(sent.pop(0))
                elif isinstance(msg, w.ErrorResponse):
                    raise AssertionError(msg.message)
                elif isinstance(msg, w.ReadyForQuery):
                    break
    finally:
        sock.close()


def _run_clients(jobs: list[tuple[Callable[..., None], tuple[object, ...]]]) -> None:
    """Run each ``(target, args)`` in a thread at once, wait for all, and fail with whatever any raised."""
    failures: list[BaseException] = []

    def guarded(target: Callable[..., None], args: tuple[object, ...]) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures


def test_no_answer_arrives_before_its_record_is_durable(dmv_dsn: str, tmp_path: Path, shim: Path) -> None:
    """Transaction pooling: the mode with the most between an answer and its session (the session mode
    is in test_redteam_durability's crash test). At one client (each way in alone, one after another:
    the steady path with nothing else queued, the writer idle when the record comes) and at eight at
    once (batches shared by sessions)."""
    marks_path = tmp_path / "durable-marks"
    gen = start_gateway(dmv_dsn, tmp_path, GATEWAY_POOL_MODE="transaction", LD_PRELOAD=str(shim),
                        SLOWSYNC_MARKS=str(marks_path), SLOWSYNC_DELAY_US=DELAY_US)
    gw = next(gen)
    marks = Marks(marks_path)
    kinds: list[tuple[Callable[..., None], tuple[object, ...]]] = [
        *[(_psycopg, (gw, mode)) for mode in ("simple", "extended", "prepared", "simple", "extended", "prepared")],
        (_asyncpg, (gw,)), (_pipelined, (gw,))]
    try:
        for k, (target, args) in enumerate(kinds[:3] + kinds[6:]):  # one client at a time, every way in
            _run_clients([(target, (*args, 10_000 + 1000 * k, marks))])
        _run_clients([(target, (*args, 1000 * (k + 1), marks)) for k, (target, args) in enumerate(kinds)])  # eight at once
    finally:
        gen.close()

    assert _log_checked(tmp_path, marks, marks_path, 0) == (5 + 8) * PER_CLIENT


def test_a_log_that_fails_mid_record_releases_only_what_it_kept(dmv_dsn: str, tmp_path: Path, shim: Path) -> None:
    """Every 7th write to the log is torn (half written, then ENOSPC): the requests of that batch are
    refused (58030) and nothing of theirs is released; every answer that arrives has a durable record,
    and the log verifies."""
    marks_path = tmp_path / "durable-marks"
    gen = start_gateway(dmv_dsn, tmp_path, GATEWAY_POOL_MODE="transaction", LD_PRELOAD=str(shim),
                        SLOWSYNC_MARKS=str(marks_path), SLOWSYNC_DELAY_US=DELAY_US, SLOWSYNC_FAIL_EVERY="7")
    gw = next(gen)
    marks = Marks(marks_path)
    try:
        _run_clients([(_psycopg, (gw, mode, 1000 * (k + 1), marks, True))
                      for k, mode in enumerate(("simple", "extended", "prepared", "simple"))])
    finally:
        gen.close()
    answered = _log_checked(tmp_path, marks, marks_path, 7)
    assert 0 < answered < 4 * PER_CLIENT, answered  # some were refused, some answered
