"""Decision fixture files and the shipped adversarial corpus, decided and run on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from gateway.selftest.corpus import CORPUS, Case, load_cases
from gateway.selftest.run import check_decision, run_on_database

FIXTURES = Path(__file__).parent / "fixtures" / "analyzer"
CASES: list[Case] = load_cases(FIXTURES / "decisions.sql") + load_cases(FIXTURES / "naming.sql") + load_cases(CORPUS)
PARAMS = [pytest.param(case, name, id=f"{case.label}-{name}") for case in CASES for name in case.profiles]


def test_corpus_covers_every_bypass_class() -> None:
    classes = {c.meta["class"].split()[0] for c in load_cases(CORPUS)}
    assert classes == {str(n) for n in range(1, 19)}
    per_class = {n: sum(1 for c in load_cases(CORPUS) if c.meta["class"].split()[0] == n) for n in classes}
    assert min(per_class.values()) >= 3, per_class


@pytest.mark.parametrize(("case", "profile"), PARAMS)
def test_case(case: Case, profile: str, analysis_env, dmv_dsn: str) -> None:  # type: ignore[no-untyped-def]
    outcome, to_run = check_decision(case, profile, analysis_env.profile(profile), analysis_env.analyzer)
    assert outcome.ok, outcome.detail
    if to_run:
        async def go() -> str | None:
            conn = await asyncpg.connect(dmv_dsn)
            try:
                for sql in to_run:
                    if "$1" in sql:
                        continue  # parameterized: run by the noninterference suite with values
                    problem = await run_on_database(conn, sql, case.redacted or ())
                    if problem:
                        return problem
                return None
            finally:
                await conn.close()

        assert asyncio.run(go()) is None
