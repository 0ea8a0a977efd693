"""The report's compliance sections through ``gateway report``: statutory counts, year to date,
certifications on file (and expiring within 30 days), subject notices with the overdue ones."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.cli import main as gateway_main
from gateway.notices.due import NoticeRules
from gateway.notices.queue import NoticeQueue
from gateway.notices.service import SubjectNotices
from tests.audit_samples import write_quarter_log
from tests.compliance_support import write_files


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_quarter_log(tmp_path, 300)
    write_files(tmp_path)
    signed = (date.today() - timedelta(days=350)).isoformat()  # expires within 30 days
    (tmp_path / "certifications.yaml").write_text(
        "version: 1\ncertifications:\n"
        f"  - {{id: CBI-SOON, requester: cbi_analyst, signer: J. Doe, signed_on: {signed}, form_version: v2,"
        " no_immigration_use: true, no_redisclosure: true}\n")
    service = SubjectNotices(NoticeQueue(tmp_path / "subject-notices.ndjson"), NoticeRules())
    late = datetime(2026, 8, 3, 10, tzinfo=timezone.utc)
    service.enqueue(request_id="q3-ice", requester="ice_ero", agency="ICE", reason="request by an immigration agency",
                    asked="civil_immigration_enforcement: dmv.persons.first_name", persons=["person:5", "person:6"],
                    when=late)
    NoticeQueue(tmp_path / "subject-notices.ndjson").mark_sent("N-q3-ice-2")
    return tmp_path


def _report(folder: Path, fmt: str) -> Path:
    out = folder / f"report.{fmt}"
    args = ["report", "--quarter", "2026-Q3", str(folder), "--format", fmt, "--out", str(out),
            "--requesters", str(folder / "requesters.yaml"), "--policy", str(folder / "policy.yaml")]
    assert gateway_main(args) == 0
    return out


def test_compliance_sections_in_json_html_and_csv(folder: Path) -> None:
    data = json.loads(_report(folder, "json").read_text())["compliance"]
    statutory = {s["purpose"]: s for s in data["statutory"]}
    assert data["statutory_total"] == sum(s["requests"] for s in data["statutory"]) > 0
    assert "civil_immigration_enforcement" in statutory and "criminal_law_enforcement" in statutory
    assert data["use_notices"] > 0
    assert data["year_to_date"]["period_start"] == "2026-01-01" and data["year_to_date"]["requests"] == 300
    certs = {c.get("id"): c for c in data["certifications"]}
    assert certs["CBI-SOON"]["status"] == "current" and certs["CBI_ANALYST-CERT-2026"]["status"] == "expired"
    assert any(c["requester"] == "ice_ero" and c["status"] == "missing" for c in data["certifications"])
    assert [c["id"] for c in data["expiring"]] == ["CBI-SOON"]
    assert data["notices"]["queued_in_quarter"] == 2 and data["notices"]["sent"] == 1
    assert [n["id"] for n in data["overdue"]] == ["N-q3-ice-1"]

    page = _report(folder, "html").read_text()
    for heading in ("Statutory requests", "Year to date", "Certifications on file", "Subject notices"):
        assert heading in page
    assert "N-q3-ice-1" in page and "CBI-SOON" in page and "Expiring within 30 days: cbi_analyst" in page
    rows = list(csv.DictReader(io.StringIO(_report(folder, "csv").read_text())))
    assert [r["key"] for r in rows if r["section"] == "notice_overdue"] == ["N-q3-ice-1"]
    assert any(r["section"] == "year_to_date" and r["key"] == "requests" and r["total"] == "300" for r in rows)


def test_pdf_report_through_weasyprint_or_chromium(folder: Path) -> None:
    from gateway.commands.report import find_chromium

    if find_chromium() is None:
        pytest.importorskip("weasyprint")
    assert _report(folder, "pdf").read_bytes()[:5] == b"%PDF-"
