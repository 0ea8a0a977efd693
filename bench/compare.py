"""The product benchmark: pgbench through the gateway against PostgreSQL directly and PgBouncer,
measured in one run, targets interleaved round by round; CPU per request of the gateway and PgBouncer;
every bar of issue 8, measured, in one table at the end.

    python bench/compare.py                       # the README's table: 1, 8 and 32 clients x 3 modes
    python bench/compare.py --clients 8 --modes simple --seconds 5 --rounds 1   # a quick look
    python bench/compare.py --seconds 2 --persons 5000                          # does it all work

Starts its own PostgreSQL (gateway.pgserver), seeds the reference data, starts PgBouncer (session
pooling; `apt-get install pgbouncer`) and two `gateway serve`: one with the durable request log (the
default) and one with ``GATEWAY_AUDIT_SYNC=false`` (records written without fdatasync: what durability
costs). Then runs the point-lookup script by person_id with -M simple, extended and prepared, each
cell on every target in turn. For each cell it reports the median tps over rounds per target, the
ratios gateway/direct and gateway/PgBouncer, the CPU each proxy spent per request (user + sys of all
its threads and child processes, from /proc/PID/stat, divided by the transactions pgbench reports),
PostgreSQL's CPU per query (all backends, finished ones included, direct vs through the gateway: the
backend's share of the gateway's cost), p50/p99 latency from pgbench's per-transaction log, and the
durable log's cost (1 - tps with fdatasync / tps without). A cached decision's µs comes from
``bench/decision.py`` (in-process, before the pgbench runs). The RSS bar is ``bench/memory.py``'s
(``--memory`` runs it at the end: 100,000 texts, several minutes).

Prints Markdown for the README: the table of cells, then the bars (measured, bar, met or not).
Runs unattended; the default (5 s x 1 round, 9 cells x 4 targets) takes about 4 minutes. Run it on
a quiet machine: client, proxies and server share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def _measured(run: object, pids: list[int], postmaster: int) -> tuple[Run, float | None, float | None]:
    """Run pgbench (``run()``); the CPU µs per transaction the processes ``pids`` spent meanwhile,
    and PostgreSQL's (every backend, finished ones included)."""
    pids = [p for pid in pids for p in child_pids(pid)]
    before, pg_before = sum(tree_cpu(pids)), server_cpu(postmaster)
    result: Run = run()  # type: ignore[operator]
    after, pg_after = sum(tree_cpu(pids)), server_cpu(postmaster)
    if not result.transactions:
        return result, None, None
    per = result.transactions
    return result, ((after - before) / per * 1e6 if pids else None), (pg_after - pg_before) / per * 1e6


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--persons", type=int, default=100_000, help="persons seeded (default 100000)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per pgbench run (default 5)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="client counts (default 1 8 32)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; medians are reported (default 1)")
    parser.add_argument("--modes", nargs="+", default=["simple", "extended", "prepared"],
                        choices=["simple", "extended", "prepared"])
    parser.add_argument("--no-logging-off", action="store_true",
                        help="skip the gateway with GATEWAY_AUDIT_SYNC=false (no figure for the durable log's cost)")
    parser.add_argument("--decision-requests", type=int, default=5000,
                        help="decisions per bench/decision.py run (best of 3; 0: skip; default 5000)")
    parser.add_argument("--memory", action="store_true",
                        help="run bench/memory.py at the end (100,000 texts, 200 idle clients: several minutes)")
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
    results: dict[tuple[str, str, int], list[tuple[Run, float | None, float | None]]] = {}
    env = dict(item.split("=", 1) for item in args.gateway_env)
    started = time.monotonic()
    decisions: dict[str, float] = {}
    memory: dict[str, object] | None = None
    with PostgresServer(settings={"max_connections": "400"}) as pg:
        dsn = pg.create_database("dmv")
        asyncio.run(seed(dsn, args.persons, 1))
        if args.decision_requests:
            decisions = decision_figures(dsn, work, args.decision_requests, args.modes)
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])  # type: ignore[operator]
        bouncer_dir = work / "pgbouncer"
        bouncer_dir.mkdir()
        bouncer, bouncer_port = start_pgbouncer(bouncer_dir, pg.port, pg.superuser, pg.password, "session")
        bouncer_pid = int((bouncer_dir / "pgbouncer.pid").read_text()) if (bouncer_dir / "pgbouncer.pid").exists() else bouncer.pid
        gens, gateways = [], {}
        try:
            specs: list[tuple[str, int, dict[str, str]]] = [(gateway_name(n, args.workers), n, {}) for n in args.workers]
            if not args.no_logging_off:  # the same gateway (the first worker count), records not fdatasynced
                specs.append((LOG_OFF, args.workers[0], {"GATEWAY_AUDIT_SYNC": "false"}))
            for name, n, extra in specs:  # one gateway each, each with its own log folder
                folder = work / name
                folder.mkdir()
                gens.append(start_gateway(dsn, folder, **{"GATEWAY_WORKERS": str(n), **env, **extra}))
                gateways[name] = next(gens[-1])
                wait_for_workers(folder / "gateway.log", n)
            purpose = "-c gateway.purpose=service_delivery"
            logins = {"direct": ("127.0.0.1", pg.port, pg.superuser, pg.password, ""),
                      "pgbouncer": ("127.0.0.1", bouncer_port, pg.superuser, pg.password, "")}
            pids = {"direct": [], "pgbouncer": [bouncer_pid]}
            for name, gw in gateways.items():
                logins[name] = (gw.host, gw.port, "dmv_clerk", "dmv_clerk-demo-password", purpose)
                pids[name] = [gw.process.pid]
            for mode in args.modes:  # warm-up, not counted: first plans, imports, connection pools
                for name, (host, port, user, password, options) in logins.items():
                    pgbench(host, port, user, password, mode, max(2, 2 * len(args.workers)), 1, script, options,
                            latencies=False)
            for round_no in range(args.rounds):
                for clients in args.clients:
                    for mode in args.modes:
                        for name, (host, port, user, password, options) in logins.items():
                            def run(host: str = host, port: int = port, user: str = user, password: str = password,
                                    options: str = options) -> Run:
                                return pgbench(host, port, user, password, mode, clients, args.seconds, script, options)
                            result, cpu, pg_cpu = _measured(run, pids[name], postmaster)
                            results.setdefault((name, mode, clients), []).append((result, cpu, pg_cpu))
                            print(f"round {round_no + 1} c={clients:<3} {mode:9s} {name:14s} {result.tps:9.0f} tps "
                                  f"cpu {_fmt(cpu, '.0f')} us/req postgres {_fmt(pg_cpu, '.0f')} us/req p50 {_fmt(result.p50_ms, '.3f')} ms "
                                  f"p99 {_fmt(result.p99_ms, '.3f')} ms", file=sys.stderr, flush=True)
        finally:
            for gen in gens:
                gen.close()
            bouncer.send_signal(signal.SIGTERM)
            bouncer.wait(10)
    pgbench_seconds = time.monotonic() - started
    if args.memory:
        memory = memory_figures()

    def med(name: str, mode: str, clients: int, pick: object) -> float | None:
        values = [pick(r) for r in results.get((name, mode, clients), [])]  # type: ignore[operator]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    main_gw = gateway_name(args.workers[0], args.workers)
    log_off = LOG_OFF in gateways
    print(f"\npgbench point lookups by person_id, {args.persons} persons, {args.seconds} s x {args.rounds} rounds, "
          "request log durable; medians. CPU: user+sys of all the proxy's threads and processes per transaction. "
          "p50/p99 in ms (direct / PgBouncer / gateway)."
          + (" Log off: the same gateway with GATEWAY_AUDIT_SYNC=false; log cost: 1 - tps / tps log off." if log_off
             else "") + f" The run took {pgbench_seconds:.0f} s.\n")
    several = len(args.workers) > 1
    print(("| clients | mode | workers " if several else "| clients | mode ")
          + "| direct tps | PgBouncer tps | gateway tps | gw/direct | gw/PgBouncer "
          "| gateway CPU µs/req | PgBouncer CPU µs/req | PostgreSQL CPU µs/query direct / via gateway | p50 ms | p99 ms |"
          + (" gateway tps log off | log cost |" if log_off else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if several else "") + ("---|---|" if log_off else ""))
    for clients in args.clients:
        for mode in args.modes:
            for n in args.workers:
                gname = gateway_name(n, args.workers)
                d, b, g = (med(x, mode, clients, lambda r: r[0].tps) for x in ("direct", "pgbouncer", gname))
                gcpu = med(gname, mode, clients, lambda r: r[1])
                bcpu = med("pgbouncer", mode, clients, lambda r: r[1])
                pg_cpus = " / ".join(_fmt(med(x, mode, clients, lambda r: r[2]), ".0f") for x in ("direct", gname))
                p50 = " / ".join(_fmt(med(x, mode, clients, lambda r: r[0].p50_ms), ".3f")
                                 for x in ("direct", "pgbouncer", gname))
                p99 = " / ".join(_fmt(med(x, mode, clients, lambda r: r[0].p99_ms), ".3f")
                                 for x in ("direct", "pgbouncer", gname))
                line = (f"| {clients} | {mode} | " + (f"{n} | " if several else "")
                        + f"{_fmt(d, '.0f')} | {_fmt(b, '.0f')} | {_fmt(g, '.0f')} | {_ratio(g, d)} | {_ratio(g, b)} "
                        f"| {_fmt(gcpu, '.0f')} | {_fmt(bcpu, '.0f')} | {pg_cpus} | {p50} | {p99} |")
                if log_off:
                    off = med(LOG_OFF, mode, clients, lambda r: r[0].tps)
                    line += (f" {off:.0f} | {1 - g / off:.0%} |" if off and g is not None and gname == main_gw
                             else " - | - |")
                print(line)

    print("\nThe bars of issue 8" + (f" ({main_gw})" if several else "") + ":\n")
    print("| bar | measured | bar | met |")
    print("|---|---|---|---|")
    for row in bars(args, med, main_gw, log_off, decisions, memory):
        print("| " + " | ".join(row) + " |")
    return 0


LOG_OFF = "gateway-log-off"


def bars(args: argparse.Namespace, med: Any, gname: str, log_off: bool, decisions: dict[str, float],
         memory: dict[str, object] | None) -> list[tuple[str, str, str, str]]:
    """(what, measured, bar, met) for every bar of issue 8 this run measured; a row saying how to
    measure the ones it did not."""
    rows: list[tuple[str, str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("yes" if ok else "**no**")

    busy = [c for c in args.clients if c >= 8] or args.clients
    ratios = []
    for clients in busy:
        for mode in args.modes:
            g, b = med(gname, mode, clients, lambda r: r[0].tps), med("pgbouncer", mode, clients, lambda r: r[0].tps)
            if g and b:
                ratios.append((g / b, f"{clients} {mode}"))
    if ratios:
        worst = min(ratios)
        rows.append((f"gateway/PgBouncer tps at {', '.join(map(str, busy))} clients, every mode (goal 1.0x)",
                     f"{worst[0]:.2f}x at worst ({worst[1]}; best {max(ratios)[0]:.2f}x)", "≥ 0.50x",
                     verdict(worst[0] >= 0.5)))
    cpu_clients = 8 if 8 in args.clients else busy[0]
    gcpu = med(gname, "simple", cpu_clients, lambda r: r[1])
    bcpu = med("pgbouncer", "simple", cpu_clients, lambda r: r[1])
    if gcpu is not None:
        rows.append((f"gateway CPU per request, {cpu_clients} clients, simple (all threads and processes, log on)",
                     f"{gcpu:.0f} µs (PgBouncer {_fmt(bcpu, '.0f')} µs)", "≤ 40 µs", verdict(gcpu <= 40)))
    else:
        rows.append(("gateway CPU per request, 8 clients, simple", "not measured (no simple in --modes)", "≤ 40 µs", "-"))
    if decisions:
        worst_mode = max(decisions, key=decisions.get)  # type: ignore[arg-type]
        rows.append(("a cached decision (bench/decision.py: plan on a hit, admit, record)",
                     f"{decisions[worst_mode]:.1f} µs at worst ({worst_mode}; "
                     + ", ".join(f"{m} {v:.1f}" for m, v in decisions.items()) + ")", "< 20 µs",
                     verdict(decisions[worst_mode] < 20)))
    else:
        rows.append(("a cached decision", "not measured (--decision-requests 0)", "< 20 µs", "-"))
    if log_off:
        costs = []
        for clients in busy:
            for mode in args.modes:
                g, off = med(gname, mode, clients, lambda r: r[0].tps), med(LOG_OFF, mode, clients, lambda r: r[0].tps)
                if g and off:
                    costs.append((1 - g / off, f"{clients} {mode}"))
        if costs:
            worst = max(costs)
            rows.append((f"durable logging's cost in tps against GATEWAY_AUDIT_SYNC=false, {', '.join(map(str, busy))} "
                         "clients, every mode", f"{worst[0]:.0%} at worst ({worst[1]}; least {min(costs)[0]:.0%})",
                         "< 15%", verdict(worst[0] < 0.15)))
    else:
        rows.append(("durable logging's cost", "not measured (--no-logging-off)", "< 15%", "-"))
    if 1 in args.clients:
        gaps = []
        for mode in args.modes:
            g, d = med(gname, mode, 1, lambda r: r[0].p50_ms), med("direct", mode, 1, lambda r: r[0].p50_ms)
            if g is not None and d is not None:
                gaps.append((g - d, mode, g, d))
        if gaps:
            gap = max(gaps)
            rows.append(("p50 latency at 1 client, gateway minus direct, every mode",
                         f"+{gap[0]:.3f} ms at worst ({gap[1]}: {gap[2]:.3f} vs {gap[3]:.3f} ms)",
                         "≤ 0.2 ms", verdict(gap[0] <= 0.2)))
    else:
        rows.append(("p50 latency at 1 client", "not measured (no 1 in --clients)", "≤ 0.2 ms over direct", "-"))
    if memory is not None and "serve_mb" in memory:
        rows.append(("RSS of the serving process after 100,000 distinct texts, 200 idle clients (bench/memory.py)",
                     f"{memory['serve_mb']:.1f} MB (peak {memory['peak_mb']:.1f}; all processes {memory['all_mb']:.1f})",
                     "< 200 MB", verdict(memory["serve_mb"] < 200 and memory["peak_mb"] < 200)))  # type: ignore[operator]
    else:
        rows.append(("RSS after 100,000 distinct texts, 200 idle clients", "not run here: `--memory`, or "
                     "`nice python bench/memory.py`" + (f" ({memory['error']})" if memory else ""), "< 200 MB", "-"))
    return rows


def decision_figures(dsn: str, work: Path, requests: int, modes: list[str]) -> dict[str, float]:
    """bench/decision.py's µs of CPU per cached decision, per mode, on this run's catalog."""
    from hotpath import fetch_catalog

    catalog = work / "catalog.pickle"
    catalog.write_bytes(pickle.dumps(asyncio.run(fetch_catalog(dsn))))
    done = subprocess.run([sys.executable, str(ROOT / "bench/decision.py"), "--requests", str(requests),
                           "--modes", *modes, "--catalog", str(catalog)],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    found = {m: float(v) for m, v in re.findall(r"^(\w+): ([0-9.]+) µs of CPU per decision", done.stdout, re.M)}
    if done.returncode != 0 or not found:
        print(f"bench/decision.py failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}", file=sys.stderr)
    else:
        print("decision: " + ", ".join(f"{m} {v:.1f} µs" for m, v in found.items()), file=sys.stderr, flush=True)
    return found


def memory_figures() -> dict[str, object]:
    """bench/memory.py's figures (its defaults: 100,000 texts, then 200 idle clients)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench/memory.py"), "--json"], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows = result["phases"]["idle_clients"]
    except (ValueError, IndexError, KeyError):
        return {"error": f"bench/memory.py failed ({done.returncode}): {(done.stderr or done.stdout)[-300:]}"}
    serve = [r for r in rows if r["role"] == "serve"][0]
    return {"serve_mb": serve["rss_kb"] / 1024, "peak_mb": serve["hwm_kb"] / 1024,
            "all_mb": sum(r["rss_kb"] for r in rows) / 1024}


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
