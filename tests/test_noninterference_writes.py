"""Noninterference for staff writes (SPEC 5): the same writes, as the same requester with the same
purpose, through two gateways in front of two databases that differ only in classified values, give
the same answers: command tags and row counts, RETURNING rows, errors, notices.

The databases are this module's own (the writes change them, identically). A table of the test's own,
``dmv.permits``, has a unique key over a status column whose stored values differ between the two:
without the gateway's constraint rule an INSERT would fail in one and succeed in the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.frontdoor_pg_support import WireGateway, start_gateway
from tests.writes_support import PERMITS_DDL, RESIDENCY_DDL, write_files

psycopg = pytest.importorskip("psycopg")

_REQUEST_ID = re.compile(r"\(request [^)]*\)|request [0-9a-f]+-\d+")

#: (sql, ok): ``ok`` says whether the write is allowed (both paths must be exercised)
CASES = [
    ("UPDATE persons SET city = 'Alamosa' WHERE person_id BETWEEN 1 AND 40 RETURNING *", True),
    ("UPDATE persons SET zip = '81101' WHERE city = 'Alamosa' RETURNING person_id, zip, country_of_citizenship", True),
    ("UPDATE persons SET email = lower(first_name) || '@example.org' WHERE person_id < 10", True),
    ("DELETE FROM vehicles WHERE vehicle_id IN (2, 3) RETURNING *", True),
    ("INSERT INTO vehicles (vehicle_id, owner_person_id, vin, plate, make, model, model_year) "
     "VALUES (800001, 1, 'VIN800001', 'NI-0001', 'Ford', 'Focus', 2015) RETURNING vehicle_id, plate", True),
    ("INSERT INTO vehicles (vehicle_id, owner_person_id, vin, plate, make, model, model_year) "
     "VALUES (800001, 1, 'VIN800001', 'NI-0001', 'Ford', 'Focus', 2015)", False),  # duplicate key: same error
    ("UPDATE persons SET city = 'Zzyzx' WHERE place_of_birth = 'Mexico'", False),
    ("UPDATE persons SET city = 'Zzyzx' WHERE country_of_citizenship <> 'US' AND person_id < 100", False),
    ("UPDATE persons SET city = 'Zzyzx' WHERE person_id IN (SELECT person_id FROM lawful_presence "
     "WHERE immigration_status = 'DACA')", False),
    ("UPDATE persons SET city = 'Zzyzx' WHERE person_id = 1 AND EXISTS (SELECT 1 FROM identity_documents d "
     "WHERE d.person_id = 1 AND d.document_type = 'FOREIGN_PASSPORT')", False),
    ("DELETE FROM vehicles WHERE owner_person_id IN (SELECT person_id FROM identity_documents "
     "WHERE issuing_country = 'MX')", False),
    ("UPDATE persons SET city = itin WHERE person_id = 3", False),
    ("UPDATE persons SET zip = place_of_birth::int::text WHERE person_id = 3", False),
    ("UPDATE persons SET place_of_birth = 'Denver' WHERE person_id = 4", False),
    ("UPDATE persons SET city = 'Zzyzx' WHERE person_id = 5 RETURNING length(place_of_birth)", False),
    ("INSERT INTO permits (permit_id, person_id) VALUES (100, 1)", False),  # unique (person_id, holder_country)
    ("UPDATE permits SET person_id = 2 WHERE permit_id = 1", False),
    ("UPDATE persons SET city = 'Zzyzx' WHERE person_id = 6 RETURNING place_of_birth", True),
    # a parenthesized column is named like the column (it came back unmasked before)
    ("UPDATE persons SET city = 'Zzyzx' WHERE person_id = 6 RETURNING (place_of_birth)", True),
    ("UPDATE persons AS p SET city = 'Zzyzx' WHERE person_id = 6 RETURNING (p.itin) AS i, (p.country_of_citizenship)", True),
    ("UPDATE persons SET city = 'Zzyzx' WHERE person_id = 6 RETURNING ((place_of_birth))", False),
    # 24-74-104 by indirection: a status column filled by its DEFAULT, or computed from a column set
    ("INSERT INTO residency (residency_id, person_id, reference) VALUES (10, 1, 'R10')", False),
    ("UPDATE residency SET reference = 'R1b' WHERE residency_id = 1", False),
    ("UPDATE residency SET person_id = 2 WHERE residency_id = 1 RETURNING residency_id, person_id", True),
]

#: writes that set a status column without naming it (its DEFAULT, a generated column): 24-74-104
IMPLICIT_STATUS = [
    "INSERT INTO residency (residency_id, person_id, reference) VALUES (11, 1, 'R11')",
    "UPDATE residency SET reference = 'R1c' WHERE residency_id = 1",
    "INSERT INTO residency (residency_id, person_id) VALUES (12, 1)",
]


def _direct(dsn: str, *sql: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for statement in sql:
                await conn.execute(statement)
        finally:
            await conn.close()
    asyncio.run(go())


@pytest.fixture(scope="module")
def twins(pg_server: Any) -> tuple[str, str]:
    from tests.conftest import _seeded

    a = _seeded(pg_server, "dmv_writes_twin_a", 300, 31)
    b = _seeded(pg_server, "dmv_writes_twin_b", 300, 31, classified_seed=4242, variant="alt")
    _direct(a, PERMITS_DDL, "INSERT INTO dmv.permits VALUES (1, 1, 'US'), (2, 3, 'US')", RESIDENCY_DDL,
            "INSERT INTO dmv.residency (residency_id, person_id, reference) VALUES (1, 1, 'R1')")
    _direct(b, PERMITS_DDL, "INSERT INTO dmv.permits VALUES (1, 1, 'MX'), (2, 3, 'CA')", RESIDENCY_DDL,
            "INSERT INTO dmv.residency (residency_id, person_id, reference, birth_country) VALUES (1, 1, 'R1', 'MX')")
    return a, b


@pytest.fixture(scope="module")
def gateways(twins: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WireGateway, WireGateway]]:
    with contextlib.ExitStack() as stack:
        gws = []
        for i, dsn in enumerate(twins):
            folder = tmp_path_factory.mktemp(f"writes-twin-{i}")
            policy, requesters = write_files(folder, permits=True)
            gen = start_gateway(dsn, folder, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters))
            gws.append(next(gen))
            stack.callback(lambda g=gen: next(g, None))
        yield gws[0], gws[1]


def _observe(conn: Any, sql: str, simple: bool) -> tuple[Any, ...]:
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(_REQUEST_ID.sub("", d.message_primary or "")))
    cursor_class = psycopg.ClientCursor if simple else psycopg.Cursor
    try:
        with cursor_class(conn) as cur:
            try:
                cur.execute(sql)
                columns = tuple((c.name, c.type_code) for c in cur.description or ())
                rows = tuple(sorted((tuple(r) for r in cur.fetchall()), key=repr)) if cur.description else ()
                result: tuple[Any, ...] = ("ok", columns, rows, cur.rowcount, cur.statusmessage)
            except psycopg.Error as exc:
                result = ("error", exc.diag.sqlstate, _REQUEST_ID.sub("", exc.diag.message_primary or ""))
    finally:
        conn._notice_handlers.clear()
    return (*result, tuple(notices))


def _connect(gw: WireGateway) -> Any:
    return psycopg.connect(host=gw.host, port=gw.port, user="dmv_clerk", password="dmv_clerk-demo-password",
                           dbname="dmv", options="-c gateway.purpose=service_delivery", autocommit=True,
                           sslmode="disable")


def test_the_permits_key_would_leak_without_the_rule(twins: tuple[str, str]) -> None:
    """The case has teeth: run directly, the same INSERT fails in one database and not in the other."""
    async def attempt(dsn: str) -> str:
        conn = await asyncpg.connect(dsn)
        try:
            tr = conn.transaction()
            await tr.start()
            try:
                return await conn.execute("INSERT INTO dmv.permits (permit_id, person_id) VALUES (100, 1)")
            except asyncpg.UniqueViolationError:
                return "unique violation"
            finally:
                await tr.rollback()
        finally:
            await conn.close()
    assert [asyncio.run(attempt(d)) for d in twins] == ["unique violation", "INSERT 0 1"]


@pytest.mark.parametrize("simple", [True, False], ids=["simple", "extended"])
def test_write_answers_do_not_depend_on_classified_values(gateways: tuple[WireGateway, WireGateway], simple: bool) -> None:
    gw_a, gw_b = gateways
    seen = {"ok": 0, "error": 0}
    with _connect(gw_a) as conn_a, _connect(gw_b) as conn_b:
        for sql, ok in CASES:
            if not simple and "INSERT INTO vehicles" in sql and ok:
                sql = sql.replace("800001", "800002").replace("NI-0001", "NI-0002")
            a = _observe(conn_a, sql, simple)
            b = _observe(conn_b, sql, simple)
            assert a == b, f"LEAK through a write: {sql!r}\nA: {str(a)[:600]}\nB: {str(b)[:600]}"
            assert (a[0] == "ok") == ok, f"{sql!r}: {a}"
            seen[a[0]] += 1
    assert seen["ok"] >= 5 and seen["error"] >= 10, seen



def _http(gw: WireGateway, sql: str) -> tuple[Any, ...]:
    import httpx

    answer = httpx.post(f"http://127.0.0.1:{gw.http_port}/v1/query", json={"sql": sql, "purpose": "service_delivery"},
                        headers={"Authorization": "Bearer dmv_clerk-demo-token"}, timeout=30)
    body = answer.json()
    body.pop("request_id", None)
    if "error" in body:
        body["error"].pop("request_id", None)
        body["error"]["message"] = _REQUEST_ID.sub("", body["error"]["message"])
    if isinstance(body.get("rows"), list):
        body["rows"] = sorted(body["rows"], key=repr)
    return answer.status_code, body


def test_http_write_answers_do_not_depend_on_classified_values(gateways: tuple[WireGateway, WireGateway]) -> None:
    gw_a, gw_b = gateways
    statuses = set()
    for sql, ok in CASES:
        sql = sql.replace("800001", "800003").replace("NI-0001", "NI-0003")
        a, b = _http(gw_a, sql), _http(gw_b, sql)
        assert a == b, f"LEAK through an HTTP write: {sql!r}\nA: {str(a)[:600]}\nB: {str(b)[:600]}"
        statuses.add(a[0])
    assert {200, 403, 400} <= statuses, statuses


def test_status_columns_are_not_written_by_indirection(gateways: tuple[WireGateway, WireGateway]) -> None:
    """An INSERT fills the columns it leaves out with their defaults, and a stored generated column is
    computed from the columns set: a status column written that way needs required_by_law too."""
    gw_a, _ = gateways
    with _connect(gw_a) as conn:
        for sql in IMPLICIT_STATUS:
            answer = _observe(conn, sql, False)
            assert answer[:2] == ("error", "42501") and "24-74-104" in answer[2], (sql, answer)
        rows = conn.execute("SELECT count(*) FROM residency").fetchone()
        assert rows == (1,)  # nothing was inserted
