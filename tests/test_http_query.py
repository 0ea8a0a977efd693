"""POST /v1/query against the real app, a real Gateway and the seeded PostgreSQL (SPEC sections 3-4)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import Client, log_records, make_gateway

from gateway.frontdoor.http import build_app

STATUS_VALUES = {"US_CITIZEN", "LAWFUL_PERMANENT_RESIDENT", "TEMPORARY_VISA", "DACA", "TPS", "ASYLUM_PENDING",
                 "NO_LAWFUL_PRESENCE"}
STATUS_SQL = ("SELECT p.person_id, p.first_name, lp.immigration_status FROM dmv.persons p "
              "JOIN dmv.lawful_presence lp USING (person_id) WHERE p.person_id = $1")
MAX_ROWS = 50


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("http-query") / "requests.jsonl"


@pytest.fixture(scope="module")
def gw(runner: asyncio.Runner, dmv_dsn: str, audit_path: Path) -> Iterator[Any]:
    gateway = make_gateway(dmv_dsn, audit_path, max_rows_http=MAX_ROWS)
    runner.run(gateway.start())
    yield gateway
    runner.run(gateway.stop())


@pytest.fixture(scope="module")
def client(runner: asyncio.Runner, gw: Any) -> Client:
    return Client(runner, build_app(gw, rate_per_second=10_000, rate_burst=10_000))


def request_records(audit_path: Path, request_id: str) -> list[dict[str, Any]]:
    return [r for r in log_records(audit_path) if r.get("type") == "request" and r.get("request_id") == request_id]


def assert_logged_once(audit_path: Path, response: Any, decision: str) -> dict[str, Any]:
    rid = response.headers["X-Request-Id"]
    records = request_records(audit_path, rid)
    assert len(records) == 1, f"{len(records)} request records for {rid}"
    assert records[0]["decision"] == decision
    assert records[0]["front_door"] == "http"
    return records[0]


# -- the reference requesters (SPEC section 3) ---------------------------------------------------


def test_dmv_clerk_service_delivery_gets_status_redacted(client: Client, audit_path: Path) -> None:
    r = client.query("dmv_clerk", {"sql": STATUS_SQL, "params": [1], "purpose": "service_delivery"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["name"] for c in body["columns"]] == ["person_id", "first_name", "immigration_status"]
    assert body["columns"][0]["type"] == "int8" and body["columns"][2]["type"] == "text"
    assert body["row_count"] == 1 and body["rows"][0][0] == 1
    assert body["rows"][0][1]  # first name: PII, allowed for the DMV's own service delivery
    assert body["rows"][0][2] is None
    assert body["redacted"] == ["immigration_status"]
    assert body["request_id"] == r.headers["X-Request-Id"]
    record = assert_logged_once(audit_path, r, "redact")
    assert record["purpose"] == "service_delivery"


def test_dmv_clerk_without_purpose_is_redacted_too(client: Client) -> None:
    r = client.query("dmv_clerk", {"sql": STATUS_SQL, "params": ["2"]})
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0][2] is None and r.json()["redacted"] == ["immigration_status"]


def test_dmv_clerk_may_not_filter_on_status(client: Client, audit_path: Path) -> None:
    r = client.query("dmv_clerk", {"sql": "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'DACA'",
                                   "purpose": "service_delivery"})
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "policy_denied" and error["message"].startswith("gateway:")
    assert error["request_id"] == r.headers["X-Request-Id"]
    assert_logged_once(audit_path, r, "deny")


def test_cbi_analyst_with_case_number_sees_status(client: Client, audit_path: Path) -> None:
    r = client.query("cbi_analyst", {"sql": STATUS_SQL, "params": [3], "purpose": "criminal_law_enforcement",
                                     "case_number": "CR-2026-0042"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0][2] in STATUS_VALUES and r.json()["redacted"] == []
    record = assert_logged_once(audit_path, r, "allow")
    assert record["justification"]["case_number"] == "CR-2026-0042"


def test_cbi_analyst_without_case_number_is_refused(client: Client, audit_path: Path) -> None:
    r = client.query("cbi_analyst", {"sql": STATUS_SQL, "params": [3], "purpose": "criminal_law_enforcement"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "purpose_refused"
    assert "case_number" in r.json()["error"]["message"]
    assert_logged_once(audit_path, r, "deny")


@pytest.mark.parametrize("sql", [
    "SELECT first_name, last_name FROM dmv.persons LIMIT 3",
    "SELECT immigration_status FROM dmv.lawful_presence LIMIT 3",
    "SELECT count(*) FROM dmv.persons WHERE zip = '80202'",
])
def test_ice_ero_gets_no_pii_nor_status(client: Client, audit_path: Path, sql: str) -> None:
    r = client.query("ice_ero", {"sql": sql, "purpose": "civil_immigration_enforcement"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] in ("policy_denied", "purpose_refused")
    assert_logged_once(audit_path, r, "deny")


def test_ice_ero_claiming_another_purpose_is_still_immigration_enforcement(client: Client, audit_path: Path) -> None:
    r = client.query("ice_ero", {"sql": STATUS_SQL, "params": [1], "purpose": "criminal_law_enforcement",
                                 "case_number": "CR-2026-0042"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "policy_denied"  # SPEC 9: whatever it states
    assert "civil_immigration_enforcement" in r.json()["error"]["message"]
    record = assert_logged_once(audit_path, r, "deny")
    assert record["requester_kind"] == "immigration_agency"
    assert record["effective_purpose"] == "civil_immigration_enforcement"


def test_ag_counsel_with_court_order_sees_status(client: Client) -> None:
    r = client.query("ag_counsel", {"sql": STATUS_SQL, "params": [4], "purpose": "court_order",
                                    "order_reference": "2026CV001234"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0][2] in STATUS_VALUES


def test_ag_counsel_with_a_detainer_is_refused(client: Client, audit_path: Path) -> None:
    r = client.query("ag_counsel", {"sql": STATUS_SQL, "params": [4], "purpose": "court_order",
                                    "order_reference": "I-247 detainer"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "purpose_refused"
    assert "I-247" in r.json()["error"]["message"]
    assert_logged_once(audit_path, r, "deny")


def test_gov_office_with_authorization_sees_status(client: Client) -> None:
    r = client.query("gov_office", {"sql": STATUS_SQL, "params": [5], "purpose": "governor_authorized",
                                    "authorization_id": "GOV-2026-0001"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0][2] in STATUS_VALUES


def test_auditor_gets_no_data(client: Client, audit_path: Path) -> None:
    r = client.query("auditor", {"sql": "SELECT first_name FROM dmv.persons LIMIT 1"})
    assert r.status_code == 403, r.text
    assert_logged_once(audit_path, r, "deny")


# -- authentication, bodies, statements ------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
def test_bad_or_missing_token_is_401(client: Client, headers: dict[str, str]) -> None:
    r = client.request("POST", "/v1/query", json={"sql": "SELECT 1"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "authentication_failed"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_failed_login_is_an_event_not_a_request(client: Client, audit_path: Path) -> None:
    r = client.request("POST", "/v1/query", json={"sql": "SELECT 1"}, headers={"Authorization": "Bearer wrong-token"})
    rid = r.json()["error"]["request_id"]
    kinds = [x["type"] for x in log_records(audit_path) if x.get("request_id") == rid]
    assert kinds == ["login_failed"]
    assert "wrong-token" not in audit_path.read_text()


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"sql": "SELECT 1", "colour": "red"}, "invalid_body", "unknown field 'colour'"),
    ({"params": []}, "invalid_body", "'sql' is required"),
    ({"sql": 42}, "invalid_body", "'sql' must be a string"),
    ({"sql": "SELECT 1", "params": "x"}, "invalid_body", "'params' must be an array"),
    ({"sql": "SELECT 1", "purpose": 7}, "invalid_body", "'purpose' must be a string"),
    ({"sql": "SELECT 1", "limit": 0}, "invalid_body", "'limit' must be at least 1"),
    ({"sql": "SELECT 1", "params": [{"a": [{"b": 1}]}, [[{}]]]}, "invalid_body", "parameter $2"),
    ([1, 2], "invalid_json", "JSON object"),
])
def test_bad_bodies_are_400(client: Client, body: Any, code: str, words: str) -> None:
    r = client.query("dmv_clerk", body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code
    assert words in r.json()["error"]["message"]


def test_not_json_is_400(client: Client) -> None:
    r = client.request("POST", "/v1/query", content=b"{sql: 1", headers={"Authorization": "Bearer dmv_clerk-demo-token",
                                                                          "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_syntax_error_is_400(client: Client, audit_path: Path) -> None:
    r = client.query("dmv_clerk", {"sql": "SELEC person_id FROM dmv.persons"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "syntax_error"
    assert_logged_once(audit_path, r, "deny")


@pytest.mark.parametrize("sql", ["SELECT 1; SELECT 2", "BEGIN", "SET statement_timeout = 0", "SET gateway.purpose = 'court_order'"])
def test_only_one_select_runs(client: Client, audit_path: Path, sql: str) -> None:
    r = client.query("dmv_clerk", {"sql": sql})
    assert r.status_code in (400, 403), r.text
    assert r.json()["error"]["code"] in ("statement_not_allowed", "policy_denied", "not_understood")
    assert_logged_once(audit_path, r, "deny")


def test_writes_are_refused(client: Client) -> None:
    r = client.query("dmv_clerk", {"sql": "DELETE FROM dmv.violations"})
    assert r.status_code in (400, 403)
    r = client.query("dmv_clerk", {"sql": "SELECT count(*) FROM dmv.violations"})
    assert r.status_code == 200 and r.json()["rows"][0][0] > 0


# -- parameters, types, limits -----------------------------------------------------------------------


def test_parameters_are_bound_not_spliced(client: Client) -> None:
    hostile = "x'; DROP TABLE dmv.persons; --"
    r = client.query("dmv_clerk", {"sql": "SELECT $1::text AS v, length($1::text) AS n", "params": [hostile]})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[hostile, len(hostile)]]


def test_parameters_are_converted_to_the_placeholder_type(client: Client) -> None:
    sql = "SELECT count(*) FROM dmv.licenses WHERE issue_date >= $1 AND person_id <= $2"
    r = client.query("dmv_clerk", {"sql": sql, "params": ["2000-01-01", "100000"]})
    assert r.status_code == 200, r.text
    bad = client.query("dmv_clerk", {"sql": sql, "params": ["not a date", 1]})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_parameter"
    assert "$1" in bad.json()["error"]["message"]
    few = client.query("dmv_clerk", {"sql": sql, "params": ["2000-01-01"]})
    assert few.status_code == 400 and few.json()["error"]["code"] == "invalid_parameter"


def test_every_type_is_encoded_as_json(client: Client) -> None:
    sql = ("SELECT DATE '2026-07-01' AS d, TIMESTAMP '2026-07-01 12:30:00' AS ts, "
           "TIMESTAMPTZ '2026-07-01 12:30:00+00' AS tstz, 12.50::numeric AS n, 1.5::float8 AS f, "
           "'\\x0102ff'::bytea AS b, ARRAY[1, 2, 3] AS a, ARRAY['x', NULL] AS ta, "
           "'{\"k\": [1, true]}'::jsonb AS j, '[1]'::json AS j2, true AS t, 9007199254740993::int8 AS big, "
           "'NaN'::float8 AS nan, INTERVAL '1 day 2 hours' AS iv, NULL::text AS nothing")
    r = client.query("dmv_clerk", {"sql": sql})
    assert r.status_code == 200, r.text
    row = dict(zip([c["name"] for c in r.json()["columns"]], r.json()["rows"][0]))
    assert row["d"] == "2026-07-01"
    assert row["ts"] == "2026-07-01T12:30:00"
    assert row["tstz"].startswith("2026-07-01T12:30:00")
    assert row["n"] == "12.50" and row["f"] == 1.5
    assert base64.b64decode(row["b"]) == b"\x01\x02\xff"
    assert row["a"] == [1, 2, 3] and row["ta"] == ["x", None]
    assert row["j"] == {"k": [1, True]} and row["j2"] == [1]
    assert row["t"] is True and row["big"] == 9007199254740993
    assert row["nan"] == "NaN" and row["iv"] == "P1DT2H0M0S" and row["nothing"] is None
    types = {c["name"]: c["type"] for c in r.json()["columns"]}
    assert types["a"] == "int4[]" and types["j"] == "jsonb" and types["d"] == "date"


def test_row_limit_and_paging(client: Client, audit_path: Path) -> None:
    sql = "SELECT person_id FROM dmv.persons ORDER BY person_id"
    r = client.query("dmv_clerk", {"sql": sql})
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "row_limit_exceeded"
    assert "limit" in r.json()["error"]["message"]
    assert_logged_once(audit_path, r, "allow")
    page = client.query("dmv_clerk", {"sql": sql, "limit": 10, "offset": 20})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["rows"] == [[n] for n in range(21, 31)]
    assert body["has_more"] is True and body["row_count"] == 10 and body["offset"] == 20
    capped = client.query("dmv_clerk", {"sql": sql, "limit": 10_000})
    assert capped.status_code == 200 and capped.json()["row_count"] == MAX_ROWS and capped.json()["has_more"]
    last = client.query("dmv_clerk", {"sql": sql + " LIMIT 5", "limit": 10})
    assert last.json()["has_more"] is False and last.json()["row_count"] == 5


def test_data_errors_do_not_echo_values(client: Client) -> None:
    r = client.query("dmv_clerk", {"sql": "SELECT 'DACA'::int"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "backend_error" and error["sqlstate"] == "22P02"
    assert "DACA" not in error["message"]


def test_other_backend_errors_keep_their_message(client: Client) -> None:
    r = client.query("dmv_clerk", {"sql": "SELECT 1/0"})
    assert r.status_code == 400
    assert r.json()["error"]["sqlstate"] == "22012" and r.json()["error"]["code"] == "backend_error"


def test_outcome_is_logged_after_the_answer(client: Client, audit_path: Path, runner: asyncio.Runner) -> None:
    r = client.query("dmv_clerk", {"sql": "SELECT person_id FROM dmv.persons ORDER BY person_id LIMIT 3"})
    rid = r.headers["X-Request-Id"]
    runner.run(asyncio.sleep(0.05))
    outcomes = [x for x in log_records(audit_path) if x.get("type") == "outcome" and x.get("request_id") == rid]
    assert len(outcomes) == 1 and outcomes[0]["rows_returned"] == 3


def test_a_body_nested_too_deeply_is_400(client: Client) -> None:
    """A 1 MB body of nested arrays: json's decoder raises RecursionError (it was a 500 internal_error)."""
    content = b'{"sql": "SELECT 1", "params": ' + b"[" * 500_000 + b"]" * 500_000 + b"}"
    r = client.request("POST", "/v1/query", content=content, headers={"Authorization": "Bearer dmv_clerk-demo-token",
                                                                      "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_json" and "too deeply" in r.json()["error"]["message"]
