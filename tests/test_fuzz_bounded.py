"""Fuzzing for a bounded time: the startup/authentication path of a live gateway, and the analyzer on
grammar-shaped SQL (deep nesting, long lists, odd tokens). Whatever comes in, the answer is an
ErrorResponse or a refusal, never a crash or a hang; each case found becomes a regression case below
(``REGRESSIONS``)."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontdoor_pg_support import WireGateway, read_until_closed, wire_gw  # noqa: F401 - the fixture
from gateway import wire as w
from gateway.analyzer.limits import AnalysisLimits
from gateway.plan.fresh import plan_fresh

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])

# -- the startup and authentication path ---------------------------------------------------------
_param = st.tuples(st.sampled_from(["user", "database", "options", "application_name", "replication",
                                    "client_encoding", "_pq_.x", "gateway.purpose", "x"]),
                   st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=40))
_startup = st.builds(lambda params, minor: w.encode(w.StartupMessage(tuple(params), protocol_version=(3 << 16) | minor)),
                     st.lists(_param, max_size=6), st.sampled_from([0, 0, 0, 1, 2]))
_sasl = st.one_of(
    st.builds(lambda mech, data: w.encode(w.SASLInitialResponse(mech, data)),
              st.sampled_from(["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN", ""]), st.binary(max_size=200)),
    st.builds(lambda body: b"p" + struct.pack("!I", len(body) + 4) + body, st.binary(max_size=300)),
    st.binary(max_size=64),
    st.builds(lambda n: b"p" + struct.pack("!I", n), st.integers(0, 2**32 - 1)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(_startup, st.lists(_sasl, max_size=3))
def test_startup_and_auth_never_break_the_gateway(wire_gw: WireGateway, startup: bytes, then: list[bytes]) -> None:  # noqa: F811
    s = socket.create_connection((wire_gw.host, wire_gw.port), timeout=5)
    try:
        s.sendall(startup + b"".join(then))
        s.shutdown(socket.SHUT_WR)
        data = read_until_closed(s)
    finally:
        s.close()
    assert not data or data[:1] in (b"E", b"R", b"v", b"N"), data[:40]
    assert wire_gw.process.poll() is None


def test_the_gateway_still_logs_in_after_the_fuzzing(wire_gw: WireGateway) -> None:  # noqa: F811
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(wire_gw.dsn("dmv_clerk")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# -- the analyzer on grammar-shaped SQL ----------------------------------------------------------
_column = st.sampled_from(["zip", "person_id", "first_name", "place_of_birth", "x", "*", "p.zip", '"zip"'])
_literal = st.one_of(st.integers(-10**12, 10**12).map(str), st.text(max_size=12).map(lambda t: "'" + t.replace("'", "''") + "'"),
                     st.sampled_from(["NULL", "TRUE", "$1", "E'\\x41'", "$$a$$", "U&'d\\0061'", "1e400", "'x'::int"]))
_odd = st.sampled_from(["", ";", ";;", " /* c */ ", " -- c\n", "\x00", "\\", "$", "::", "((", "))", "[", "]", "'", '"',
                        "COLLATE \"C\"", "OPERATOR(pg_catalog.=)", "NOT NOT", "- -", "~", "||", "LATERAL", "ROWS FROM"])


@st.composite
def _sql(draw: st.DrawFn) -> str:
    depth = draw(st.integers(0, 40))
    items = draw(st.integers(1, 300))
    where = " OR ".join(f"{draw(_column)} = {draw(_literal)}" for _ in range(draw(st.integers(0, 30))))
    in_list = ", ".join(draw(_literal) for _ in range(items))
    inner = f"SELECT {draw(_column)} FROM dmv.persons p WHERE person_id IN ({in_list})" + (f" AND ({where})" if where else "")
    text = "SELECT zip FROM " + "(SELECT zip FROM " * depth + f"({inner}) q" + ") s" * depth
    cut = draw(st.integers(0, len(text)))
    return text[:cut] + draw(_odd) + text[cut:] if draw(st.booleans()) else text


REGRESSIONS = [
    "SELECT zip FROM " + "(SELECT zip FROM " * 8000 + "dmv.persons" + ") s" * 8000,  # the segfault (issue 12)
    "SELECT (" * 100000 + "1" + ")" * 100000,  # 1 MB... of parentheses (refused by depth, unparsed)
    "SELECT count(*) FROM dmv.persons WHERE person_id IN (" + ", ".join(str(i) for i in range(40000)) + ")",
    "SELECT " + "NOT " * 5000 + "true",
    "SELECT " + "CASE WHEN true THEN " * 3000 + "1" + " END" * 3000,
    "SELECT ARRAY" + "[" * 3000 + "1" + "]" * 3000,
    "SELECT " + "ARRAY[" * 30 + "1" + "]" * 30,  # exponential in sqlglot (found by atheris): limits.array_depth
]


@pytest.mark.parametrize("sql", REGRESSIONS, ids=["nest8000", "parens", "in40000", "not5000", "case3000", "array3000", "array30"])
def test_regressions_are_refused_or_planned(analysis_env, sql: str) -> None:  # type: ignore[no-untyped-def]
    fresh = plan_fresh(sql, analysis_env.profile("clerk"), analysis_env.analyzer.env, limits=AnalysisLimits())
    analysis = fresh.analysis
    assert analysis.error is not None or analysis.statements
    if analysis.error is not None:
        assert analysis.error.message.startswith("gateway:")


@FUZZ
@given(_sql())
def test_grammar_shaped_sql_is_refused_or_planned(analysis_env, sql: str) -> None:  # type: ignore[no-untyped-def]
    fresh = plan_fresh(sql, analysis_env.profile("clerk"), analysis_env.analyzer.env, limits=AnalysisLimits())
    analysis = fresh.analysis
    if analysis.error is None:
        assert analysis.statements, sql
        assert all(s.kind in ("select", "empty", "transaction", "set", "show", "gateway_set", "gateway_show", "noop")
                   for s in analysis.statements)
    else:
        assert analysis.error.message.startswith("gateway:"), analysis.error
