"""The product benchmark: pgbench through the gateway against PostgreSQL directly and PgBouncer,
measured in one run, targets interleaved round by round; CPU per request of the gateway and PgBouncer.

    python bench/compare.py                       # 1, 8 and 32 clients; simple, extended, prepared
    python bench/compare.py --clients 8 --modes simple --seconds 5 --rounds 1   # a quick look

Starts its own PostgreSQL (gateway.pgserver), seeds the reference data, starts PgBouncer (session
pooling; `apt-get install pgbouncer`) and `gateway serve` (durable request log on), then runs the
point-lookup script by person_id with -M simple, extended and prepared. For each cell it reports the
median tps over rounds per target, the ratios gateway/direct and gateway/PgBouncer, the CPU each
proxy process spent per request (user + sys of all its threads, from /proc/PID/stat, divided by the
transactions pgbench reports), PostgreSQL's CPU per query (all backends, finished ones included,
direct vs through the gateway: the backend's share of the gateway's cost) and p50/p99 latency from pgbench's per-transaction log. Prints a
Markdown table for the README at the end. Runs unattended (about rounds x cells x 3 x seconds).
Run it on a quiet machine: client, proxies and server share the cores.
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
sys.path.insert(0, str(ROOT))

from pgbench_run import SCRIPT, Run, child_pids, pgbench, server_cpu, tree_cpu  # noqa: E402


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


def _measured(run: object, pids: list[int], postmaster: int) -> tuple[Run, float | None, float]:
    """Run pgbench (``run()``); the CPU µs per transaction the processes ``pids`` spent meanwhile,
    and PostgreSQL's (every backend, finished ones included)."""
    pids = [p for pid in pids for p in child_pids(pid)]
    before, pg_before = sum(tree_cpu(pids)), server_cpu(postmaster)
    result: Run = run()  # type: ignore[operator]
    after, pg_after = sum(tree_cpu(pids)), server_cpu(postmaster)
    per = max(1, result.transactions)
    return result, ((after - before) / per * 1e6 if pids else None), (pg_after - pg_before) / per * 1e6


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--persons", type=int, default=100_000, help="persons seeded (default 100000)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per pgbench run (default 10)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="client counts (default 1 8 32)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; medians are reported (default 2)")
    parser.add_argument("--modes", nargs="+", default=["simple", "extended", "prepared"],
                        choices=["simple", "extended", "prepared"])
    parser.add_argument("--no-audit-sync", action="store_true",
                        help="request records written without fdatasync (to see what durability costs)")
    parser.add_argument("--gateway-env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="extra environment for gateway serve (e.g. GATEWAY_PURE_PYTHON=1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], metavar="N",
                        help="gateway serve --workers N, one gateway per count, measured side by side "
                             "(default 1; e.g. --workers 1 2)")
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
    results: dict[tuple[str, str, int], list[tuple[Run, float | None, float]]] = {}
    env = dict(item.split("=", 1) for item in args.gateway_env)
    if args.no_audit_sync:
        env["GATEWAY_AUDIT_SYNC"] = "false"
    with PostgresServer(settings={"max_connections": "300"}) as pg:
        dsn = pg.create_database("dmv")
        asyncio.run(seed(dsn, args.persons, 1))
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])  # type: ignore[operator]
        bouncer_dir = work / "pgbouncer"
        bouncer_dir.mkdir()
        bouncer, bouncer_port = start_pgbouncer(bouncer_dir, pg.port, pg.superuser, pg.password, "session")
        bouncer_pid = int((bouncer_dir / "pgbouncer.pid").read_text()) if (bouncer_dir / "pgbouncer.pid").exists() else bouncer.pid
        gens, gateways = [], {}
        try:
            for n in args.workers:  # one gateway per worker count, each with its own log folder
                folder = work / f"gateway-w{n}"
                folder.mkdir()
                gens.append(start_gateway(dsn, folder, **{"GATEWAY_WORKERS": str(n), **env}))
                gateways[gateway_name(n, args.workers)] = next(gens[-1])
                wait_for_workers(folder / "gateway.log", n)
            purpose = "-c gateway.purpose=service_delivery"
            targets = {
                "direct": (lambda mode, c: pgbench("127.0.0.1", pg.port, pg.superuser, pg.password, mode, c, args.seconds, script), []),
                "pgbouncer": (lambda mode, c: pgbench("127.0.0.1", bouncer_port, pg.superuser, pg.password, mode, c,
                                                      args.seconds, script), [bouncer_pid]),
            }
            for name, gw in gateways.items():
                targets[name] = (lambda mode, c, gw=gw: pgbench(gw.host, gw.port, "dmv_clerk", "dmv_clerk-demo-password",
                                                               mode, c, args.seconds, script, purpose), [gw.process.pid])
            for mode in args.modes:  # warm-up, not counted: first plans, imports, connection pools
                for name, (run, pids) in targets.items():
                    gw = gateways.get(name)
                    pgbench(*(("127.0.0.1", pg.port, pg.superuser, pg.password) if name == "direct" else
                              ("127.0.0.1", bouncer_port, pg.superuser, pg.password) if name == "pgbouncer" else
                              (gw.host, gw.port, "dmv_clerk", "dmv_clerk-demo-password")),
                            mode, max(2, 2 * len(args.workers)), 1, script, purpose if gw else "", latencies=False)
            for round_no in range(args.rounds):
                for clients in args.clients:
                    for mode in args.modes:
                        for name, (run, pids) in targets.items():
                            result, cpu, pg_cpu = _measured(lambda: run(mode, clients), pids, postmaster)
                            results.setdefault((name, mode, clients), []).append((result, cpu, pg_cpu))
                            print(f"round {round_no + 1} c={clients:<3} {mode:9s} {name:12s} {result.tps:9.0f} tps "
                                  f"cpu {_fmt(cpu, '.0f')} us/req postgres {pg_cpu:.0f} us/req p50 {_fmt(result.p50_ms, '.3f')} ms "
                                  f"p99 {_fmt(result.p99_ms, '.3f')} ms", file=sys.stderr, flush=True)
        finally:
            for gen in gens:
                gen.close()
            bouncer.send_signal(signal.SIGTERM)
            bouncer.wait(10)

    def med(name: str, mode: str, clients: int, pick: object) -> float | None:
        values = [pick(r) for r in results[(name, mode, clients)]]  # type: ignore[operator]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    print(f"\npgbench point lookups by person_id, {args.persons} persons, {args.seconds} s x {args.rounds} rounds, "
          f"request log {'NOT fsynced' if args.no_audit_sync else 'durable'}; medians. CPU: user+sys of the process "
          "per transaction. p50/p99 in ms (direct / PgBouncer / gateway).\n")
    several = len(args.workers) > 1
    print(("| clients | mode | workers " if several else "| clients | mode ")
          + "| direct tps | PgBouncer tps | gateway tps | gw/direct | gw/PgBouncer "
          "| gateway CPU µs/req | PgBouncer CPU µs/req | PostgreSQL CPU µs/query direct / via gateway | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if several else ""))
    for clients in args.clients:
        for mode in args.modes:
            for n in args.workers:
                gname = gateway_name(n, args.workers)
                d, b, g = (med(x, mode, clients, lambda r: r[0].tps) for x in ("direct", "pgbouncer", gname))
                gcpu = med(gname, mode, clients, lambda r: r[1])
                bcpu = med("pgbouncer", mode, clients, lambda r: r[1])
                pg_cpu = " / ".join(_fmt(med(x, mode, clients, lambda r: r[2]), ".0f") for x in ("direct", gname))
                p50 = " / ".join(_fmt(med(x, mode, clients, lambda r: r[0].p50_ms), ".3f")
                                 for x in ("direct", "pgbouncer", gname))
                p99 = " / ".join(_fmt(med(x, mode, clients, lambda r: r[0].p99_ms), ".3f")
                                 for x in ("direct", "pgbouncer", gname))
                assert d and b and g
                print(f"| {clients} | {mode} | " + (f"{n} | " if several else "")
                      + f"{d:.0f} | {b:.0f} | {g:.0f} | {g / d:.2f} | {g / b:.2f} "
                      f"| {_fmt(gcpu, '.0f')} | {_fmt(bcpu, '.0f')} | {pg_cpu} | {p50} | {p99} |")
    return 0


def wait_for_workers(log: Path, n: int, timeout: float = 180.0) -> None:
    """With --workers N the port accepts at once (the supervisor holds it): wait until every worker
    says it is serving, so that no measured run starts against a worker still loading."""
    if n < 2:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        if log.exists() and log.read_text(errors="replace").count(") serving; request log chain") >= n:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the {n} workers did not all start; see {log}")


def gateway_name(workers: int, counts: list[int]) -> str:
    """The gateway target's name: ``gateway`` alone, ``gateway-wN`` when several worker counts run."""
    return "gateway" if len(counts) == 1 else f"gateway-w{workers}"


if __name__ == "__main__":
    raise SystemExit(main())
