"""The quarterly report: aggregation over a synthetic quarter, the attestation, and its formats."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from audit_samples import quarter_records, write_quarter_log
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_request_record
from gateway.audit.report import Quarter, Verification, build_report
from gateway.audit.report_render import to_csv, to_html, to_json
from gateway.cli import main as gateway_main

KEY = bytes(range(32))
HASHER = LiteralHasher(KEY)
OK = Verification(True, "chain intact")
Q3 = Quarter.parse("2026-Q3")


def test_quarter_bounds() -> None:
    assert (str(Q3.start.date()), str(Q3.end.date())) == ("2026-07-01", "2026-10-01")
    assert str(Quarter.parse("2026q4").end.date()) == "2027-01-01"
    with pytest.raises(ValueError):
        Quarter.parse("2026-Q5")


def small_log() -> list[dict[str, object]]:
    common = dict(hasher=HASHER, front_door="pg", statement_kind="select", sql_received="select 1")
    status = {"column": "dmv.lawful_presence.immigration_status", "tags": ["immigration_status"], "usage": ["output"]}
    name = {"column": "dmv.persons.last_name", "tags": ["pii"], "usage": ["output"]}
    return [
        build_request_record(request_id="a", requester="clerk", agency="Colorado DMV", claim={"purpose": "service_delivery"},
                             accesses=[name, status], decision="redact", masked=[status["column"]],
                             time="2026-07-02T10:00:00.000000Z", **common),
        build_request_record(request_id="b", requester="cbi", agency="Colorado Bureau of Investigation",
                             claim={"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"},
                             accesses=[status], decision="allow", time="2026-08-02T10:00:00.000000Z", **common),
        build_request_record(request_id="c", requester="ice_ero", agency="U.S. Immigration and Customs Enforcement",
                             claim={"purpose": "civil_immigration_enforcement"}, accesses=[name], decision="deny",
                             reason="no personal identifying information", rule="civil", time="2026-09-02T10:00:00.000000Z",
                             **common),
        build_request_record(request_id="z", requester="clerk", agency="Colorado DMV", decision="allow",
                             time="2026-10-02T10:00:00.000000Z", **common),  # next quarter
    ]  # fmt: skip


def test_aggregation_on_a_small_log() -> None:
    report = build_report(small_log(), Q3, OK)
    assert report.totals == {"requests": 3, "allow": 1, "redact": 1, "deny": 1}
    assert {c.key: c.total for c in report.by_agency} == {
        "Colorado DMV": 1, "Colorado Bureau of Investigation": 1, "U.S. Immigration and Customs Enforcement": 1}  # fmt: skip
    assert [(r.request_id, r.released) for r in report.immigration] == [
        ("a", ()), ("b", ("dmv.lawful_presence.immigration_status",))]  # fmt: skip
    assert report.immigration[1].justification == "case_number: CR-2026-0042"
    assert [r.request_id for r in report.refusals] == ["c"]
    assert [r.request_id for r in report.immigration_agencies] == ["c"]
    assert report.attestation.made and not report.attestation.violations


def test_attestation_refused_when_the_log_shows_a_barred_grant() -> None:
    records = small_log()
    status = {"column": "dmv.lawful_presence.immigration_status", "tags": ["immigration_status"], "usage": ["output"]}
    records.append(build_request_record(
        hasher=HASHER, request_id="bad", requester="clerk", agency="Colorado DMV", front_door="http",
        claim={"purpose": "service_delivery"}, accesses=[status], decision="allow", time="2026-08-03T00:00:00.000000Z"))
    records.append(build_request_record(
        hasher=HASHER, request_id="bad2", requester="cbi", agency="CBI", front_door="http",
        claim={"purpose": "criminal_law_enforcement"}, accesses=[status], decision="allow",
        time="2026-08-04T00:00:00.000000Z"))  # fmt: skip
    report = build_report(records, Q3, OK)
    assert not report.attestation.made
    assert "cannot be made" in report.attestation.statement and "2 request(s)" in report.attestation.statement
    reasons = {r.request_id: r.reason for r in report.attestation.violations}
    assert "service_delivery" in reasons["bad"] and "without its case_number" in reasons["bad2"]
    assert "Attestation refused" in to_html(report)


def test_attestation_refused_when_the_chain_is_broken() -> None:
    report = build_report(small_log(), Q3, Verification(False, "CHAIN BROKEN: ..."))
    assert not report.attestation.made and "chain is broken" in report.attestation.statement


def test_synthetic_quarter_and_formats_agree() -> None:
    records = quarter_records(HASHER)
    report = build_report(records, Q3, OK)
    requests = [r for r in records if r["type"] == "request"]
    assert report.totals["requests"] == len(requests) == 1200
    assert sum(c.total for c in report.by_requester) == 1200 == sum(c.total for c in report.by_week)
    assert report.attestation.made
    assert any(u.kind == "bulk" for u in report.unusual)
    assert any(u.kind == "repeated lookup" and u.requester == "dmv_clerk" for u in report.unusual)
    assert {r.requester for r in report.immigration_agencies} == {"ice_ero"}
    data = json.loads(to_json(report))
    assert data["totals"] == report.totals and len(data["refusals"]) == len(report.refusals)
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert {r["key"]: int(r["total"]) for r in rows if r["section"] == "totals"}["requests"] == 1200
    assert sum(1 for r in rows if r["section"] == "refusal") == len(report.refusals)
    page = to_html(report)
    assert page.count("<svg") == 4 and "Attestation</strong>" in page
    assert "CO00042042" not in page


def test_barred_synthetic_quarter_refuses_attestation() -> None:
    report = build_report(quarter_records(HASHER, barred=True), Q3, OK)
    assert not report.attestation.made and report.attestation.violations
    assert all(v.purpose == "civil_immigration_enforcement" for v in report.attestation.violations)


def test_report_command_writes_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_quarter_log(tmp_path, 200)
    for fmt in ("html", "csv", "json"):
        out = tmp_path / f"r.{fmt}"
        assert gateway_main(["report", "--quarter", "2026-Q3", str(tmp_path), "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 500
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["verification"]["ok"] and data["totals"]["requests"] == 200 and data["attestation"]["made"]
    assert "attestation made" in capsys.readouterr().out
    assert gateway_main(["audit", "search", str(tmp_path), "--license", "CO00042042", "--json"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert found and all(r["requester"] == "dmv_clerk" for r in found)
    assert gateway_main(["audit", "search", str(tmp_path), "--decision", "deny", "--agency", "immigration"]) == 0
    table = capsys.readouterr().out
    assert "ice_ero" in table and "record(s)" in table and "dmv_clerk " not in table


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium is not installed")
def test_pdf_report(tmp_path: Path) -> None:
    write_quarter_log(tmp_path, 60)
    out = tmp_path / "r.pdf"
    assert gateway_main(["report", "--quarter", "2026-Q3", str(tmp_path), "--format", "pdf", "--out", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"
