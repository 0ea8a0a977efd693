"""Noninterference end to end through the PostgreSQL wire protocol: two gateways, one in front of
each twin database (same non-classified data, classified values drawn afresh), real psycopg clients
with the simple and the extended protocol. Everything a requester sees must be identical: column
names and types, rows, row counts, errors (SQLSTATE and message) and notices, request ids aside.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from frontdoor_pg_support import WireGateway, start_gateway
from gateway.selftest.corpus import CORPUS, PROFILES, load_cases

FIXTURES = Path(__file__).parent / "fixtures" / "analyzer"
CASES = load_cases(CORPUS) + load_cases(FIXTURES / "decisions.sql")
RESTRICTED = ("clerk", "clerk0", "ice")
_REQUEST_ID = re.compile(r"\(request [^)]*\)|request [0-9a-f]+-\d+")


@pytest.fixture(scope="module")
def twin_gateways(twin_dsns: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WireGateway, WireGateway]]:
    with contextlib.ExitStack() as stack:
        gws = []
        for i, dsn in enumerate(twin_dsns):
            gen = start_gateway(dsn, tmp_path_factory.mktemp(f"twin-{i}"))
            gws.append(next(gen))
            stack.callback(lambda g=gen: next(g, None))
        yield gws[0], gws[1]


def _connect(gw: WireGateway, profile: str) -> psycopg.Connection:
    user, claim = PROFILES[profile]
    options = " ".join(f"-c gateway.{k}={v}" for k, v in claim.as_dict().items() if v)
    return psycopg.connect(host=gw.host, port=gw.port, user=user, password=f"{user}-demo-password",
                           dbname="dmv", options=options, autocommit=True, sslmode="disable")


def _observe(conn: psycopg.Connection, sql: str, simple: bool) -> tuple:  # type: ignore[type-arg]
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(_REQUEST_ID.sub("", d.message_primary or "")))
    cursor_class = psycopg.ClientCursor if simple else psycopg.Cursor
    try:
        with cursor_class(conn) as cur:
            try:
                cur.execute(sql.replace("$1", "5") if simple else sql, None if simple or "$1" not in sql else (5,))
                columns = tuple((c.name, c.type_code) for c in cur.description or ())
                rows = tuple(sorted((tuple(r) for r in cur.fetchall()), key=repr)) if cur.description else ()
                result: tuple = ("ok", columns, rows, cur.rowcount)  # type: ignore[type-arg]
            except psycopg.Error as exc:
                diag = exc.diag
                result = ("error", diag.sqlstate, _REQUEST_ID.sub("", diag.message_primary or ""))
    finally:
        conn._notice_handlers.clear()  # type: ignore[attr-defined]
    return (*result, tuple(notices))


@pytest.mark.parametrize("simple", [True, False], ids=["simple", "extended"])
@pytest.mark.parametrize("profile", RESTRICTED)
def test_wire_answers_do_not_depend_on_classified_values(twin_gateways, profile: str, simple: bool) -> None:  # type: ignore[no-untyped-def]
    gw_a, gw_b = twin_gateways
    with _connect(gw_a, profile) as conn_a, _connect(gw_b, profile) as conn_b:
        outcomes = {"ok": 0, "error": 0}
        for case in CASES:
            a = _observe(conn_a, case.sql, simple)
            b = _observe(conn_b, case.sql, simple)
            assert a == b, f"LEAK through the wire for {profile}: {case.label} {case.sql!r}\nA: {str(a)[:500]}\nB: {str(b)[:500]}"
            outcomes[a[0]] += 1
    assert outcomes["ok"] >= 3 and outcomes["error"] > 50, outcomes  # both paths exercised
