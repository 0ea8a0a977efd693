"""Run a case corpus against an analyzer and, optionally, a live database.

For each case and profile: the decision must be the expected one (and the reason and redacted
columns when given); an allowed statement must run on the database, and every redacted column must
come back NULL in every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.plan.cache import Analyzer
from gateway.policy.types import Profile
from gateway.selftest.corpus import Case


@dataclass(frozen=True)
class Outcome:
    case: Case
    profile: str
    ok: bool
    decision: str
    detail: str


def check_decision(case: Case, profile_name: str, profile: Profile, analyzer: Analyzer) -> tuple[Outcome, list[str]]:
    """Check one case's decision; returns the outcome and the SQL to run when it is allowed."""
    analysis = analyzer.analyze(case.sql, profile)
    decision = analysis.decision.action if analysis.error is None else "deny"
    message = analysis.error.message if analysis.error else analysis.decision.reason
    problems: list[str] = []
    if decision != case.expect:
        problems.append(f"expected {case.expect}, got {decision}: {message}")
    reason = case.meta.get("reason")
    if reason and reason.lower() not in message.lower():
        problems.append(f"reason should mention {reason!r}: {message}")
    if case.redacted is not None and decision == "redact" and tuple(analysis.redacted) != case.redacted:
        problems.append(f"redacted {analysis.redacted}, expected {case.redacted}")
    to_run = [s.sql for s in analysis.statements if s.kind == "select"] if analysis.error is None else []
    return Outcome(case, profile_name, not problems, decision, "; ".join(problems) or message), to_run


async def run_on_database(conn: Any, sql: str, redacted: tuple[str, ...]) -> str | None:
    """Run ``sql`` read-only; returns a problem description or None."""
    try:
        async with conn.transaction(readonly=True):
            await conn.execute("SET LOCAL search_path = pg_catalog")
            await conn.execute("SET LOCAL statement_timeout = '20s'")
            rows = await conn.fetch(sql)
    except Exception as exc:  # noqa: BLE001 - any database error is a finding to report
        return f"the rewritten statement failed on the database: {exc}"
    for row in rows:
        for name in redacted:
            if name in row.keys() and row[name] is not None:
                return f"redacted column {name} carried a value"
    return None
