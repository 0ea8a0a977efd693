"""The attestation re-checks every grant against the law from the record alone, not the policy in force.

End to end: a gateway running a loosened policy (which ``serve`` would refuse, so it is built in
process) accepts a detainer as a court order and gives personal identifying information to ice_ero
under no purpose; the report made from that request log refuses the attestation and names both.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_request_record
from gateway.audit.report import Quarter, Verification, build_report
from gateway.config import Settings
from gateway.frontdoor.http import build_app
from gateway.pipeline import Gateway
from tests.audit_samples import quarter_records
from tests.http_support import REQUESTERS, Client, log_records
from tests.test_policy_lawcheck import POLICY, _edit

HASHER = LiteralHasher(b"k" * 32)
OK = Verification(True, "chain intact")
STATUS = "dmv.lawful_presence.immigration_status"


def _record(**fields: object) -> dict:
    base = dict(hasher=HASHER, request_id="r-1", requester="x", agency="Colorado Bureau of Investigation",
                front_door="wire", decision="allow", statement_kind="select", time="2026-08-01T10:00:00.000000Z",
                accesses=[{"column": STATUS, "tags": ["immigration_status"], "usage": ["output"]}])
    base.update(fields)
    return build_request_record(**base)  # type: ignore[arg-type]


def _violations(*records: dict) -> list[str]:
    q = Quarter.parse("2026-Q3")
    report = build_report(list(records), q, OK)
    return [v.reason for v in report.attestation.violations] if not report.attestation.made else []


def test_lawful_releases_are_attested() -> None:
    lawful = _record(claim={"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"},
                     certification={"status": "current", "id": "C-1"})
    assert _violations(lawful) == []


def test_untagged_status_under_no_purpose_is_caught() -> None:
    # a loosened policy tagged the status column as nothing: the law's own list still knows it
    sneaky = _record(claim={"purpose": "service_delivery"},
                     accesses=[{"column": STATUS, "tags": [], "usage": ["output"]}])
    assert any("not an exception" in v for v in _violations(sneaky))


def test_detainer_accepted_as_court_order_is_caught() -> None:
    detainer = _record(claim={"purpose": "court_order", "order_reference": "ICE I-247A detainer 2026CV001234"},
                       registry_entry={"kind": "court_order", "id": "2026CV001234", "label": "x", "scope": "schema dmv"})
    assert any("immigration detainer (I-247)" in v for v in _violations(detainer))
    subpoena = _record(claim={"purpose": "court_order", "order_reference": "administrative subpoena 2026CV001234"},
                       registry_entry={"kind": "court_order", "id": "2026CV001234", "label": "x", "scope": "schema dmv"})
    assert any("subpoena" in v for v in _violations(subpoena))


def test_pii_to_an_immigration_agency_under_no_purpose_is_caught() -> None:
    ice = _record(agency="U.S. Immigration and Customs Enforcement", claim=None,
                  accesses=[{"column": "dmv.persons.first_name", "tags": [], "usage": ["output"]}])
    assert any("immigration agency" in v for v in _violations(ice))
    by_kind = _record(agency="Some Office", claim=None,
                      accesses=[{"column": "dmv.persons.first_name", "tags": ["pii"], "usage": ["output"]}])
    by_kind["requester_kind"] = "immigration_agency"  # the field the requester kinds add to the record
    assert any("immigration agency" in v for v in _violations(by_kind))


def test_release_without_certification_or_registry_entry_is_caught() -> None:
    uncertified = _record(claim={"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"},
                          certification={"status": "certification_expired", "detail": "old"},
                          accesses=[{"column": "dmv.persons.last_name", "tags": ["pii"], "usage": ["output"]}])
    assert any("24-74-105" in v for v in _violations(uncertified))
    unnamed = _record(claim={"purpose": "governor_authorized", "authorization_id": "GOV-X"}, registry_entry=None)
    assert any("naming no governor authorization" in v for v in _violations(unnamed))


def test_injected_barred_grant_in_a_quarter_refuses_the_attestation() -> None:
    records = quarter_records(HASHER, n=300)
    assert build_report(records, Quarter.parse("2026-Q3"), OK).attestation.made
    records.append(_record(request_id="injected", agency="U.S. Immigration and Customs Enforcement",
                           claim={"purpose": "civil_immigration_enforcement"}, decision="redact"))
    report = build_report(records, Quarter.parse("2026-Q3"), OK)
    assert not report.attestation.made
    assert [v.request_id for v in report.attestation.violations] == ["injected"]


def test_loosened_policy_through_a_real_gateway(dmv_dsn: str, tmp_path: Path) -> None:
    loose = _edit("      - pattern: '\\bI-?\\s?247[A-Z]?\\b|\\bdetainer\\b'\n        names: an immigration detainer (I-247)\n", "")
    loose = _edit("  without_certification:\n    pii: deny", "  without_certification: {}", loose)
    # an immigration agency is civil_immigration_enforcement whatever it states (SPEC 9): loosen that purpose
    loose = _edit("    default_action: deny\n    grants:\n      pii: deny\n      immigration_status: deny\n",
                  "    grants:\n      pii: allow\n      immigration_status: deny\n", loose)
    (tmp_path / "policy.yaml").write_text(loose)
    audit = tmp_path / "requests.jsonl"
    gw = Gateway.from_settings(Settings(backend_dsn=dmv_dsn, audit_path=str(audit), policy=str(tmp_path / "policy.yaml"),
                                        requesters=REQUESTERS))
    with asyncio.Runner() as runner:
        runner.run(gw.start())
        try:
            client = Client(runner, build_app(gw))
            detainer = client.query("ag_counsel", {
                "sql": f"SELECT immigration_status FROM {STATUS.rsplit('.', 1)[0]} WHERE person_id = 7",
                "purpose": "court_order", "order_reference": "ICE detainer 2026CV001234"})
            assert detainer.status_code == 200, detainer.text  # the loosened policy let it through
            ice = client.query("ice_ero", {"sql": "SELECT first_name FROM dmv.persons WHERE person_id = 7"})
            assert ice.status_code == 200, ice.text
        finally:
            runner.run(gw.stop())
    records = log_records(audit)
    now = datetime.now(timezone.utc)
    quarter = Quarter.parse(f"{now.year}-Q{(now.month - 1) // 3 + 1}")
    report = build_report(records, quarter, OK)
    assert not report.attestation.made
    reasons = " | ".join(v.reason for v in report.attestation.violations)
    assert "immigration detainer (I-247)" in reasons and "immigration agency" in reasons
