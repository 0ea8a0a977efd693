"""Analyzer cost per statement: a miss (parse + qualify + lineage + rewrite) vs a shape hit.

Usage: python bench/analyzer_speed.py DSN   (a database seeded with `gateway seed`)
"""

from __future__ import annotations

import asyncio
import sys
import time

import asyncpg

from gateway.plan.cache import Analyzer
from gateway.analyzer.classify import Classifier
from gateway.catalog.introspect import load_catalog
from gateway.identity.requesters import load_requesters
from gateway.policy.load import load_policy
from gateway.selftest.corpus import profile_named

QUERIES = {
    "point lookup": "SELECT first_name, last_name, immigration_status FROM dmv.persons p JOIN dmv.lawful_presence l USING (person_id) WHERE p.person_id = {}",
    "pgbench-like": "SELECT zip FROM dmv.persons WHERE person_id = {}",
}


async def main(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    catalog = await load_catalog(conn)
    await conn.close()
    policy = load_policy("policies/colorado-dmv.yaml")
    requesters = load_requesters("policies/requesters.example.yaml")
    profile = profile_named("clerk", policy, requesters)
    path = tuple(policy.search_path)
    for label, shape in QUERIES.items():
        n = 300
        t0 = time.perf_counter()
        for i in range(n):
            Analyzer(catalog, Classifier(catalog, policy, path), path).analyze(shape.format(i), profile)
        miss = (time.perf_counter() - t0) / n * 1e6
        analyzer = Analyzer(catalog, Classifier(catalog, policy, path), path)
        analyzer.analyze(shape.format(0), profile)
        n = 20000
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            analyzer.analyze(shape.format(i), profile)
        hit = (time.perf_counter() - t0) / n * 1e6
        print(f"{label:14s} miss {miss:8.0f} us   shape hit {hit:6.1f} us")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
