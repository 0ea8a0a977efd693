"""Noninterference: for a requester without the right purpose, the answer must not change when the
classified values in the database change.

Two real databases share every non-classified value; their classified values are drawn afresh with
another seed and another distribution (``twin_dsns``). Every statement of the adversarial corpus, of
the decision fixtures, and of a hypothesis-generated family over the reference schema is analyzed as
each profile without the right purpose, and the rewritten SQL is run on both databases: rows, column
names and types, errors and notices must be identical. The other half, utility: legitimate
statements give the database's own answer, with redacted columns NULL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import AnalysisEnv, _load_catalog
from gateway.selftest.corpus import CORPUS, load_cases
from noninterference import Capture, capture

FIXTURES = Path(__file__).parent / "fixtures" / "analyzer"
RESTRICTED = ("clerk", "clerk0", "ice")
STATS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def twins(twin_dsns: tuple[str, str]):  # type: ignore[no-untyped-def]
    env = AnalysisEnv(_load_catalog(twin_dsns[0]))
    loop = asyncio.new_event_loop()
    conns = [loop.run_until_complete(asyncpg.connect(dsn)) for dsn in twin_dsns]
    yield env, loop, conns
    for conn in conns:
        loop.run_until_complete(conn.close())
    loop.close()


def _args_for(sql: str) -> tuple[object, ...]:
    return (5,) if "$1" in sql else ()


def check_noninterference(twins, sql: str, profile: str, ordered: bool = False) -> str:  # type: ignore[no-untyped-def]
    """Assert both databases answer alike; returns the decision."""
    env, loop, (conn_a, conn_b) = twins
    analysis = env.analyze(sql, profile)
    if analysis.error is not None:
        STATS["deny"] += 1
        return "deny"
    STATS[analysis.decision.action] += 1
    for statement in analysis.statements:
        if statement.kind != "select":
            continue
        args = _args_for(statement.sql)
        a: Capture = loop.run_until_complete(capture(conn_a, statement.sql, args))
        b: Capture = loop.run_until_complete(capture(conn_b, statement.sql, args))
        if not ordered:
            a, b = a.unordered(), b.unordered()
        assert a == b, f"LEAK for {profile}: {sql!r}\nrewritten: {statement.sql}\nA: {repr(a)[:600]}\nB: {repr(b)[:600]}"
        STATS["executed"] += 1
    return analysis.decision.action


CASES = load_cases(CORPUS) + load_cases(FIXTURES / "decisions.sql")


@pytest.mark.parametrize("profile", RESTRICTED)
def test_corpus_and_fixtures_do_not_interfere(twins, profile: str) -> None:  # type: ignore[no-untyped-def]
    decisions = Counter(check_noninterference(twins, case.sql, profile) for case in CASES)
    assert decisions["deny"] > 0 and (decisions["allow"] + decisions["redact"]) > 0, decisions


def test_classified_values_really_differ(twins) -> None:  # type: ignore[no-untyped-def]
    """The suite would prove nothing if the twins agreed: the exception purpose sees the difference."""
    env, loop, (conn_a, conn_b) = twins
    # outside the agency, the individuals are named (SPEC 9)
    sql = "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id IN (%s) ORDER BY person_id" % (
        ", ".join(str(i) for i in range(1, 26)))
    analysis = env.analyze(sql, "cbi")
    assert analysis.error is None and analysis.decision.action == "allow"
    a = loop.run_until_complete(capture(conn_a, analysis.statements[0].sql))
    b = loop.run_until_complete(capture(conn_b, analysis.statements[0].sql))
    assert a.rows != b.rows
    clerk = env.analyze(sql, "clerk")
    assert clerk.decision.action == "redact"
    a = loop.run_until_complete(capture(conn_a, clerk.statements[0].sql))
    b = loop.run_until_complete(capture(conn_b, clerk.statements[0].sql))
    assert a == b and all(row[1] is None for row in a.rows)


# -- hypothesis: generated statements over the reference schema ----------------------------------

TABLES = {
    "persons": ["person_id", "first_name", "last_name", "date_of_birth", "sex", "place_of_birth",
                "country_of_citizenship", "ssn", "itin", "email", "county", "zip"],
    "licenses": ["license_id", "person_id", "license_number", "license_class", "credential_type",
                 "federal_limits_apply", "limited_term", "issue_date", "expiry_date", "status"],
    "identity_documents": ["document_id", "person_id", "document_type", "issuing_country", "document_number", "verified_on"],
    "lawful_presence": ["person_id", "immigration_status", "verification_method", "save_case_number", "verified_on"],
    "vehicles": ["vehicle_id", "owner_person_id", "make", "model", "model_year"],
    "violations": ["violation_id", "person_id", "offense_code", "county", "fine_cents", "disposition"],
    "driver_summary": ["person_id", "full_name", "license_number", "credential_type", "license_status", "expiry_date"],
}
KEY = {"vehicles": "owner_person_id"}
TEXT_LITERALS = ["'A%'", "'DACA'", "'Denver'", "'CO_RCSA'", "'US_CITIZEN'", "'M'", "''"]


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, bool]:
    t1 = draw(st.sampled_from(sorted(TABLES)))
    tables = [("a", t1)]
    if draw(st.booleans()):
        t2 = draw(st.sampled_from(sorted(TABLES)))
        tables.append(("b", t2))
    cols = [(alias, c) for alias, t in tables for c in TABLES[t]]

    def col() -> str:
        alias, c = draw(st.sampled_from(cols))
        return f"{alias}.{c}"

    def expr() -> str:
        kind = draw(st.integers(0, 6))
        c = col()
        return [c, c, f"lower({c}::text)", f"coalesce({c}::text, 'none')", f"length({c}::text)",
                f"{c} IS NULL", f"CASE WHEN {c}::text LIKE 'A%' THEN 1 ELSE 0 END"][kind]

    aggregate = draw(st.booleans())
    items = [expr() for _ in range(draw(st.integers(1, 3)))]
    select = items + (["count(*)"] if aggregate else [])
    sql = f"SELECT {', '.join(select)} FROM dmv.{t1} a"
    if len(tables) == 2:
        sql += f" JOIN dmv.{tables[1][1]} b ON b.{KEY.get(tables[1][1], TABLES[tables[1][1]][0] if tables[1][1] != 'vehicles' else 'owner_person_id')} = a.{KEY.get(t1, 'person_id') if 'person_id' in TABLES[t1] or t1 == 'vehicles' else TABLES[t1][0]}"
    if draw(st.booleans()):
        c = col()
        pred = draw(st.sampled_from([f"{c} IS NOT NULL", f"{c}::text LIKE {draw(st.sampled_from(TEXT_LITERALS))}",
                                     f"{c}::text > 'M'", f"length({c}::text) > 3"]))
        sql += f" WHERE {pred}"
    if aggregate:
        sql += " GROUP BY " + ", ".join(str(i + 1) for i in range(len(items)))
    ordered = draw(st.booleans())
    if ordered:
        sql += " ORDER BY " + ", ".join(str(i + 1) for i in range(len(select)))
    if draw(st.booleans()):
        sql += f" LIMIT {draw(st.integers(0, 50))}"
    return sql, ordered


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stmt=statements(), profile=st.sampled_from(RESTRICTED))
def test_generated_statements_do_not_interfere(twins, stmt: tuple[str, bool], profile: str) -> None:  # type: ignore[no-untyped-def]
    sql, _ordered = stmt
    check_noninterference(twins, sql, profile)


def test_report_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Print what the suite checked (visible with -s; the closing note quotes it)."""
    with capsys.disabled():
        print(f"\nnoninterference: {dict(STATS)}")
    assert STATS["executed"] > 100, STATS


# -- utility: legitimate statements give the database's own answer --------------------------------

UTILITY = [
    ("clerk", "SELECT person_id, first_name, last_name FROM dmv.persons ORDER BY person_id LIMIT 50"),
    ("clerk", "SELECT county, count(*) AS n FROM dmv.persons GROUP BY county ORDER BY n DESC, county"),
    ("clerk", "SELECT p.first_name, l.license_number FROM dmv.persons p JOIN dmv.licenses l ON l.person_id = p.person_id ORDER BY l.license_id LIMIT 40"),
    ("clerk", "SELECT * FROM dmv.lawful_presence ORDER BY person_id LIMIT 30"),
    ("clerk", "SELECT * FROM dmv.driver_summary ORDER BY person_id, license_number LIMIT 30"),
    ("clerk", "SELECT make, model, count(*) FROM dmv.vehicles GROUP BY make, model ORDER BY 3 DESC, 1, 2 LIMIT 10"),
    ("clerk0", "SELECT v.offense_code, sum(v.fine_cents) FROM dmv.violations v GROUP BY 1 ORDER BY 1"),
    ("ice", "SELECT count(*) FROM dmv.persons"),
    ("ice", "SELECT make, count(*) FROM dmv.vehicles GROUP BY make ORDER BY 2 DESC, 1"),
    ("cbi", "SELECT p.person_id, lp.immigration_status FROM dmv.persons p JOIN dmv.lawful_presence lp USING (person_id) WHERE lp.immigration_status <> 'US_CITIZEN' AND p.person_id IN (%s) ORDER BY 1" % ", ".join(str(i) for i in range(1, 26))),
    ("clerk", "SELECT now() IS NOT NULL AS t, upper('x'), 1 + 1"),
]


@pytest.mark.parametrize(("profile", "sql"), UTILITY)
def test_utility_matches_the_database(twins, profile: str, sql: str) -> None:  # type: ignore[no-untyped-def]
    env, loop, (conn_a, _) = twins
    analysis = env.analyze(sql, profile)
    assert analysis.error is None, analysis.error
    through = loop.run_until_complete(capture(conn_a, analysis.statements[0].sql))
    assert through.error is None, through.error

    async def direct() -> Capture:
        async with conn_a.transaction(readonly=True):
            stmt = await conn_a.prepare(sql)
            return Capture(tuple((a.name, a.type.oid) for a in stmt.get_attributes()),
                           tuple(tuple(r) for r in await stmt.fetch()), None, ())

    expected = loop.run_until_complete(direct())
    names = [c[0] for c in expected.columns]
    nulled = {names.index(c) for c in analysis.redacted}
    expected_rows = tuple(tuple(None if i in nulled else v for i, v in enumerate(row)) for row in expected.rows)
    assert through.columns == expected.columns
    assert through.rows == expected_rows


# -- the narrowed mask-at-read projection (only the referenced columns of a masked relation) ---------

NARROWED = [
    "SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = 5",
    "SELECT first_name FROM dmv.persons WHERE place_of_birth IS NULL OR country_of_citizenship = 'US' ORDER BY 1 LIMIT 20",
    "SELECT a.first_name FROM dmv.persons a JOIN dmv.persons b ON a.person_id = b.person_id + 1 WHERE b.zip > '8' ORDER BY 1 LIMIT 20",
    "SELECT first_name FROM dmv.persons p WHERE EXISTS (SELECT 1 FROM dmv.lawful_presence l WHERE l.person_id = p.person_id AND l.immigration_status = 'X') ORDER BY 1 LIMIT 20",
    "SELECT x.first_name FROM (SELECT first_name, zip, itin FROM dmv.persons) x WHERE x.zip > '8' AND x.itin IS NULL ORDER BY 1 LIMIT 20",
    "SELECT county, count(*) FROM dmv.persons WHERE itin LIKE '9%' GROUP BY county ORDER BY 1",
]
WHOLE = [  # the column list is part of the meaning: every column stays
    "SELECT * FROM dmv.persons WHERE person_id = 5",
    "SELECT first_name FROM dmv.persons JOIN dmv.lawful_presence USING (person_id) WHERE person_id < 20 ORDER BY 1",
    "SELECT first_name FROM dmv.persons NATURAL JOIN dmv.lawful_presence WHERE person_id < 20 ORDER BY 1",
]


def _projected(sql: str, relation: str = '"dmv"."persons"') -> list[int]:
    """How many columns each derived table over ``relation`` lists in rewritten ``sql``."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="postgres")
    return [len(sub.this.expressions) for sub in tree.find_all(exp.Subquery)
            if isinstance(sub.this, exp.Select) and sub.this.args.get("from_") is not None
            and sub.this.args["from_"].this.sql(dialect="postgres") == relation]


@pytest.mark.parametrize("sql", NARROWED)
@pytest.mark.parametrize("profile", RESTRICTED)
def test_a_narrowed_projection_does_not_interfere(twins, profile: str, sql: str) -> None:  # type: ignore[no-untyped-def]
    env = twins[0]
    analysis = env.analyze(sql, profile)
    if analysis.error is None and profile == "clerk":
        total = len(next(r for r in env.catalog.relations.values() if r.qualified == "dmv.persons").columns)
        assert all(0 < n < total for n in _projected(analysis.statements[0].sql)), analysis.statements[0].sql
    check_noninterference(twins, sql, profile)


@pytest.mark.parametrize("sql", WHOLE)
def test_star_and_implicit_joins_keep_every_column(twins, sql: str) -> None:  # type: ignore[no-untyped-def]
    env = twins[0]
    analysis = env.analyze(sql, "clerk")
    assert analysis.error is None, analysis.error
    total = len(next(r for r in env.catalog.relations.values() if r.qualified == "dmv.persons").columns)
    assert set(_projected(analysis.statements[0].sql)) == {total}
    check_noninterference(twins, sql, "clerk")


@pytest.mark.parametrize("sql", [
    NARROWED[0], NARROWED[2],
    "SELECT first_name, place_of_birth FROM dmv.persons ORDER BY person_id LIMIT 20",
    "SELECT x.first_name, x.zip FROM (SELECT first_name, zip, person_id FROM dmv.persons) x WHERE x.zip > '8' ORDER BY x.person_id LIMIT 20",
])
def test_a_narrowed_projection_answers_like_the_database(twins, sql: str) -> None:  # type: ignore[no-untyped-def]
    test_utility_matches_the_database(twins, "clerk", sql)
