"""The shape cache must give exactly what a fresh analysis gives, for any literal values."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.plan.cache import Analyzer

SHAPES = [
    "SELECT first_name, immigration_status FROM dmv.persons p JOIN dmv.lawful_presence l USING (person_id) WHERE p.last_name = {s} AND p.person_id > {n} LIMIT {n}",
    "SELECT {s} AS label, count(*) FROM dmv.vehicles WHERE make = {s} AND model_year >= {n}",
    "SELECT person_id FROM dmv.persons WHERE zip IN ({s}, {s}) ORDER BY person_id OFFSET {n}",
    "SELECT license_number, credential_type FROM dmv.licenses WHERE license_number = {s}",
]

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


def _fresh(env, sql: str, profile: str):  # type: ignore[no-untyped-def]
    return Analyzer(env.catalog, env.analyzer.classifier, env.analyzer.search_path).analyze(sql, env.profile(profile))


def _render(shape: str, strings: list[str], numbers: list[int]) -> str:
    s_iter, n_iter = iter(strings), iter(numbers)
    out = shape
    while "{s}" in out or "{n}" in out:
        i_s, i_n = out.find("{s}"), out.find("{n}")
        if i_s != -1 and (i_n == -1 or i_s < i_n):
            out = out.replace("{s}", "'" + next(s_iter).replace("'", "''") + "'", 1)
        else:
            out = out.replace("{n}", str(next(n_iter)), 1)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.sampled_from(SHAPES), first=st.lists(texts, min_size=3, max_size=3),
       second=st.lists(texts, min_size=3, max_size=3), numbers=st.lists(st.integers(0, 10**9), min_size=3, max_size=3))
def test_shape_hit_equals_fresh_analysis(analysis_env, shape: str, first: list[str], second: list[str], numbers: list[int]) -> None:  # type: ignore[no-untyped-def]
    warm = _render(shape, first, [1, 2, 3])
    probe = _render(shape, second, numbers)
    analysis_env.analyze(warm, "clerk")  # fills the shape cache
    cached = analysis_env.analyze(probe, "clerk")
    fresh = _fresh(analysis_env, probe, "clerk")
    assert [s.sql for s in cached.statements] == [s.sql for s in fresh.statements]
    assert cached.decision == fresh.decision


def test_plain_literals_hit_the_shape_cache(analysis_env) -> None:  # type: ignore[no-untyped-def]
    for shape in SHAPES:
        analysis_env.analyze(_render(shape, ["a", "b", "c"], [1, 2, 3]), "clerk")
        probe = analysis_env.analyze(_render(shape, ["x y", "O'Brien", "\\"], [40, 50, 60]), "clerk")
        assert probe.cache in ("shape", "skeleton"), shape  # the skeleton: a shape hit without the tokenizer
        assert [s.sql for s in probe.statements] == [s.sql for s in _fresh(analysis_env, _render(shape, ["x y", "O'Brien", "\\"], [40, 50, 60]), "clerk").statements]


def test_shape_cache_is_per_profile(analysis_env) -> None:  # type: ignore[no-untyped-def]
    sql = "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 7"
    assert analysis_env.analyze(sql, "cbi").decision.action == "allow"
    assert analysis_env.analyze(sql, "clerk").decision.action == "redact"
    assert analysis_env.analyze(sql.replace("7", "8"), "ice").error is not None


def test_literal_escapes_are_requoted(analysis_env) -> None:  # type: ignore[no-untyped-def]
    analysis_env.analyze("SELECT first_name FROM dmv.persons WHERE last_name = 'a'", "clerk")
    hit = analysis_env.analyze("SELECT first_name FROM dmv.persons WHERE last_name = 'x'' OR ''1''=''1'", "clerk")
    assert hit.cache in ("shape", "skeleton")
    assert "'x'' OR ''1''=''1'" in hit.statements[0].sql


def test_gateway_settings_are_never_cached(analysis_env) -> None:  # type: ignore[no-untyped-def]
    a = analysis_env.analyze("SET gateway.purpose = 'service_delivery'", "clerk")
    b = analysis_env.analyze("SET gateway.purpose = 'court_order'", "clerk")
    assert a.statements[0].setting == ("gateway.purpose", "service_delivery")
    assert b.statements[0].setting == ("gateway.purpose", "court_order")


def test_output_names_follow_postgres(analysis_env) -> None:  # type: ignore[no-untyped-def]
    out = analysis_env.analyze("SELECT now(), count(*) FROM dmv.vehicles", "clerk").statements[0].sql
    assert 'AS "now"' in out


def test_utility_statements(analysis_env) -> None:  # type: ignore[no-untyped-def]
    kinds = {
        "BEGIN": "transaction", "BEGIN ISOLATION LEVEL SERIALIZABLE": "transaction", "COMMIT": "transaction",
        "ROLLBACK": "transaction", "SAVEPOINT s1": "transaction", "RELEASE SAVEPOINT s1": "transaction",
        "SHOW gateway.purpose": "gateway_show", "SHOW search_path": "gateway_show", "SHOW TimeZone": "show",
        "SET application_name = 'x'": "set", "SET client_encoding = 'UTF8'": "noop", "RESET gateway.case_number": "gateway_set",
        "RESET ALL": "set", "DISCARD ALL": "set", "SHOW TRANSACTION ISOLATION LEVEL": "show",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE": "set",
        "SET LOCAL gateway.purpose = 'court_order'": "gateway_set",
        "": "empty", ";": "empty",
    }
    for sql, kind in kinds.items():
        analysis = analysis_env.analyze(sql, "clerk")
        assert analysis.error is None, (sql, analysis.error)
        assert analysis.statements[0].kind == kind, sql
    for sql in ("BEGIN READ WRITE", "SET TRANSACTION READ WRITE", "SET search_path = public", "SET role = postgres",
                "SET SESSION AUTHORIZATION postgres", "DISCARD SOMETHING", "SET default_transaction_read_only = off", "SET gateway.purpose = 'x'; SELECT 1"):
        assert analysis_env.analyze(sql, "clerk").error is not None, sql


def test_caches_are_bounded_by_bytes(analysis_env) -> None:  # type: ignore[no-untyped-def]
    """150 distinct 35 KB shapes grew the gateway by 238 MB: the caches keep within their byte budget."""
    from gateway.plan.cache import Analyzer

    budget = 2 * 1024 * 1024
    analyzer = Analyzer(analysis_env.catalog, analysis_env.analyzer.classifier, analysis_env.analyzer.search_path,
                        cache_bytes=budget, inline_chars=1 << 20)
    profile = analysis_env.profile("clerk")
    for n in range(20):
        cols = ", ".join(f"zip AS z{n}_{i}" for i in range(300))  # ~5 KB, 2,400 tokens, its own shape
        analyzer.analyze(f"SELECT {cols} FROM dmv.persons WHERE person_id = 1", profile)
        state = analyzer.cache_state
        assert state["shape_bytes"] <= budget // 2 and state["exact_bytes"] <= budget // 2
    assert 0 < analyzer.cache_state["shapes"] < 20  # the oldest went first, the newest are kept
    last = ", ".join(f"zip AS z19_{i}" for i in range(300))
    assert analyzer.analyze(f"SELECT {last} FROM dmv.persons WHERE person_id = 2", profile).cache == "shape"
