"""``gateway check-policy``: the policy against the live schema, both ways."""

from __future__ import annotations

import argparse
import asyncio

from gateway.commands._common import CONFIG_ERRORS, add_policy_args, connect_and_load, fail, load_policy_files

HELP = "validate the policy against the law and the live schema (uncovered columns, entries naming nothing)"
DESCRIPTION = (
    "Checks the policy and the requesters file against the law (SB21-131): nothing readable for civil "
    "immigration enforcement or by an immigration agency, every exception with its justification, "
    "court orders only court-issued, certifications current, staff write grants only to the agency's own "
    "staff, a write of a status column (24-74-104 C.R.S.) only under required_by_law. Then compares the policy with the live "
    "database (skipped without --dsn): every table, view and column in the policy's schemas "
    "that the policy does not classify (the gateway treats those as 'unclassified' and withholds them), "
    "every policy entry that names no live table or column, and the classification the gateway derives "
    "for each view from its definition, and that each write grant names a base table and its columns. Exits 1 when anything is uncovered or dangling."
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_policy_args(parser)
    parser.add_argument("--quiet", action="store_true", help="print problems only")


def law_report(policy, requesters, *, quiet: bool = False) -> int:  # type: ignore[no-untyped-def]
    """Print the law check of ``policy`` (and ``requesters``); the number of problems."""
    from gateway.policy.lawcheck import law_problems

    result = law_problems(policy, requesters)
    if not quiet:
        print(f"law: policy {policy.source}" + (f" and requesters {requesters.source}" if requesters else ""))
    for line in result.warnings:
        print(f"WARNING: {line}")
    for line in result.problems:
        print(f"PROBLEM: {line}")
    return len(result.problems)


def run(args: argparse.Namespace) -> int:
    try:
        policy, requesters = load_policy_files(args.policy, args.requesters)
    except CONFIG_ERRORS as exc:
        return fail("check-policy", str(exc))
    unlawful = law_report(policy, requesters, quiet=args.quiet)
    if not args.dsn:
        print(f"{unlawful} problem(s) against the law; schema not compared (no --dsn or GATEWAY_BACKEND_DSN)")
        return 1 if unlawful else 0
    try:
        return max(asyncio.run(_check(args, policy)), 1 if unlawful else 0)
    except OSError as exc:
        return fail("check-policy", f"cannot reach the database: {exc}")
    except Exception as exc:  # noqa: BLE001 - asyncpg errors: one clear line, no traceback
        return fail("check-policy", f"{type(exc).__name__}: {exc}")


async def _check(args: argparse.Namespace, policy) -> int:  # type: ignore[no-untyped-def]
    from gateway.analyzer.classify import Classifier
    from gateway.policy.types import UNCLASSIFIED, ColumnRef

    conn, catalog = await connect_and_load(args.dsn)
    await conn.close()
    schemas = set(policy.search_path) | {s for s, _ in policy.covered_relations()}
    classifier = Classifier(catalog, policy, tuple(policy.search_path))
    problems: list[str] = []
    notes: list[str] = []
    for (schema, name), rel in sorted(catalog.relations.items()):
        if schema not in schemas:
            continue
        if rel.kind in ("view", "matview"):
            columns, rows, note = classifier.view(rel)
            tagged = ", ".join(f"{c}={'/'.join(sorted(t)) or '-'}" for c, t in columns.items())
            notes.append(f"view {schema}.{name}: {tagged}" + (f"; rows tagged {sorted(rows)} ({note})" if rows else ""))
            if UNCLASSIFIED in rows:
                problems.append(f"view {schema}.{name} cannot be classified ({note}); it is withheld from everyone")
            continue
        if (schema, name) not in policy.covered_relations():
            problems.append(f"table {schema}.{name} is not covered by the policy (all its columns are unclassified)")
            continue
        for col in rel.columns:
            tags = classifier.column_tags(ColumnRef(schema, name, col.name))
            if UNCLASSIFIED in tags:
                problems.append(f"column {schema}.{name}.{col.name} is not covered by the policy")
    for schema, name in sorted(policy.covered_relations()):
        rel = catalog.relation(schema, name)
        if rel is None:
            problems.append(f"policy entry {schema}.{name} names no table in the database")
            continue
        live = {c.name for c in rel.columns}
        for col in policy.listed_columns(schema, name):
            if col not in live:
                problems.append(f"policy entry {schema}.{name}.{col} names no column in the database")
    if policy.file.writes:
        from gateway.policy.writes import grant_schema_problems

        problems.extend(grant_schema_problems(policy.file.writes, catalog.relation))
    if not args.quiet:
        print(f"policy {policy.source} (sha256 {policy.digest[:12]}) against {len(catalog.relations)} relations")
        for line in notes:
            print(f"  {line}")
    for line in problems:
        print(f"PROBLEM: {line}")
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0
