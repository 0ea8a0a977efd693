"""Caps, rate limits and alerts (SPEC section 9) hit on purpose, over both front doors of a real
gateway (``gateway serve`` in a subprocess), with the records they leave; the counters survive a
restart. The policy is the shipped one with small caps per requester (``limits.overrides``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.audit.record import per_request
from frontdoor_pg_support import ROOT, WireGateway, start_gateway

psycopg = pytest.importorskip("psycopg")

CBI = {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"}
AG = {"purpose": "court_order", "order_reference": "2026CV001234"}
GOV = {"purpose": "governor_authorized", "authorization_id": "GOV-2026-0001"}
ROWS_CAP, INDIVIDUALS_CAP, RATE_CAP, REPEATS = 5, 6, 8, 3


def _policy(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "policies/colorado-dmv.yaml").read_text())
    data["limits"]["overrides"] = [
        {"requester": "ag_counsel", "rows_per_answer": ROWS_CAP},
        {"requester": "gov_office", "individuals_per_day": INDIVIDUALS_CAP},
        {"requester": "cbi_analyst", "purpose": "criminal_law_enforcement", "requests_per_minute": RATE_CAP},
    ]
    data["alerts"]["repeat_lookups"] = REPEATS
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limits-audit")


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _policy(tmp_path_factory.mktemp("limits-policy"))


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, audit_dir: Path, policy_path: Path) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, audit_dir, log_path=audit_dir / "gateway-1.log", GATEWAY_POLICY=str(policy_path))


def connect(gw: WireGateway, user: str, claim: dict[str, str]) -> Any:
    options = " ".join(f"-c gateway.{k}={v}" for k, v in claim.items())
    return psycopg.connect(host=gw.host, port=gw.port, user=user, password=f"{user}-demo-password", dbname="dmv",
                           sslmode="disable", autocommit=True, options=options)


def http(gw: WireGateway, user: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"http://{gw.host}:{gw.http_port}/v1/query", json=body,
                      headers={"Authorization": f"Bearer {user}-demo-token"}, timeout=30)


def records(gw: WireGateway) -> list[dict[str, Any]]:
    """The log's records, a batch's ``outcomes`` record read as its per-request ``outcome`` records."""
    out = []
    for path in sorted(gw.audit_path.parent.glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return list(per_request(out))


def by_request(gw: WireGateway, request_id: str, wait_for: str = "request") -> list[dict[str, Any]]:
    """The records of one request, once one of type ``wait_for`` is written (outcomes follow later)."""
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in records(gw) if r.get("request_id") == request_id]
        if any(r["type"] == wait_for for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _request_id(message: str) -> str:
    return message.rsplit("(request ", 1)[1].split(")")[0]


def _ids(n: int, start: int = 1) -> str:
    return ", ".join(str(i) for i in range(start, start + n))


# -- rows per answer -------------------------------------------------------------------------------
def test_rows_cap_refuses_the_whole_answer_on_the_wire(gw: WireGateway) -> None:
    with connect(gw, "ag_counsel", AG) as conn:
        ok = conn.execute(f"SELECT person_id FROM dmv.persons WHERE person_id IN ({_ids(ROWS_CAP)})").fetchall()
        assert len(ok) == ROWS_CAP
        for params in (False, True):  # extended protocol with and without parameters
            sql = f"SELECT person_id, first_name FROM dmv.persons WHERE person_id IN ({_ids(ROWS_CAP)}, %s)"
            with pytest.raises(psycopg.errors.ProgramLimitExceeded) as info:
                conn.execute(sql, (77,) if params else None) if params else conn.execute(sql.replace("%s", "77"))
            assert "row limit exceeded" in str(info.value) and info.value.sqlstate == "54000"
            rid = _request_id(str(info.value))
            kinds = {r["type"]: r for r in by_request(gw, rid, "outcome")}
            assert kinds["request"]["decision"] == "allow"  # the statement was allowed ...
            assert kinds["outcome"]["status"] == "refused" and kinds["outcome"]["rows_returned"] == 0  # ... its answer not
            assert kinds["outcome"]["backend_sqlstate"] == "54000"
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the session goes on


def test_rows_cap_with_psql_simple_protocol(gw: WireGateway) -> None:
    done = gw.psql("ag_counsel", f"SELECT person_id FROM dmv.persons WHERE person_id IN ({_ids(ROWS_CAP + 2)})", **AG)
    assert done.returncode != 0 and "row limit exceeded" in done.stderr
    assert done.stdout == ""  # nothing released
    rid = _request_id(done.stderr)
    outcome = [r for r in by_request(gw, rid, "outcome") if r["type"] == "outcome"]
    assert len(outcome) == 1 and outcome[0]["status"] == "refused"


def test_rows_cap_over_http(gw: WireGateway) -> None:
    big = http(gw, "ag_counsel", {"sql": f"SELECT person_id FROM dmv.persons WHERE person_id IN ({_ids(ROWS_CAP + 1)})", **AG})
    assert big.status_code == 429 and big.json()["error"]["code"] == "row_limit_exceeded"
    assert big.json()["error"]["sqlstate"] == "54000" and "rows" not in big.json()
    outcome = [r for r in by_request(gw, big.headers["X-Request-Id"], "outcome") if r["type"] == "outcome"]
    assert outcome[0]["status"] == "refused"
    small = http(gw, "ag_counsel", {"sql": f"SELECT person_id FROM dmv.persons WHERE person_id IN ({_ids(ROWS_CAP)})",
                                    "limit": 2, **AG})
    assert small.status_code == 200 and small.json()["row_count"] == 2 and small.json()["has_more"]
    paged = http(gw, "ag_counsel", {"sql": "SELECT person_id FROM dmv.persons WHERE person_id IN (1, 2)", "offset": 1, **AG})
    assert paged.status_code == 403 and "paging" in paged.json()["error"]["message"]


def test_an_array_names_at_most_25_individuals(gw: WireGateway) -> None:
    # an array's length is part of neither the statement's shape nor its analysis: counted per request
    def literal(ids: range) -> str:
        return "SELECT person_id FROM dmv.persons WHERE person_id = ANY('{" + ",".join(map(str, ids)) + "}'::int[])"

    many = http(gw, "ag_counsel", {"sql": literal(range(300, 330)), **AG})
    assert many.status_code == 403 and "names 30 individuals" in many.json()["error"]["message"]
    few = http(gw, "ag_counsel", {"sql": literal(range(300, 303)), **AG})
    assert few.status_code == 200 and few.json()["row_count"] == 3, few.text
    request = [r for r in by_request(gw, few.headers["X-Request-Id"]) if r["type"] == "request"][0]
    assert len(request["individuals"]) == 3
    with connect(gw, "ag_counsel", AG) as conn:  # on the wire, a list bound as an array parameter
        sql = "SELECT person_id FROM dmv.persons WHERE person_id = ANY(%s)"
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="names 30 individuals"):
            conn.execute(sql, (list(range(300, 330)),))
        assert len(conn.execute(sql, ([300, 301],)).fetchall()) == 2


def test_staff_have_no_row_cap(gw: WireGateway) -> None:
    with connect(gw, "dmv_clerk", {"purpose": "service_delivery"}) as conn:
        assert len(conn.execute("SELECT person_id FROM dmv.persons ORDER BY 1 LIMIT 500").fetchall()) == 500


def test_a_cursor_is_refused_to_a_capped_requester(gw: WireGateway) -> None:
    with connect(gw, "ag_counsel", AG) as conn:
        with conn.transaction():
            cur = conn.cursor(name="c1")
            with pytest.raises(psycopg.Error) as info:
                cur.execute("SELECT person_id FROM dmv.persons WHERE person_id IN (1, 2, 3)")
                cur.fetchall()
        assert "gateway:" in str(info.value)


# -- individuals per day, alerts -------------------------------------------------------------------
def test_individuals_cap_per_day_and_repeat_alert(gw: WireGateway) -> None:
    with connect(gw, "gov_office", GOV) as conn:
        for _ in range(REPEATS):
            conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (101,)).fetchall()
        conn.execute(f"SELECT first_name FROM dmv.persons WHERE person_id IN ({_ids(3, 102)})").fetchall()
        assert conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = 101").fetchall()  # known today
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded) as info:  # 53400
            conn.execute(f"SELECT first_name FROM dmv.persons WHERE person_id IN ({_ids(3, 105)})")
        assert "distinct individuals today" in str(info.value)
    rid = _request_id(str(info.value))
    request = [r for r in by_request(gw, rid) if r["type"] == "request"][0]
    assert request["decision"] == "deny" and request["sqlstate"] == "53400"
    assert request["rule"] == "limits.individuals_per_day" and request["requester_kind"] == "external"
    assert len(request["individuals"]) == 3 and all(i.startswith("person:h:") for i in request["individuals"])
    by_request(gw, rid)
    alerts = [r for r in records(gw) if r["type"] == "alert" and r["requester"] == "gov_office"]
    assert [a["alert"] for a in alerts] == ["repeated_lookup"] and alerts[0]["times"] == REPEATS
    # the same cap over HTTP (one counter per requester and purpose, both doors)
    r = http(gw, "gov_office", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = ANY($1)",
                                "params": [[110, 111, 112]], **GOV})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert [x for x in by_request(gw, r.headers["X-Request-Id"]) if x["type"] == "request"][0]["sqlstate"] == "53400"


# -- requests per minute ---------------------------------------------------------------------------
def test_requests_per_minute_on_both_doors(gw: WireGateway) -> None:
    refused: list[str] = []
    with connect(gw, "cbi_analyst", CBI) as conn:
        for i in range(RATE_CAP + 2):
            try:
                conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (200 + i % 2,)).fetchall()
            except psycopg.errors.ConfigurationLimitExceeded as exc:
                refused.append(_request_id(str(exc)))
    r = http(gw, "cbi_analyst", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = 200", **CBI})
    assert refused or r.status_code == 429  # a minute boundary may fall inside the burst, not twice
    if r.status_code == 429:
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        refused.append(r.headers["X-Request-Id"])
    for rid in refused:
        request = [x for x in by_request(gw, rid) if x["type"] == "request"][0]
        assert request["rule"] == "limits.requests_per_minute" and request["decision"] == "deny"


# -- bulk and the immigration agency ---------------------------------------------------------------
@pytest.mark.parametrize("claim", [{}, {"purpose": "civil_immigration_enforcement"}, {"purpose": "service_delivery"},
                                   CBI])
def test_ice_ero_gets_no_pii_on_either_door(gw: WireGateway, claim: dict[str, str]) -> None:
    sql = "SELECT first_name, address_line1 FROM dmv.persons WHERE person_id = 5"
    with connect(gw, "ice_ero", claim) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            conn.execute(sql)
    assert "civil_immigration_enforcement" in str(info.value)
    r = http(gw, "ice_ero", {"sql": sql, **claim})
    assert r.status_code == 403 and r.json()["error"]["sqlstate"] == "42501"


def test_cbi_analyst_without_purpose_gets_no_pii_on_either_door(gw: WireGateway) -> None:
    sql = "SELECT first_name, ssn FROM dmv.persons WHERE person_id = 5"
    with connect(gw, "cbi_analyst", {}) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql)
    r = http(gw, "cbi_analyst", {"sql": sql})
    assert r.status_code == 403 and "no stated purpose" in r.json()["error"]["message"]


# -- the quarterly report ----------------------------------------------------------------------------
def test_the_report_lists_alerts_and_caps(gw: WireGateway) -> None:
    import subprocess
    import sys
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    quarter = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    done = subprocess.run([sys.executable, "-m", "gateway", "report", "--quarter", quarter, "--format", "json",
                           "--out", "-", str(gw.audit_path.parent)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    unusual = json.loads(done.stdout)["unusual"]
    kinds = {(u["kind"], u["requester"]) for u in unusual}
    assert ("alert", "gov_office") in kinds and ("repeated lookup", "gov_office") not in kinds  # 3 < 5 default
    assert ("cap reached", "gov_office") in kinds and ("cap reached", "cbi_analyst") in kinds
    assert any("limits.individuals_per_day" in u["detail"] for u in unusual if u["kind"] == "cap reached")
    outcomes = [r for r in records(gw) if r["type"] == "outcome" and r["status"] == "ok"]
    assert outcomes and all(r["persons_returned"] is not None for r in outcomes)
    assert any(r["persons_returned"] == ROWS_CAP for r in outcomes)  # the look-up of 5 named persons


# -- the counters survive a restart ----------------------------------------------------------------
def test_counters_survive_a_restart(gw: WireGateway, dmv_dsn: str, audit_dir: Path, policy_path: Path) -> None:
    gw.process.terminate()
    gw.process.wait(20)
    again = start_gateway(dmv_dsn, audit_dir, log_path=audit_dir / "gateway-2.log", GATEWAY_POLICY=str(policy_path))
    second = next(again)
    try:
        with connect(second, "gov_office", GOV) as conn:
            assert conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = 102").fetchall()  # known
            with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):
                conn.execute("SELECT first_name FROM dmv.persons WHERE person_id IN (120, 121, 122)")
    finally:
        again.close()
