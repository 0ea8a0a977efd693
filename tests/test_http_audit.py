"""Auditor endpoints and the auditor page: only the auditor role; the same search and report code
as the CLI; a cookie that scripts cannot read; everything rendered escaped."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from http_support import Client, make_gateway

from gateway.frontdoor.http import build_app

QUARTER = f"{datetime.now(timezone.utc).year}-Q{(datetime.now(timezone.utc).month - 1) // 3 + 1}"


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture(scope="module")
def client(runner: asyncio.Runner, dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    gw = make_gateway(dmv_dsn, tmp_path_factory.mktemp("http-audit") / "requests.jsonl")
    runner.run(gw.start())
    c = Client(runner, build_app(gw, rate_per_second=10_000, rate_burst=10_000))
    c.query("dmv_clerk", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = $1", "params": [77],
                          "purpose": "service_delivery"})
    c.query("dmv_clerk", {"sql": 'SELECT 1 AS "<script>alert(1)</script>"'})
    c.query("cbi_analyst", {"sql": "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 77",
                            "purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"})
    c.query("ice_ero", {"sql": "SELECT first_name FROM dmv.persons", "purpose": "civil_immigration_enforcement"})
    runner.run(asyncio.sleep(0.05))  # outcome records are queued without waiting
    yield c
    runner.run(gw.stop())


@pytest.mark.parametrize("url", ["/v1/audit/requests", "/v1/audit/requests/x", f"/v1/reports/{QUARTER}"])
def test_only_auditors(client: Client, url: str) -> None:
    assert client.get(url).status_code == 401
    r = client.get(url, "dmv_clerk")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_search_filters(client: Client) -> None:
    r = client.get("/v1/audit/requests?requester=dmv_clerk", "auditor")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2 and {x["requester"] for x in body["records"]} == {"dmv_clerk"}
    denied = client.get("/v1/audit/requests?decision=deny&type=request", "auditor").json()["records"]
    assert [x["requester"] for x in denied] == ["ice_ero"]
    by_person = client.get("/v1/audit/requests?person=77", "auditor").json()["records"]
    assert {x["requester"] for x in by_person} == {"dmv_clerk", "cbi_analyst"}
    paged = client.get("/v1/audit/requests?type=request&limit=1&offset=1", "auditor").json()
    assert paged["total"] == 4 and len(paged["records"]) == 1
    assert paged["records"][0]["requester"] == "cbi_analyst"  # newest first


@pytest.mark.parametrize("query", ["decision=maybe", "since=yesterday", "limit=0", "colour=red", "type=outcome"])
def test_search_rejects_bad_filters(client: Client, query: str) -> None:
    r = client.get(f"/v1/audit/requests?{query}", "auditor")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_query"


def test_one_request_with_its_outcome(client: Client) -> None:
    rid = client.get("/v1/audit/requests?requester=cbi_analyst", "auditor").json()["records"][0]["request_id"]
    record = client.get(f"/v1/audit/requests/{rid}", "auditor").json()["record"]
    assert record["decision"] == "allow" and record["justification"]["case_number"] == "CR-2026-0042"
    assert record["outcome"]["rows_returned"] == 1
    missing = client.get("/v1/audit/requests/nope-1", "auditor")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_reports_in_three_formats(client: Client) -> None:
    data = client.get(f"/v1/reports/{QUARTER}?format=json", "auditor").json()
    assert data["quarter"] == QUARTER and data["totals"]["requests"] >= 4 and data["totals"]["deny"] >= 1
    assert any(r["requester"] == "cbi_analyst" for r in data["immigration"])
    rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/reports/{QUARTER}?format=csv", "auditor").text)))
    assert any(r["section"] == "by_requester" and r["key"] == "dmv_clerk" for r in rows)
    html = client.get(f"/v1/reports/{QUARTER}", "auditor")
    assert html.headers["content-type"].startswith("text/html") and "<svg" in html.text
    assert client.get("/v1/reports/2026-Q5", "auditor").json()["error"]["code"] == "invalid_query"
    assert client.get(f"/v1/reports/{QUARTER}?format=pdf", "auditor").status_code == 400


def _signed_in(client: Client) -> dict[str, str]:
    r = client.request("POST", "/audit/login", content=b"token=auditor-demo-token",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303 and r.headers["location"] == "/audit/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/audit" in cookie
    return {"Cookie": cookie.split(";")[0]}


def test_page_sign_in_filter_open_request_and_report(client: Client) -> None:
    first = client.get("/audit/")
    assert first.status_code == 200 and 'name="token"' in first.text
    assert "default-src 'none'" in first.headers["content-security-policy"]
    cookie = _signed_in(client)
    page = client.request("GET", "/audit/?requester=ice_ero", headers=cookie)
    assert page.status_code == 200 and "signed in as auditor" in page.text
    assert "ice_ero" in page.text and "cbi_analyst" not in page.text
    everything = client.request("GET", "/audit/", headers=cookie).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in everything and "<script>alert" not in everything
    rid = client.get("/v1/audit/requests?requester=cbi_analyst", "auditor").json()["records"][0]["request_id"]
    detail = client.request("GET", f"/audit/requests/{rid}", headers=cookie)
    assert detail.status_code == 200
    for words in ("criminal_law_enforcement", "case_number: CR-2026-0042", "dmv.lawful_presence.immigration_status",
                  "SQL as sent to the database"):
        assert words in detail.text
    report = client.request("GET", f"/audit/report?quarter={QUARTER}", headers=cookie)
    assert report.status_code == 200 and "<svg" in report.text and "Request log</a>" in report.text
    out = client.request("POST", "/audit/logout", headers=cookie)
    assert out.status_code == 303 and 'gateway_auditor=""' in out.headers["set-cookie"]


def test_page_refuses_other_tokens(client: Client) -> None:
    r = client.request("POST", "/audit/login", content=b"token=dmv_clerk-demo-token",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403 and "auditor role" in r.text and "set-cookie" in r.headers
    assert "gateway_auditor=" in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    bad = client.request("GET", "/audit/requests/x", headers={"Cookie": "gateway_auditor=forged"})
    assert bad.status_code == 401 and 'name="token"' in bad.text
