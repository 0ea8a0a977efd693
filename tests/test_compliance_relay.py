"""A switch (Nlets-like) relaying for other agencies names the originating agency (gateway.ori) and the
end user on every request: refused without them, refused for an immigration agency's ORI, logged and
reported. Through a real gateway (psql and HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gateway.audit.report import Quarter, Verification, build_report
from gateway.audit.report_compliance import build_compliance
from tests.compliance_support import http_query, last_request, records, write_files
from tests.frontdoor_pg_support import ROOT, WireGateway, start_gateway

NAME = "SELECT first_name FROM dmv.persons WHERE person_id = 7"
CLAIM = {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"}


def _switch_entry() -> str:
    """The example switch the shipped requesters file carries, commented out, uncommented."""
    text = (ROOT / "policies/requesters.example.yaml").read_text()
    block = text.split("# EXAMPLE SWITCH", 1)[1]
    lines = [line[1:] for line in block.splitlines() if line.startswith("#  ")]
    assert lines and lines[0].strip() == "nlets_switch:"
    return "\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    folder: Path = tmp_path_factory.mktemp("relay")
    policy, requesters = write_files(folder, requesters_edit=lambda text: text.rstrip() + "\n" + _switch_entry())
    yield from start_gateway(dmv_dsn, folder, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters))


def test_switch_without_ori_is_refused(gw: WireGateway) -> None:
    done = gw.psql("nlets_switch", NAME, **CLAIM)
    assert done.returncode != 0
    assert "set gateway.ori and gateway.end_user" in done.stderr
    assert last_request(gw, "nlets_switch")["rule"] == "origin.missing"
    no_user = gw.psql("nlets_switch", NAME, ori="TX0123400", **CLAIM)
    assert no_user.returncode != 0 and "set gateway.end_user" in no_user.stderr


def test_switch_with_ori_and_end_user_is_answered_and_logged(gw: WireGateway) -> None:
    done = gw.psql("nlets_switch", NAME, ori="TX0123400", end_user="Det.Smith", **CLAIM)
    assert done.returncode == 0, done.stderr
    record = last_request(gw, "nlets_switch")
    assert record["origin"] == {"ori": "TX0123400", "end_user": "Det.Smith"}
    assert "for ORI TX0123400 (end user Det.Smith)" in record["reason"] or record["decision"] == "allow"
    shown = gw.psql("nlets_switch", "SHOW gateway.ori", ori="TX0123400", end_user="Det.Smith", **CLAIM)
    assert shown.stdout.strip() == "TX0123400"


def test_immigration_agency_ori_and_bad_ori_are_refused(gw: WireGateway) -> None:
    ice = gw.psql("nlets_switch", NAME, ori="DCICE0001", end_user="Officer", **CLAIM)
    assert ice.returncode != 0 and "ORI DCICE0001 is an immigration agency's" in ice.stderr
    assert last_request(gw, "nlets_switch")["rule"] == "origin.immigration_agency"
    bad = http_query(gw, "nlets_switch", {"sql": NAME, "ori": "nope", "end_user": "x", **CLAIM})
    assert bad.status_code == 403 and "is not an originating agency identifier" in bad.json()["error"]["message"]
    ok = http_query(gw, "nlets_switch", {"sql": NAME, "ori": "NM0010000", "end_user": "Trooper 7", **CLAIM})
    assert ok.status_code == 200, ok.text


def test_relayed_requests_in_the_report(gw: WireGateway) -> None:
    gw.psql("nlets_switch", NAME, ori="TX0123400", end_user="Det.Smith", **CLAIM)
    logged = records(gw)
    now = datetime.now(timezone.utc)
    quarter = Quarter.parse(f"{now.year}-Q{(now.month - 1) // 3 + 1}")
    sections = build_compliance(logged, quarter.start, quarter.end)
    smith = [r for r in sections.relayed if (r["ori"], r["end_user"]) == ("TX0123400", "Det.Smith")]
    assert smith and smith[0]["requests"] >= 2 and smith[0]["refused"] == 0
    assert [r["refused"] for r in sections.relayed if r["ori"] == "DCICE0001"] == [1]
    assert any(r["ori"] == "(none)" and r["refused"] >= 1 for r in sections.relayed)
    assert build_report(logged, quarter, Verification(True, "ok")).attestation.made
