"""What durable request logging costs: pgbench point lookups through the gateway, with the request
log fsync'ed before each answer (the default) and with ``GATEWAY_AUDIT_SYNC=false`` (records written
but never fsync'ed: "logging off" for the ratio), interleaved.

    /tmp/venv/bin/python bench/audit_overhead.py --seconds 10 --clients 8 --rounds 2

Starts its own PostgreSQL and two ``gateway serve`` processes (one per setting, each with its own log
folder), seeds --persons, then runs every (mode, setting) pair in turn, --rounds times, and prints tps,
the durable/off ratio, and how many ``request`` records each log holds against the transactions pgbench
counted (one record per request, with or without fsync). ``--direct`` adds PostgreSQL without the
gateway as a reference. Run it on a quiet machine: client, gateway and server share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from pgbench_run import SCRIPT, run_pgbench  # noqa: E402

SETTINGS = {"durable": {}, "off": {"GATEWAY_AUDIT_SYNC": "false"}}
pgbench = run_pgbench


def count_requests(audit_dir: Path) -> int:
    total = 0
    for path in audit_dir.glob("requests*.jsonl"):
        with open(path, "rb") as fh:
            total += sum(1 for line in fh if b'"type":"request"' in line and line.endswith(b"\n"))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["extended", "simple"])
    parser.add_argument("--direct", action="store_true", help="also run pgbench against PostgreSQL directly")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    from frontdoor_pg_support import start_gateway

    from gateway.pgserver import PostgresServer
    from gateway.seed import seed

    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    script = work / "lookup.sql"
    script.write_text(SCRIPT.format(n=args.persons))
    options = "-c gateway.purpose=service_delivery"
    tps: dict[tuple[str, str], list[float]] = {}
    transactions: dict[str, int] = {name: 0 for name in SETTINGS}
    with PostgresServer() as pg:
        dsn = pg.create_database("dmv")
        asyncio.run(seed(dsn, args.persons, 1))
        gens, gws = {}, {}
        for name, env in SETTINGS.items():
            (work / name).mkdir()
            gens[name] = start_gateway(dsn, work / name, **env)
            gws[name] = next(gens[name])
        try:
            for rnd in range(1, args.rounds + 1):
                for mode in args.modes:
                    line = [f"round {rnd} {mode:8s}"]
                    if args.direct:
                        direct, _ = pgbench("127.0.0.1", pg.port, pg.superuser, pg.password, mode, args.clients,
                                            args.seconds, script)
                        tps.setdefault(("direct", mode), []).append(direct)
                        line.append(f"direct {direct:8.0f}")
                    for name, gw in gws.items():
                        value, count = pgbench(gw.host, gw.port, "dmv_clerk", "dmv_clerk-demo-password", mode,
                                               args.clients, args.seconds, script, options)
                        tps.setdefault((name, mode), []).append(value)
                        transactions[name] += count
                        line.append(f"{name} {value:8.0f}")
                    current = {name: tps[(name, mode)][-1] for name in SETTINGS}
                    line.append(f"ratio durable/off {current['durable'] / current['off']:.2f}")
                    print("   ".join(line), " tps", flush=True)
        finally:
            for gen in gens.values():
                gen.close()  # SIGTERM: each log is closed and flushed
    print(f"\nmean tps over {args.rounds} round(s), {args.clients} clients, {args.seconds} s each:")
    summary: dict[str, dict[str, float]] = {}
    for mode in args.modes:
        means = {name: statistics.mean(tps[(name, mode)]) for name in [*SETTINGS, *(["direct"] if args.direct else [])]}
        summary[mode] = {**means, "ratio": means["durable"] / means["off"]}
        extra = f"   direct {means['direct']:8.0f}" if args.direct else ""
        print(f"  {mode:8s} durable {means['durable']:8.0f}   off {means['off']:8.0f}   "
              f"ratio {summary[mode]['ratio']:.2f}{extra}")
    print("\nrequest records in each log vs transactions pgbench counted:")
    records = {}
    for name in SETTINGS:
        records[name] = count_requests(work / name)
        print(f"  {name:8s} {records[name]:9d} records   {transactions[name]:9d} transactions")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "records": records, "transactions": transactions,
                                         "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds},
                                        indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
