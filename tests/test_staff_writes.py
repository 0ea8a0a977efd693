"""Staff writes the policy allows, through a real gateway (wire: psql, asyncpg, psycopg; HTTP).

The shipped policy keeps writes off; these tests run a copy with grants enabled
(``tests/writes_support.py``) against a database of their own (the writes change it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.compliance_support import records
from tests.frontdoor_pg_support import WireGateway, start_gateway
from tests.writes_support import write_files

CITATION = "C.R.S.24-74-104"  # no space: PGOPTIONS splits at spaces


@pytest.fixture(scope="module")
def writes_dsn(pg_server: Any) -> str:
    from tests.conftest import _seeded

    return _seeded(pg_server, "dmv_writes", 400, 23)


@pytest.fixture(scope="module")
def gw(writes_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    folder = tmp_path_factory.mktemp("writes")
    policy, requesters = write_files(folder)
    yield from start_gateway(writes_dsn, folder, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters))


def direct(dsn: str, sql: str, *args: Any) -> list[Any]:
    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()
    return asyncio.run(go())


def outcome_of(gw: WireGateway, request_id: str) -> dict[str, Any]:
    """The request's outcome record (written after the answer: waited for)."""
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in records(gw, "outcome") if r["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert found, f"no outcome record for {request_id}"
            return found[0]
        time.sleep(0.05)


def last(gw: WireGateway, requester: str = "dmv_clerk") -> dict[str, Any]:
    return [r for r in records(gw) if r.get("requester") == requester][-1]


def http(gw: WireGateway, requester: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{gw.http_port}/v1/query", json=body,
                      headers={"Authorization": f"Bearer {requester}-demo-token"}, timeout=30)


# -- allowed, logged ------------------------------------------------------------------------------

def test_psql_update_allowed_and_logged(gw: WireGateway, writes_dsn: str) -> None:
    done = gw.psql("dmv_clerk", "UPDATE persons SET city = 'Pueblo', zip = '81001' WHERE person_id IN (3, 4)",
                   purpose="service_delivery")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "UPDATE 2"
    assert [r["city"] for r in direct(writes_dsn, "SELECT city FROM dmv.persons WHERE person_id IN (3, 4)")] == ["Pueblo"] * 2
    record = last(gw)
    assert record["decision"] == "allow" and record["rule"] == "write.allow.update"
    assert record["statement_kind"] == "write"
    assert {a["column"] for a in record["accesses"] if "write" in a["usage"]} >= {"dmv.persons.city", "dmv.persons.zip"}
    outcome = outcome_of(gw, record["request_id"])
    assert outcome["status"] == "ok" and outcome["rows_affected"] == 2


def test_returning_is_redacted_like_a_select(gw: WireGateway, writes_dsn: str) -> None:
    done = gw.psql("dmv_clerk", "UPDATE persons SET phone = '555-0101' WHERE person_id = 5 "
                   "RETURNING person_id, phone, place_of_birth", purpose="service_delivery")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "5|555-0101|"
    assert "redacted columns: place_of_birth" in done.stderr
    assert direct(writes_dsn, "SELECT place_of_birth FROM dmv.persons WHERE person_id = 5")[0][0]  # stored, not shown


def test_asyncpg_parameters_and_returning(gw: WireGateway, writes_dsn: str) -> None:
    async def go() -> tuple[str, list[Any], str]:
        conn = await asyncpg.connect(host=gw.host, port=gw.port, user="dmv_clerk", password="dmv_clerk-demo-password",
                                     database="dmv", server_settings={"gateway.purpose": "service_delivery"}, ssl=False)
        try:
            tag = await conn.execute("UPDATE persons SET county = $1 WHERE person_id = $2", "Otero", 6)
            rows = await conn.fetch("UPDATE persons SET county = $1 WHERE person_id = $2 RETURNING person_id, county",
                                    "Bent", 7)
            inserted = await conn.execute("INSERT INTO vehicles (vehicle_id, owner_person_id, vin, plate, make, model, "
                                          "model_year) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                                          900001, 7, "1HGCM82633A004352", "WRT-001", "Honda", "Accord", 2019)
            return tag, [tuple(r) for r in rows], inserted
        finally:
            await conn.close()
    tag, rows, inserted = asyncio.run(go())
    assert tag == "UPDATE 1" and rows == [(7, "Bent")] and inserted == "INSERT 0 1"
    assert direct(writes_dsn, "SELECT county FROM dmv.persons WHERE person_id = 6")[0][0] == "Otero"


def test_psycopg_extended_protocol(gw: WireGateway, writes_dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(host=gw.host, port=gw.port, user="dmv_clerk", password="dmv_clerk-demo-password",
                         dbname="dmv", options="-c gateway.purpose=service_delivery", autocommit=True) as conn:
        cur = conn.execute("UPDATE vehicles SET plate = %s WHERE vehicle_id = %s RETURNING vehicle_id, plate",
                           ("PSY-123", 900001))
        assert cur.fetchall() == [(900001, "PSY-123")]
        assert cur.rowcount == 1
        cur = conn.execute("DELETE FROM vehicles WHERE vehicle_id = %s", (900001,))
        assert cur.rowcount == 1
    assert direct(writes_dsn, "SELECT count(*) FROM dmv.vehicles WHERE vehicle_id = 900001")[0][0] == 0


def test_http_write_allowed_and_logged(gw: WireGateway, writes_dsn: str) -> None:
    answer = http(gw, "dmv_clerk", {"sql": "UPDATE persons SET email = $1 WHERE person_id = $2 RETURNING person_id, email",
                                    "params": ["x@example.org", 8], "purpose": "service_delivery"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rows"] == [[8, "x@example.org"]] and body["row_count"] == 1 and body["command"] == "UPDATE 1"
    assert outcome_of(gw, body["request_id"])["rows_affected"] == 1
    assert direct(writes_dsn, "SELECT email FROM dmv.persons WHERE person_id = 8")[0][0] == "x@example.org"


# -- refused ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sql, rule", [
    ("UPDATE persons SET first_name = 'Eve' WHERE person_id = 9", "write.no_grant.update"),
    ("UPDATE licenses SET status = 'REVOKED' WHERE person_id = 9", "write.no_grant"),
    ("DELETE FROM persons WHERE person_id = 9", "write.24_74_104"),
    ("INSERT INTO persons SELECT * FROM persons", "write.insert_columns"),
    ("INSERT INTO vehicles (vehicle_id, plate) VALUES (5, 'x') ON CONFLICT DO NOTHING", "write.unsupported"),
    ("WITH d AS (DELETE FROM vehicles RETURNING *) SELECT * FROM d", "statement.writable_cte"),
    ("UPDATE driver_summary SET full_name = 'x'", "write.not_a_table"),
    ("UPDATE pg_catalog.pg_class SET relname = 'x'", "write.catalog"),
    ("CREATE TABLE dmv.t (a int)", "statement.create"),
])
def test_writes_outside_the_grant_are_refused(gw: WireGateway, writes_dsn: str, sql: str, rule: str) -> None:
    before = direct(writes_dsn, "SELECT first_name, city FROM dmv.persons WHERE person_id = 9")
    done = gw.psql("dmv_clerk", sql, purpose="service_delivery")
    assert done.returncode != 0
    assert "gateway:" in done.stderr
    record = last(gw)
    assert record["decision"] == "deny" and record["rule"] == rule, (record["rule"], done.stderr)
    assert direct(writes_dsn, "SELECT first_name, city FROM dmv.persons WHERE person_id = 9") == before


def test_external_requester_never_writes(gw: WireGateway) -> None:
    done = gw.psql("cbi_analyst", "UPDATE persons SET city = 'x' WHERE person_id = 1",
                   purpose="criminal_law_enforcement", case_number="CR-2026-0042")
    assert done.returncode != 0 and "only reads" in done.stderr


def test_status_write_needs_required_by_law(gw: WireGateway, writes_dsn: str) -> None:
    sql = "UPDATE persons SET place_of_birth = 'Lima, Peru' WHERE person_id = 10"
    refused = gw.psql("dmv_clerk", sql, purpose="service_delivery")
    assert refused.returncode != 0 and "24-74-104" in refused.stderr
    assert last(gw)["rule"] == "write.24_74_104"
    assert direct(writes_dsn, "SELECT place_of_birth FROM dmv.persons WHERE person_id = 10")[0][0] != "Lima, Peru"
    no_citation = gw.psql("dmv_clerk", sql, purpose="required_by_law")
    assert no_citation.returncode != 0 and "legal_citation" in no_citation.stderr
    allowed = gw.psql("dmv_clerk", sql, purpose="required_by_law", legal_citation=CITATION)
    assert allowed.returncode == 0, allowed.stderr
    assert direct(writes_dsn, "SELECT place_of_birth FROM dmv.persons WHERE person_id = 10")[0][0] == "Lima, Peru"
    record = last(gw)
    assert record["decision"] == "allow" and record["justification"]["legal_citation"] == CITATION


def test_document_insert_over_http_needs_required_by_law(gw: WireGateway, writes_dsn: str) -> None:
    sql = ("INSERT INTO identity_documents (document_id, person_id, document_type, issuing_country, document_number, "
           "verified_on) VALUES ($1, 11, 'US_PASSPORT', 'US', 'P-0000011', '2026-11-30')")
    refused = http(gw, "dmv_clerk", {"sql": sql, "params": [990001], "purpose": "service_delivery"})
    assert refused.status_code == 403 and "24-74-104" in refused.json()["error"]["message"]
    allowed = http(gw, "dmv_clerk", {"sql": sql, "params": [990001], "purpose": "required_by_law",
                                     "legal_citation": CITATION})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["command"] == "INSERT 0 1"
    assert direct(writes_dsn, "SELECT count(*) FROM dmv.identity_documents WHERE document_id = 990001")[0][0] == 1


def test_where_on_a_classified_column_is_refused_without_purpose(gw: WireGateway, writes_dsn: str) -> None:
    for sql in ("UPDATE persons SET city = 'Zzyzx' WHERE place_of_birth LIKE 'M%'",
                "UPDATE persons SET city = 'Zzyzx' WHERE person_id IN (SELECT person_id FROM lawful_presence "
                "WHERE immigration_status = 'DACA')",
                "UPDATE persons SET city = country_of_citizenship WHERE person_id = 12",
                "DELETE FROM vehicles WHERE owner_person_id IN (SELECT person_id FROM identity_documents "
                "WHERE document_type = 'FOREIGN_PASSPORT')"):
        done = gw.psql("dmv_clerk", sql, purpose="service_delivery")
        assert done.returncode != 0, sql
        assert last(gw)["decision"] == "deny"
    assert direct(writes_dsn, "SELECT count(*) FROM dmv.persons WHERE city = 'Zzyzx'")[0][0] == 0


def test_write_inside_a_transaction_block_is_refused(gw: WireGateway) -> None:
    done = gw.psql("dmv_clerk", "BEGIN; UPDATE persons SET city = 'x' WHERE person_id = 1; COMMIT",
                   purpose="service_delivery")
    assert done.returncode != 0


def test_constraint_errors_carry_no_values(gw: WireGateway) -> None:
    done = gw.psql("dmv_clerk", "INSERT INTO vehicles (vehicle_id, owner_person_id, vin, plate, make, model, model_year) "
                   "VALUES (1, 1, 'V', 'P', 'M', 'M', 2000)", purpose="service_delivery")
    assert done.returncode != 0
    assert "23505" in done.stderr or "duplicate key" in done.stderr
    assert "Key (" not in done.stderr and "DETAIL" not in done.stderr
    record = last(gw)
    assert outcome_of(gw, record["request_id"])["status"] == "error"


def test_the_report_counts_writes(gw: WireGateway, tmp_path: Path) -> None:
    import json

    from gateway.cli import main as gateway_main

    done = gw.psql("dmv_clerk", "UPDATE persons SET zip = '81003' WHERE person_id IN (20, 21, 22)", purpose="service_delivery")
    assert done.returncode == 0, done.stderr
    outcome_of(gw, last(gw)["request_id"])  # the outcome is on disk
    out = tmp_path / "report.json"
    assert gateway_main(["report", "--quarter", "2026-Q4", str(gw.audit_path.parent), "--format", "json",
                         "--out", str(out)]) == 0
    writes = {w["requester"]: w for w in json.loads(out.read_text())["compliance"]["writes"]}
    clerk = writes["dmv_clerk"]
    assert clerk["allowed"] >= 5 and clerk["refused"] >= 10 and clerk["rows_affected"] >= 6
    assert clerk["status_writes"] >= 1 and clerk["refused_24_74_104"] >= 1
    assert writes["cbi_analyst"]["refused"] >= 1 and writes["cbi_analyst"]["allowed"] == 0
    html = tmp_path / "report.html"
    assert gateway_main(["report", "--quarter", "2026-Q4", str(gw.audit_path.parent), "--format", "html",
                         "--out", str(html)]) == 0
    assert "Staff writes" in html.read_text()


def test_returning_respects_the_row_cap_and_is_undone_past_it(writes_dsn: str, tmp_path: Path) -> None:
    """SPEC 9: the policy may cap staff answers too. A write's RETURNING is an answer: past the cap it
    is refused whole (54000 / HTTP 429) and the write rolled back; a write without RETURNING releases
    only its count and runs."""
    import yaml

    policy, requesters = write_files(tmp_path)
    data = yaml.safe_load(policy.read_text())
    data["limits"]["overrides"] = [{"requester": "dmv_clerk", "rows_per_answer": 5}]
    policy.write_text(yaml.safe_dump(data))
    for capped in start_gateway(writes_dsn, tmp_path, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters)):
        async def wire() -> str:
            conn = await asyncpg.connect(host=capped.host, port=capped.port, user="dmv_clerk",
                                         password="dmv_clerk-demo-password", database="dmv", ssl=False,
                                         server_settings={"gateway.purpose": "service_delivery"})
            try:
                with pytest.raises(asyncpg.PostgresError) as caught:
                    await conn.fetch("UPDATE persons SET email = 'capped@example.org' WHERE person_id BETWEEN 101 AND 110 "
                                     "RETURNING person_id, email")
                assert caught.value.sqlstate == "54000" and "row limit" in str(caught.value)
                assert len(await conn.fetch("UPDATE persons SET email = 'small@example.org' WHERE person_id "
                                            "BETWEEN 101 AND 103 RETURNING person_id")) == 3
                return await conn.execute("UPDATE persons SET phone = phone WHERE person_id BETWEEN 101 AND 110")
            finally:
                await conn.close()
        assert asyncio.run(wire()) == "UPDATE 10"
        answer = http(capped, "dmv_clerk", {"sql": "UPDATE persons SET email = 'capped@example.org' WHERE person_id "
                                                   "BETWEEN 111 AND 120 RETURNING *", "purpose": "service_delivery"})
        assert answer.status_code == 429 and answer.json()["error"]["code"] == "row_limit_exceeded", answer.text
        stored = direct(writes_dsn, "SELECT count(*) AS n FROM dmv.persons WHERE email = 'capped@example.org'")
        assert stored[0]["n"] == 0  # refused writes were rolled back
