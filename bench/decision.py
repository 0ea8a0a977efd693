"""A cached decision, in-process: what the wire session calls per request before the record is
submitted, on a cache hit - the plan, ``admit`` (individuals bound, caps) and the request record.

    python bench/decision.py                       # µs of CPU per request, simple / extended / prepared
    python bench/decision.py --callgrind           # instructions per request under valgrind

``simple``: a Query text with a fresh literal each time (a skeleton hit); ``extended``: the unnamed
Parse of one parameterized text each time (an exact hit) with its Bind's parameter; ``prepared``: a
named statement planned once, then one Bind after another (the plan reused, :meth:`Gateway.rebind`).
The gateway, catalog and requester are those of ``bench/hotpath.py``.

Each mode calls what the wire session's steady state calls: with the compiled cached decisions
(``gw.hot``, gateway/plan/hit.py) ``hot.query`` (simple), ``hot.parse`` then ``hot.bind`` (extended: the
Parse's plan, then the Bind's), ``hot.bind`` (prepared); on a tree without them (``--gateway-calls``
forces these) ``admit(plan_hot(...))`` and ``admit(rebind(...))``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hotpath  # noqa: E402

MODES = ("simple", "extended", "prepared")


def run(mode: str, n: int, catalog: Any, gateway_calls: bool = False) -> float:
    """CPU seconds for ``n`` decisions of ``mode``."""
    with tempfile.TemporaryDirectory(prefix="gateway-decision-") as tmp:
        gw, ctx = hotpath.make_gateway(catalog, Path(tmp))
        sql = hotpath.SQL_PARAM
        params = ("4242",)
        texts = [hotpath.SQL.format(pid=1 + (i * 7919) % 100_000) for i in range(n + 50)]
        plan_hot, admit, record = gw.plan_hot, gw.admit, gw._request_record
        rebind = getattr(gw, "rebind", None)
        for text in texts[n:]:  # warm: the shape and skeleton are learned
            record(ctx, admit(ctx, plan_hot(ctx, text)), (), None)
        held = plan_hot(ctx, sql, (20,))
        record(ctx, admit(ctx, held, params), params, None)
        hot = None if gateway_calls else getattr(gw, "hot", None)
        t0 = time.process_time()
        if hot is not None:
            if mode == "simple":
                for text in texts[:n]:
                    record(ctx, hot.query(ctx, text), (), None)
            elif mode == "extended":
                for _ in range(n):
                    record(ctx, hot.bind(ctx, hot.parse(ctx, sql), params), params, None)
            else:
                for _ in range(n):
                    record(ctx, hot.bind(ctx, held, params), params, None)
        elif mode == "simple":
            for text in texts[:n]:
                record(ctx, admit(ctx, plan_hot(ctx, text)), (), None)
        elif mode == "extended":
            for _ in range(n):
                record(ctx, admit(ctx, plan_hot(ctx, sql, (20,)), params), params, None)
        else:
            for _ in range(n):
                plan = (rebind(ctx, held) if rebind is not None else None) or plan_hot(ctx, sql, (20,))
                record(ctx, admit(ctx, plan, params), params, None)
        return time.process_time() - t0


def callgrind(mode: str, n: int, catalog_path: Path, gateway_calls: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-decision-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
                               sys.executable, __file__, "--child", mode, str(n), "--catalog", str(catalog_path),
                               *(["--gateway-calls"] if gateway_calls else [])],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"valgrind failed: {done.stderr[-800:]}")
        found = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.M)
        assert found, "no instruction total in the callgrind output"
        return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--callgrind-requests", type=int, nargs=2, default=(500, 2500))
    parser.add_argument("--catalog", type=Path, default=hotpath.DEFAULT_CATALOG)
    parser.add_argument("--gateway-calls", action="store_true",
                        help="call the Gateway's methods (plan_hot, rebind, admit), not its compiled gw.hot")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    hotpath.quiet_logs()
    catalog = hotpath.load_or_fetch_catalog(args.catalog)
    if args.child:
        run(args.child[0], int(args.child[1]), catalog, args.gateway_calls)
        return 0
    for mode in args.modes:
        if args.callgrind:
            n1, n2 = args.callgrind_requests
            a, b = (callgrind(mode, n1, args.catalog, args.gateway_calls),
                    callgrind(mode, n2, args.catalog, args.gateway_calls))
            print(f"{mode}: {(b - a) / (n2 - n1):,.0f} instructions per decision (callgrind, N={n1}..{n2})")
        else:
            best = min(run(mode, args.requests, catalog, args.gateway_calls) for _ in range(args.repeat))
            print(f"{mode}: {best / args.requests * 1e6:.1f} µs of CPU per decision (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
