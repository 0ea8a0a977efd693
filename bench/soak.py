"""A bounded soak on loopback (not part of the test suite): a gateway under many clients, some slow,
some sending garbage, some holding big answers, for a fixed time.

Usage: python bench/soak.py [--minutes 10] [--clients 200] [--persons 5000]

It starts its own PostgreSQL (seeded) and ``gateway serve`` (transaction pooling, pool of 20), runs
the mix, samples the gateway's RSS every few seconds, then stops the gateway with SIGTERM and
counts the request records. Prints one JSON line of figures: RSS at start / max / end, whether the
gateway stayed up, good requests answered and failed, and request records in the log.
Share of clients: 70% good (point lookups, half extended protocol with prepared statements), 10%
holding big answers (read slowly), 10% slow-loris logins, 10% garbage (before and after login).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import wire as w  # noqa: E402
from gateway.pgserver import PostgresServer  # noqa: E402
from gateway.pgserver.launcher import free_port  # noqa: E402


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Stats:
    def __init__(self) -> None:
        self.answered = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.big = 0
        self.garbage = 0
        self.slow = 0

    def fail(self, exc: BaseException) -> None:
        self.failed += 1
        key = type(exc).__name__ + ": " + str(exc)[:80]
        self.errors[key] = self.errors.get(key, 0) + 1


async def good_client(dsn: str, stop: float, stats: Stats, prepared: bool) -> None:
    while time.monotonic() < stop:
        try:
            conn = await asyncpg.connect(dsn, statement_cache_size=100 if prepared else 0)
            try:
                for _ in range(random.randint(20, 200)):
                    if time.monotonic() >= stop:
                        break
                    person = random.randint(1, 1000)
                    if prepared:
                        await conn.fetch("SELECT zip, city FROM dmv.persons WHERE person_id = $1", person)
                    else:
                        await conn.execute(f"SELECT zip, city FROM dmv.persons WHERE person_id = {person}")
                    stats.answered += 1
                    await asyncio.sleep(random.uniform(0.0, 0.05))
            finally:
                await conn.close()
        except Exception as exc:  # noqa: BLE001 - counted
            stats.fail(exc)
            await asyncio.sleep(0.5)


async def _login(host: str, port: int, user: str = "dmv_clerk") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    from scramp import ScramClient

    reader, writer = await asyncio.open_connection(host, port)
    writer.write(w.encode(w.StartupMessage((("user", user), ("database", "dmv")))))
    parser = w.BackendParser()
    client = ScramClient(["SCRAM-SHA-256"], user, f"{user}-demo-password")
    while True:
        msg = parser.next_event()
        if msg is None:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("closed during login")
            parser.feed(data)
            continue
        if isinstance(msg, w.AuthenticationSASL):
            writer.write(w.encode(w.SASLInitialResponse("SCRAM-SHA-256", client.get_client_first().encode())))
        elif isinstance(msg, w.AuthenticationSASLContinue):
            client.set_server_first(msg.data.decode())
            writer.write(w.encode(w.SASLResponse(client.get_client_final().encode())))
        elif isinstance(msg, w.AuthenticationSASLFinal):
            client.set_server_final(msg.data.decode())
        elif isinstance(msg, w.ErrorResponse):
            raise ConnectionError(msg.message)
        elif isinstance(msg, w.ReadyForQuery):
            return reader, writer


async def big_answer_client(host: str, port: int, stop: float, stats: Stats) -> None:
    """Asks for many rows and reads them slowly (the gateway must hold back, not buffer without end)."""
    while time.monotonic() < stop:
        try:
            reader, writer = await _login(host, port)
            writer.write(w.encode(w.Query("SELECT v.*, p.zip FROM dmv.vehicles v JOIN dmv.persons p "
                                          "ON p.person_id = v.owner_person_id")))
            while time.monotonic() < stop:
                data = await reader.read(4096)
                if not data or b"Z\x00\x00\x00\x05" in data:
                    break
                await asyncio.sleep(0.02)
            stats.big += 1
            writer.close()
        except Exception as exc:  # noqa: BLE001 - counted apart: these clients are meant to be awkward
            stats.errors["big: " + type(exc).__name__] = stats.errors.get("big: " + type(exc).__name__, 0) + 1
            await asyncio.sleep(0.5)


async def slow_loris(host: str, port: int, stop: float, stats: Stats) -> None:
    packet = w.encode(w.StartupMessage((("user", "dmv_clerk"), ("database", "dmv"))))
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            for byte in packet:
                writer.write(bytes([byte]))
                await asyncio.sleep(1.0)
                if reader.at_eof() or time.monotonic() >= stop:
                    break
            writer.close()
            stats.slow += 1
        except Exception:  # noqa: BLE001 - the gateway cut it: expected
            stats.slow += 1
            await asyncio.sleep(0.2)


async def garbage_client(host: str, port: int, stop: float, stats: Stats) -> None:
    while time.monotonic() < stop:
        try:
            if random.random() < 0.5:
                reader, writer = await asyncio.open_connection(host, port)
            else:
                reader, writer = await _login(host, port)
            writer.write(os.urandom(random.randint(1, 4096)))
            try:
                await asyncio.wait_for(reader.read(65536), 5)
            except asyncio.TimeoutError:
                pass
            writer.close()
            stats.garbage += 1
        except Exception:  # noqa: BLE001 - a refused login or a cut connection: expected
            stats.garbage += 1
        await asyncio.sleep(random.uniform(0.05, 0.3))


async def run_mix(host: str, port: int, dsn: str, clients: int, seconds: float, pid: int) -> tuple[Stats, list[int]]:
    stats = Stats()
    stop = time.monotonic() + seconds
    n_good = int(clients * 0.7)
    n_other = max(1, (clients - n_good) // 3)
    tasks = [asyncio.create_task(good_client(dsn, stop, stats, prepared=i % 2 == 0)) for i in range(n_good)]
    tasks += [asyncio.create_task(big_answer_client(host, port, stop, stats)) for _ in range(n_other)]
    tasks += [asyncio.create_task(slow_loris(host, port, stop, stats)) for _ in range(n_other)]
    tasks += [asyncio.create_task(garbage_client(host, port, stop, stats)) for _ in range(n_other)]
    samples = []
    while time.monotonic() < stop:
        samples.append(rss_kb(pid))
        await asyncio.sleep(5)
    await asyncio.wait(tasks, timeout=30)
    return stats, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--persons", type=int, default=5000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    server = PostgresServer().start()
    proc = None
    try:
        from gateway.seed import seed

        dsn = server.create_database("dmv_soak")
        asyncio.run(seed(dsn, args.persons, 5))
        pg_port, http_port = free_port(), free_port()
        env = dict(os.environ, GATEWAY_BACKEND_DSN=dsn, GATEWAY_PG_LISTEN=f"127.0.0.1:{pg_port}",
                   GATEWAY_HTTP_LISTEN=f"127.0.0.1:{http_port}", GATEWAY_POLICY=str(ROOT / "policies/colorado-dmv.yaml"),
                   GATEWAY_REQUESTERS=str(ROOT / "policies/requesters.example.yaml"),
                   GATEWAY_AUDIT_PATH=str(work / "requests.jsonl"), GATEWAY_WIRE_POOL_SIZE="20",
                   GATEWAY_MAX_CONNECTIONS_PER_ADDRESS="1000", GATEWAY_MAX_CONNECTIONS_PER_REQUESTER="1000",
                   GATEWAY_STARTUP_TIMEOUT_MS="5000")
        log = open(work / "gateway.log", "wb")  # noqa: SIM115 - closed at the end
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", pg_port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        rss_start = rss_kb(proc.pid)
        user_dsn = f"postgresql://dmv_clerk:dmv_clerk-demo-password@127.0.0.1:{pg_port}/dmv"
        stats, samples = asyncio.run(run_mix("127.0.0.1", pg_port, user_dsn, args.clients, args.minutes * 60, proc.pid))
        alive = proc.poll() is None
        rss_end = rss_kb(proc.pid) if alive else 0
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        log.close()
        records = 0
        for part in sorted(work.glob("requests*.jsonl")):  # rotated files too
            for line in part.read_text().splitlines():
                if '"type":"request"' in line.replace(" ", ""):
                    records += 1
        print(json.dumps({
            "minutes": args.minutes, "clients": args.clients, "gateway_alive_at_end": alive, "exit_code": rc,
            "rss_kb_start": rss_start, "rss_kb_max": max(samples or [0]), "rss_kb_end": rss_end,
            "rss_kb_samples": samples, "good_answered": stats.answered, "good_failed": stats.failed,
            "good_errors": stats.errors, "big_answers": stats.big, "slow_loris": stats.slow,
            "garbage": stats.garbage, "request_records": records, "work_dir": str(work),
        }, indent=1))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        server.stop()


if __name__ == "__main__":
    main()
