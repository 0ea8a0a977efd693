"""The skeleton cache (a shape hit without the tokenizer) gives what the tokenizer path gives: the
same statements, rewritten SQL, individuals and literal slots, and the same hashed received SQL; texts
it cannot vouch for (comments, quoted identifiers, dollar signs, odd literals) go the tokenizer way."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.audit.literals import LiteralHasher
from gateway.plan.cache import Analyzer

SHAPES = [
    "SELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = {n}",
    "SELECT first_name FROM dmv.persons WHERE first_name = '{s}' AND last_name = '{s}' AND date_of_birth = '1990-02-03'",
    "SELECT ssn FROM dmv.persons WHERE first_name = '{s}' AND last_name = '{s}' AND date_of_birth = '{d}'",
    "select count(*) from dmv.persons where person_id in ({n}, {n}, {n})",
    "SELECT {n}::numeric(10,2), '{s}', interval '1 day' FROM dmv.vehicles",
    "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id IN ({n}, {n})",
    "BEGIN; SELECT '{s}' AS x; COMMIT",
    "SELECT * FROM dmv.persons WHERE person_id = {n} LIMIT 10",
    "SELECT plate FROM dmv.vehicles WHERE plate = '{s}'",
]
VALUES = [(1, "a", "2001-01-01"), (22, "it''s", "1971-12-30"), (333, "h:00 -- not a comment", "1990-02-03"),
          (4.5, "", "2020-02-29"), (70000, "Zoë /* no */", "1999-09-09")]
NOT_PLAIN = [
    "SELECT first_name FROM dmv.persons WHERE person_id = 5 -- five",
    "SELECT first_name FROM dmv.persons /* c */ WHERE person_id = 5",
    'SELECT "first_name" FROM dmv.persons WHERE person_id = 5',
    "SELECT first_name FROM dmv.persons WHERE first_name = E'a\\\\b'",
    "SELECT first_name FROM dmv.persons WHERE first_name = $$x$$",
    "SELECT first_name FROM dmv.persons WHERE person_id = 1e3",
    "SELECT first_name FROM dmv.persons WHERE person_id = .5",
]


def _texts(shape: str) -> list[str]:
    return [shape.format(n=n, s=s, d=d) for n, s, d in VALUES]


def _same(a: Any, b: Any) -> None:
    assert a.error == b.error and a.decision == b.decision
    assert a.statements == b.statements
    for x, y in zip(a.statements, b.statements):
        assert (x.sql, x.parts, x.slots, x.individuals) == (y.sql, y.parts, y.slots, y.individuals)


def _fresh_analyzer(analysis_env: Any) -> Analyzer:
    return Analyzer(analysis_env.catalog, analysis_env.analyzer.classifier, analysis_env.analyzer.search_path)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_skeleton_hit_is_the_shape_hit(analysis_env: Any, shape: str) -> None:
    profile = analysis_env.profile("cbi")
    warm, cold = _fresh_analyzer(analysis_env), _fresh_analyzer(analysis_env)
    hasher = LiteralHasher(b"k" * 32)
    seen = []
    for sql in _texts(shape):
        got = warm.analyze(sql, profile)
        seen.append(got.cache)
        want = cold.fresh(sql, profile).analysis  # no cache at all
        _same(got, want)
        if got.literals is not None:
            pieces, values = got.literals
            spliced = pieces[0] + "".join(f"'{hasher.hash_literal(v)}'{p}" for v, p in zip(values, pieces[1:]))
            assert spliced == hasher.hash_sql(sql)
    if "BEGIN" not in shape:  # a text with a comment marker (even inside a string) is left to the tokenizer
        plain = [not any(mark in sql for mark in ("--", "/*")) for sql in _texts(shape)]
        assert seen[:2] == ["miss", "shape"], seen
        assert seen[2:] == ["skeleton" if p else "shape" for p in plain[2:]], seen


@pytest.mark.parametrize("sql", NOT_PLAIN)
def test_texts_the_skeleton_cannot_vouch_for_take_the_tokenizer(analysis_env: Any, sql: str) -> None:
    profile = analysis_env.profile("cbi")
    analyzer = _fresh_analyzer(analysis_env)
    for _ in range(3):
        got = analyzer.analyze(sql, profile)
        assert got.cache != "skeleton"
    assert analyzer.cache_state["skeletons"] == 0


def test_a_literal_kind_is_part_of_the_skeleton(analysis_env: Any) -> None:
    profile = analysis_env.profile("cbi")
    analyzer = _fresh_analyzer(analysis_env)
    for n in (1, 2, 3):
        analyzer.analyze(f"SELECT first_name FROM dmv.persons WHERE person_id = {n}", profile)
    quoted = analyzer.analyze("SELECT first_name FROM dmv.persons WHERE person_id = '4'", profile)
    assert quoted.cache != "skeleton"
    _same(quoted, _fresh_analyzer(analysis_env).fresh("SELECT first_name FROM dmv.persons WHERE person_id = '4'",
                                                       profile).analysis)


def test_a_fixed_literal_is_checked(analysis_env: Any) -> None:
    """A literal the plan depends on (not a slot) must match: another value is another plan."""
    profile = analysis_env.profile("cbi")
    analyzer, cold = _fresh_analyzer(analysis_env), _fresh_analyzer(analysis_env)
    for limit in (10, 10, 10, 11, 3):
        sql = f"SELECT first_name FROM dmv.persons WHERE person_id = 7 LIMIT {limit}"
        _same(analyzer.analyze(sql, profile), cold.fresh(sql, profile).analysis)


def test_skeletons_evicted_leave_their_shape_entry(analysis_env: Any) -> None:
    """A shape entry lists the skeletons that lead to it; one evicted from the (bounded) skeleton cache
    stayed in that list, so one requester sending a popular shape in ever new spellings (here: spaces)
    grew the entry without bound (each key holds its text, up to 4 kB). The lists hold no more keys
    than the skeleton cache does."""
    profile = analysis_env.profile("cbi")
    analyzer = Analyzer(analysis_env.catalog, analysis_env.analyzer.classifier, analysis_env.analyzer.search_path,
                        cache_size=20)
    for n in range(400):
        sql = "SELECT zip FROM dmv.persons WHERE person_id = 7" + " " * n
        assert analyzer.analyze(sql, profile).error is None
    assert analyzer.cache_state["skeletons"] <= 20
    listed = [key for entry in analyzer._shapes.values() for key in entry.skeletons]
    assert len(listed) <= 20, f"{len(listed)} skeleton keys kept for {analyzer.cache_state['skeletons']} skeletons"
    assert set(listed) <= set(analyzer._skeletons)
    # a skeleton still answers after all that
    assert analyzer.cached("SELECT zip FROM dmv.persons WHERE person_id = 8" + " " * 399, profile).cache == "skeleton"
