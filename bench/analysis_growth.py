"""How the cost of a cold analysis grows with the input: finds quadratic steps.

Usage: python bench/analysis_growth.py DSN [--profile SHAPE N]   (a database seeded with `gateway seed`)

For each input shape (a long IN list, many OR terms, a wide select list, deep nesting, many
statements) it times a fresh analysis at sizes n, 2n, 4n, 8n and prints the time and the ratio to
the previous size: ~2 is linear, ~4 is quadratic. ``--profile SHAPE N`` prints the top functions of
one analysis (cProfile) to find the step that grows.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections.abc import Callable

import asyncpg

from gateway.plan.cache import Analyzer
from gateway.analyzer.classify import Classifier
from gateway.catalog.introspect import load_catalog
from gateway.identity.requesters import load_requesters
from gateway.policy.load import load_policy
from gateway.selftest.corpus import profile_named

SHAPES: dict[str, tuple[Callable[[int], str], int]] = {
    "in_list": (lambda n: "SELECT count(*) FROM dmv.persons WHERE person_id IN (" + ", ".join(str(i) for i in range(n)) + ")", 1000),
    "in_strings": (lambda n: "SELECT count(*) FROM dmv.vehicles WHERE plate IN (" + ", ".join(f"'P{i}'" for i in range(n)) + ")", 1000),
    "or_terms": (lambda n: "SELECT count(*) FROM dmv.persons WHERE " + " OR ".join(f"person_id = {i}" for i in range(n)), 250),
    "select_list": (lambda n: "SELECT " + ", ".join(f"zip AS z{i}" for i in range(n)) + " FROM dmv.persons WHERE person_id = 1", 100),
    "nesting": (lambda n: "SELECT zip FROM " + "(SELECT zip FROM " * n + "dmv.persons" + ") s" * n, 8),
    "statements": (lambda n: "; ".join(f"SELECT count(*) FROM dmv.persons WHERE person_id = {i}" for i in range(n)), 50),
    "values_rows": (lambda n: "SELECT * FROM (VALUES " + ", ".join(f"({i}, 'x{i}')" for i in range(n)) + ") v(a, b)", 500),
}


async def _catalog(dsn: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await load_catalog(conn)
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dsn")
    ap.add_argument("--profile", nargs=2, metavar=("SHAPE", "N"))
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    catalog = asyncio.run(_catalog(args.dsn))
    policy = load_policy("policies/colorado-dmv.yaml")
    profile = profile_named("clerk", policy, load_requesters("policies/requesters.example.yaml"))
    path = tuple(policy.search_path)

    def analyze(sql: str) -> str:
        analyzer = Analyzer(catalog, Classifier(catalog, policy, path), path)  # type: ignore[arg-type]
        analysis = analyzer.analyze(sql, profile)
        return analysis.decision.action if analysis.error is None else f"refused: {analysis.error.message[:60]}"

    if args.profile:
        shape, n = args.profile
        sql = SHAPES[shape][0](int(n))
        prof = cProfile.Profile()
        prof.enable()
        print(analyze(sql))
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        return
    for name, (make, base) in SHAPES.items():
        previous = None
        for step in range(args.steps):
            n = base * (2 ** step)
            sql = make(n)
            t0 = time.perf_counter()
            outcome = analyze(sql)
            took = time.perf_counter() - t0
            ratio = f"x{took / previous:4.1f}" if previous else "     "
            print(f"{name:12s} n={n:6d} {len(sql):8d} chars {took * 1000:9.1f} ms {ratio}  {outcome}", flush=True)
            previous = took


if __name__ == "__main__":
    main()
