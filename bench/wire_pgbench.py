"""pgbench point lookups by person_id: PostgreSQL directly vs through the gateway, interleaved.

    /tmp/venv/bin/python bench/wire_pgbench.py --seconds 10 --clients 8 --modes simple extended

Starts its own PostgreSQL and ``gateway serve`` (a subprocess), seeds --persons, then runs each
(target, mode) pair in turn, --rounds times, and prints tps and the gateway/direct ratio.
Run it on a quiet machine: client, gateway and server share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SCRIPT = "\\set pid random(1, {n})\nSELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = :pid;\n"


def pgbench(pgbench_bin: str, host: str, port: int, user: str, password: str, mode: str, clients: int,
            seconds: int, script: Path, options: str = "") -> float:
    env = {"PGPASSWORD": password, "PGSSLMODE": "disable", "PATH": "/usr/bin:/bin", "PGOPTIONS": options}
    done = subprocess.run([pgbench_bin, "-n", "-h", host, "-p", str(port), "-U", user, "-M", mode, "-c", str(clients),
                           "-j", "2", "-T", str(seconds), "-f", str(script), "dmv"],
                          env=env, capture_output=True, text=True, check=False)
    match = re.search(r"tps = ([0-9.]+)", done.stdout)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {done.stderr or done.stdout}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["simple", "extended"])
    args = parser.parse_args()

    from frontdoor_pg_support import start_gateway
    from gateway.pgserver import PostgresServer
    from gateway.seed import seed

    pgbench_bin = shutil.which("pgbench") or "pgbench"
    work = Path(tempfile.mkdtemp(prefix="wire-bench-"))
    script = work / "lookup.sql"
    script.write_text(SCRIPT.format(n=args.persons))
    with PostgresServer() as pg:
        dsn = pg.create_database("dmv")
        asyncio.run(seed(dsn, args.persons, 1))
        gen = start_gateway(dsn, work, GATEWAY_AUDIT_FSYNC_INTERVAL_MS="2")
        gw = next(gen)
        try:
            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for mode in args.modes:
                    direct = pgbench(pgbench_bin, "127.0.0.1", pg.port, pg.superuser, pg.password, mode,
                                     args.clients, args.seconds, script)
                    results.setdefault(("direct", mode), []).append(direct)
                    through = pgbench(pgbench_bin, gw.host, gw.port, "dmv_clerk", "dmv_clerk-demo-password", mode,
                                      args.clients, args.seconds, script, "-c gateway.purpose=service_delivery")
                    results.setdefault(("gateway", mode), []).append(through)
                    print(f"{mode:9s} direct {direct:9.0f} tps   gateway {through:9.0f} tps   "
                          f"ratio {through / direct:.2f}", flush=True)
        finally:
            gen.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
