"""The product benchmark: pgbench through the gateway against PostgreSQL directly and PgBouncer,
measured in one run, targets interleaved round by round.

    python bench/compare.py [--persons 100000] [--seconds 10] [--clients 8 32] [--rounds 2]

Starts its own PostgreSQL (gateway.pgserver), seeds the reference data, starts PgBouncer (session
pooling; `apt-get install pgbouncer`) and `gateway serve` (durable request log on), then runs the
point-lookup script by person_id with -M simple, extended and prepared. Prints tps per target and the
ratios gateway/direct and gateway/pgbouncer (medians over rounds), as a Markdown table for the README.
Run it on a quiet machine: client, proxies and server share the two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from pgbench_run import SCRIPT  # noqa: E402
from pgbench_run import run_pgbench as _run  # noqa: E402



def run_pgbench(*args: object, **kwargs: object) -> float:
    return _run(*args, **kwargs)[0]  # type: ignore[arg-type]


def start_pgbouncer(work: Path, pg_port: int, user: str, password: str, pool_mode: str) -> tuple[subprocess.Popen[bytes], int]:
    from gateway.pgserver.launcher import free_port

    port = free_port()
    (work / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    ini = work / f"pgbouncer-{pool_mode}.ini"
    ini.write_text(
        "[databases]\n"
        f"dmv = host=127.0.0.1 port={pg_port} dbname=dmv\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {work / 'userlist.txt'}\n"
        f"pool_mode = {pool_mode}\nmax_client_conn = 200\ndefault_pool_size = 40\n"
        f"logfile = {work / 'pgbouncer.log'}\npidfile = {work / 'pgbouncer.pid'}\n"

    )
    args = ["pgbouncer", str(ini)]
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        for f in work.iterdir():
            shutil.chown(f, "postgres")
        args = ["pgbouncer", "-u", "postgres", str(ini)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    import socket

    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not start; see {work / 'pgbouncer.log'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, nargs="+", default=[8])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["simple", "extended", "prepared"])
    parser.add_argument("--no-audit-sync", action="store_true",
                        help="request records written without fdatasync (to see what durability costs)")
    args = parser.parse_args()
    if not shutil.which("pgbench") or not shutil.which("pgbouncer"):
        print("needs pgbench and pgbouncer on PATH (apt-get install postgresql-client pgbouncer)", file=sys.stderr)
        return 2

    from frontdoor_pg_support import start_gateway
    from gateway.pgserver import PostgresServer
    from gateway.seed import seed

    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    os.chmod(work, 0o755)
    script = work / "lookup.sql"
    script.write_text(SCRIPT.format(n=args.persons))
    os.chmod(script, 0o644)
    results: dict[tuple[str, str, int], list[float]] = {}
    with PostgresServer(settings={"max_connections": "300"}) as pg:
        dsn = pg.create_database("dmv")
        asyncio.run(seed(dsn, args.persons, 1))
        bouncer_dir = work / "pgbouncer"
        bouncer_dir.mkdir()
        bouncer, bouncer_port = start_pgbouncer(bouncer_dir, pg.port, pg.superuser, pg.password, "session")
        gen = start_gateway(dsn, work, **({"GATEWAY_AUDIT_SYNC": "false"} if args.no_audit_sync else {}))
        gw = next(gen)
        purpose = "-c gateway.purpose=service_delivery"
        targets = {
            "direct": lambda mode, c: run_pgbench("127.0.0.1", pg.port, pg.superuser, pg.password, mode, c, args.seconds, script),
            "pgbouncer": lambda mode, c: run_pgbench("127.0.0.1", bouncer_port, pg.superuser, pg.password, mode, c, args.seconds, script),
            "gateway": lambda mode, c: run_pgbench(gw.host, gw.port, "dmv_clerk", "dmv_clerk-demo-password", mode, c,
                                                   args.seconds, script, purpose),
        }
        try:
            for round_no in range(args.rounds):
                for clients in args.clients:
                    for mode in args.modes:
                        for name, run in targets.items():
                            tps = run(mode, clients)
                            results.setdefault((name, mode, clients), []).append(tps)
                            print(f"round {round_no + 1} c={clients:<3} {mode:9s} {name:10s} {tps:9.0f} tps", flush=True)
        finally:
            gen.close()
            bouncer.send_signal(signal.SIGTERM)
            bouncer.wait(10)
    print("\n| clients | mode | direct tps | PgBouncer tps | gateway tps | gateway/direct | gateway/PgBouncer |")
    print("|---|---|---|---|---|---|---|")
    for clients in args.clients:
        for mode in args.modes:
            d, b, g = (statistics.median(results[(n, mode, clients)]) for n in ("direct", "pgbouncer", "gateway"))
            print(f"| {clients} | {mode} | {d:.0f} | {b:.0f} | {g:.0f} | {g / d:.2f} | {g / b:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
