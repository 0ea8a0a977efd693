"""SPEC 10 through a real gateway (subprocess, psql and HTTP): registries with scope, certifications,
the use notice. Each rule is checked on the answer and on the request record."""

from __future__ import annotations

from collections.abc import Iterator
import pytest

from tests.compliance_support import compliance_gateway, http_query, last_request
from tests.frontdoor_pg_support import WireGateway

STATUS = "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 7"
NAME = "SELECT first_name FROM dmv.persons WHERE person_id = 7"


@pytest.fixture(scope="module")
def gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from compliance_gateway(dmv_dsn, tmp_path_factory.mktemp("compliance"))


def test_release_within_scope_names_the_entry_and_carries_the_use_notice(gw: WireGateway) -> None:
    done = gw.psql("gov_office", STATUS, purpose="governor_authorized", authorization_id="GOV-2026-0001")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() not in ("", "|")  # the status itself comes back
    assert "gateway: use notice:" in done.stderr and "civil immigration enforcement" in done.stderr
    record = last_request(gw, "gov_office")
    assert record["decision"] == "allow" and record["use_notice"] is True
    assert record["registry_entry"]["id"] == "GOV-2026-0001"
    assert record["registry_entry"]["kind"] == "authorization"
    assert "Office of the Governor" in record["registry_entry"]["label"]
    assert record["certification"] == {"status": "current", "id": "GOV_OFFICE-CERT-2026"}


def test_authorization_outside_its_scope_is_refused(gw: WireGateway) -> None:
    done = gw.psql("gov_office", STATUS, purpose="governor_authorized", authorization_id="GOV-2026-0099")
    assert done.returncode != 0
    assert "outside the scope of authorization GOV-2026-0099" in done.stderr
    assert "schema public" in done.stderr
    record = last_request(gw, "gov_office")
    assert record["decision"] == "deny" and record["rule"] == "registry.out_of_scope.authorization"
    assert record["registry_entry"]["id"] == "GOV-2026-0099" and record["use_notice"] is False


def test_table_and_column_scope(gw: WireGateway) -> None:
    inside = gw.psql("gov_office", NAME, purpose="governor_authorized", authorization_id="GOV-2026-0098")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip()
    joined = gw.psql("gov_office", "SELECT p.first_name, l.person_id FROM dmv.persons p JOIN dmv.lawful_presence l "
                     "ON l.person_id = p.person_id WHERE p.person_id = 7",
                     purpose="governor_authorized", authorization_id="GOV-2026-0098")
    assert joined.returncode == 0, joined.stderr
    outside = gw.psql("gov_office", STATUS, purpose="governor_authorized", authorization_id="GOV-2026-0098")
    assert outside.returncode != 0
    assert "dmv.lawful_presence.immigration_status" in outside.stderr and "outside the scope" in outside.stderr


def test_lapsed_authorization_is_refused(gw: WireGateway) -> None:
    done = gw.psql("gov_office", STATUS, purpose="governor_authorized", authorization_id="GOV-2025-0001")
    assert done.returncode != 0 and "expired on 2025-12-31" in done.stderr


def test_court_order_scope_is_named(gw: WireGateway) -> None:
    done = gw.psql("ag_counsel", STATUS, purpose="court_order", order_reference="2026CV001234")
    assert done.returncode == 0, done.stderr
    record = last_request(gw, "ag_counsel")
    assert record["registry_entry"]["kind"] == "court_order"
    assert "Denver District Court" in record["registry_entry"]["label"]
    assert "Judge" in record["registry_entry"]["label"]


def test_expired_certification_is_refused_with_its_reason(gw: WireGateway) -> None:
    done = gw.psql("cbi_analyst", NAME, purpose="criminal_law_enforcement", case_number="CR-2026-0042")
    assert done.returncode != 0
    assert "certification_expired" in done.stderr and "24-74-105" in done.stderr
    record = last_request(gw, "cbi_analyst")
    assert record["decision"] == "deny" and record["rule"] == "certification.certification_expired"
    assert record["certification"]["status"] == "certification_expired"
    # what needs no personal identifying information is still answered
    ok = gw.psql("cbi_analyst", "SELECT count(*) FROM dmv.licenses WHERE license_class = 'C'",
                 purpose="criminal_law_enforcement", case_number="CR-2026-0042")
    assert ok.returncode == 0, ok.stderr


def test_use_notice_over_http(gw: WireGateway) -> None:
    response = http_query(gw, "gov_office", {"sql": STATUS, "purpose": "governor_authorized",
                                             "authorization_id": "GOV-2026-0001"})
    assert response.status_code == 200, response.text
    assert response.json()["notice"].startswith("gateway: use notice:")
    assert last_request(gw, "gov_office")["use_notice"] is True
    plain = http_query(gw, "dmv_clerk", {"sql": NAME})
    assert plain.status_code == 200 and "notice" not in plain.json()
    assert last_request(gw, "dmv_clerk")["use_notice"] is False


def test_record_names_a_missing_certification(gw: WireGateway) -> None:
    response = http_query(gw, "ice_ero", {"sql": "SELECT count(*) FROM dmv.licenses WHERE license_class = 'C'"})
    assert response.status_code == 200
    record = last_request(gw, "ice_ero")
    assert record["certification"]["status"] == "certification_missing"


def test_catalog_answers_carry_no_use_notice(gw: WireGateway) -> None:
    """psql's \\d under an exception purpose: structure is no release of data, so no use notice."""
    done = gw.psql("gov_office", r"\d dmv.lawful_presence", purpose="governor_authorized",
                   authorization_id="GOV-2026-0001")
    assert done.returncode == 0, done.stderr
    assert "immigration_status" in done.stdout
    assert "use notice" not in done.stderr
    assert last_request(gw, "gov_office")["use_notice"] is False
    data = gw.psql("gov_office", "SELECT c.relname, p.first_name FROM pg_catalog.pg_class c, dmv.persons p "
                   "WHERE c.relname = 'persons' AND p.person_id = 7",
                   purpose="governor_authorized", authorization_id="GOV-2026-0001")
    assert data.returncode == 0, data.stderr
    assert "gateway: use notice:" in data.stderr  # catalog and data together: the data is released
