"""No answer before its record is durable (SPEC 6), tested by killing the gateway mid-load.

Clients send distinct point lookups as fast as they are answered (simple Query and the extended
protocol, prepared and not, both pool modes); the gateway is killed with SIGKILL while they run.
Every answer a client received must have its request record in the log (matched by the keyed hash
of its text), and ``gateway audit verify`` must accept the log a crash left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg import pq
import pytest

from frontdoor_pg_support import ROOT, WireGateway, raw_login, start_gateway
from gateway import wire as w
from gateway.audit.keyfile import read_key
from gateway.audit.literals import LiteralHasher

SQL = "SELECT person_id, first_name FROM dmv.persons WHERE person_id = {}"


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _pipelined(gw: WireGateway, base: int, answered: list[int], stop: threading.Event) -> None:
    """Batches of 20 Parse/Bind/Execute and one Sync, sent without waiting: every CommandComplete that
    arrives ends an answer this client got."""
    try:
        sock = raw_login(gw, "dmv_clerk", "-c gateway.purpose=service_delivery")
    except (OSError, ConnectionError):
        return
    parser, n = w.BackendParser(), base
    try:
        while not stop.is_set():
            batch, sent = [], []
            for _ in range(20):
                n += 1
                sent.append(n)
                batch += [w.Parse("", SQL.format(n)), w.Bind("", ""), w.Execute("")]
            sock.sendall(b"".join(w.encode(m) for m in (*batch, w.Sync())))
            while True:
                msg = parser.next_event()
                if msg is None:
                    data = sock.recv(65536)
                    if not data:
                        return
                    parser.feed(data)
                    continue
                if isinstance(msg, w.CommandComplete):  # one per Execute, in order
                    answered.append(sent.pop(0))
                elif isinstance(msg, w.ErrorResponse):
                    return
                elif isinstance(msg, w.ReadyForQuery):
                    break
    except OSError:
        return
    finally:
        sock.close()


def _client(gw_dsn: str, base: int, mode: str, answered: list[int], stop: threading.Event) -> None:
    try:
        conn = psycopg.connect(gw_dsn, autocommit=True, options="-c gateway.purpose=service_delivery",
                               prepare_threshold=0 if mode == "prepared" else None)
    except psycopg.Error:
        return
    n = base
    try:
        while not stop.is_set():
            n += 1
            if mode == "simple":  # libpq's PQexec: a simple Query message
                result = conn.pgconn.exec_(SQL.format(n).encode())
                if result.status != pq.ExecStatus.TUPLES_OK:
                    return
                rows = [(int(result.get_value(0, 0) or b"0"),)] if result.ntuples else []
            else:
                rows = conn.execute(SQL.format(n), prepare=(mode == "prepared")).fetchall()
            assert rows == [] or rows[0][0] == n
            answered.append(n)
    except (psycopg.Error, OSError):
        return  # the gateway died under it
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - a dead connection
            pass


@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_every_answer_a_crash_left_has_its_record(dmv_dsn: str, tmp_path: Path, pool_mode: str) -> None:
    gen = start_gateway(dmv_dsn, tmp_path, GATEWAY_POOL_MODE=pool_mode)
    gw = next(gen)
    answered: dict[str, list[int]] = {}
    stop = threading.Event()
    threads = []
    for k, mode in enumerate(("simple", "extended", "prepared", "simple", "prepared", "extended")):
        got: list[int] = []
        answered[f"{mode}{k}"] = got
        threads.append(threading.Thread(target=_client, args=(gw.dsn("dmv_clerk"), 100 * k, mode, got, stop), daemon=True))
    piped: list[int] = []
    answered["pipelined"] = piped
    threads.append(threading.Thread(target=_pipelined, args=(gw, 10_000, piped, stop), daemon=True))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while (sum(len(v) for v in answered.values()) < 150 or len(piped) < 40) and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = _children(gw.process.pid)
    gw.process.send_signal(signal.SIGKILL)
    gw.process.wait(10)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stop.set()
    for t in threads:
        t.join(10)
    gen.close()
    total = sum(len(v) for v in answered.values())
    assert total >= 50 and piped, answered

    hasher = LiteralHasher(read_key(tmp_path / "audit.key"))
    received = set()
    for line in (tmp_path / "requests.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line: verify decides whether that is acceptable
        if record.get("type") == "request":
            received.add(record.get("sql_received"))
    missing = [(mode, n) for mode, ns in answered.items() for n in ns if hasher.hash_sql(SQL.format(n)) not in received]
    assert not missing, f"{len(missing)} of {total} answers have no request record: {missing[:10]}"

    verify = subprocess.run([sys.executable, "-m", "gateway", "audit", "verify", str(tmp_path / "requests.jsonl")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr

