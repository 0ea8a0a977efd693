"""``gateway self-test``: the shipped adversarial corpus against a live database."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from gateway.commands._common import CONFIG_ERRORS, add_policy_args, connect_and_load, fail, load_policy_files

HELP = "run the adversarial corpus (every known bypass class) against a live database"
DESCRIPTION = (
    "Runs the gateway's adversarial corpus (gateway/selftest/bypasses.sql: several cases for every "
    "bypass class reported against masking proxies) through the analyzer with the given policy, and "
    "runs every allowed rewrite on the live database, checking that redacted columns come back NULL. "
    "Exits 1 on any failure."
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_policy_args(parser)
    parser.add_argument("--corpus", type=Path, default=None, help="another case file to run instead")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every case, not only failures")


def run(args: argparse.Namespace) -> int:
    if not args.dsn:
        return fail("self-test", "no database given: use --dsn or set GATEWAY_BACKEND_DSN")
    try:
        policy, requesters = load_policy_files(args.policy, args.requesters)
    except CONFIG_ERRORS as exc:
        return fail("self-test", str(exc))
    try:
        return asyncio.run(_run(args, policy, requesters))
    except OSError as exc:
        return fail("self-test", f"cannot reach the database: {exc}")


async def _run(args: argparse.Namespace, policy, requesters) -> int:  # type: ignore[no-untyped-def]
    from gateway.plan.cache import Analyzer
    from gateway.analyzer.classify import Classifier
    from gateway.selftest.corpus import CORPUS, load_cases, profile_named
    from gateway.selftest.run import check_decision, run_on_database

    cases = load_cases(args.corpus or CORPUS)
    conn, catalog = await connect_and_load(args.dsn)
    search_path = tuple(policy.search_path)
    analyzer = Analyzer(catalog, Classifier(catalog, policy, search_path), search_path)
    failures = 0
    total = 0
    classes: dict[str, int] = {}
    try:
        for case in cases:
            classes[case.meta.get("class", "?")] = classes.get(case.meta.get("class", "?"), 0) + 1
            for name in case.profiles:
                total += 1
                outcome, to_run = check_decision(case, name, profile_named(name, policy, requesters), analyzer)
                problem = None if outcome.ok else outcome.detail
                if problem is None:
                    for sql in to_run:
                        problem = await run_on_database(conn, sql, case.redacted or ())
                        if problem:
                            break
                if problem:
                    failures += 1
                    print(f"FAIL {case.label} [{name}] {case.sql[:80]!r}: {problem}")
                elif args.verbose:
                    print(f"ok   {case.label} [{name}] {outcome.decision}: {case.sql[:70]!r}")
    finally:
        await conn.close()
    print(f"{total - failures} passed, {failures} failed ({len(cases)} cases over {len(classes)} bypass classes)")
    return 1 if failures else 0
