"""The picture of the report's compliance sections: docs/report-compliance.png.

    .venv/bin/python bench/report_compliance_picture.py [--out docs/report-compliance.png]

A synthetic 2026-Q3 request log (tests/audit_samples.py), the example requesters with one more
certification that expires within 30 days, and a subject-notice queue with one overdue notice go
through ``gateway report --format pdf`` (weasyprint or chromium); the pages holding the compliance
sections are rasterized with pypdfium2 and stacked into one PNG.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-compliance.png")
    args = parser.parse_args()
    import pypdfium2  # type: ignore[import-not-found]
    from PIL import Image

    from gateway.cli import main as gateway_main
    from gateway.notices.due import NoticeRules
    from gateway.notices.queue import NoticeQueue
    from gateway.notices.service import SubjectNotices
    from tests.audit_samples import write_quarter_log
    from tests.compliance_support import write_files

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        write_quarter_log(folder, 1200)
        write_files(folder)
        signed = (date.today() - timedelta(days=350)).isoformat()
        (folder / "certifications.yaml").write_text(
            "version: 1\ncertifications:\n"
            f"  - {{id: CBI-2025-11, requester: cbi_analyst, signer: 'Director, CBI', signed_on: {signed},"
            " form_version: CO-24-74-105 v2, no_immigration_use: true, no_redisclosure: true}\n")
        queue = NoticeQueue(folder / "subject-notices.ndjson")
        service = SubjectNotices(queue, NoticeRules(business_days=True))
        for day, rid, persons in ((3, "q3-00412", ["person:1187", "person:2214"]), (20, "q3-00877", ["person:93"])):
            service.enqueue(request_id=rid, requester="ice_ero", agency="U.S. Immigration and Customs Enforcement",
                            reason="request by an immigration agency",
                            asked="civil_immigration_enforcement: dmv.licenses.license_number, dmv.persons.first_name",
                            persons=persons, when=datetime(2026, 9, day, 15, tzinfo=timezone.utc))
        queue.mark_sent("N-q3-00412-1")
        queue.defer("N-q3-00877-1", "sealed by order of the court")
        pdf = folder / "report.pdf"
        rc = gateway_main(["report", "--quarter", "2026-Q3", str(folder), "--format", "pdf", "--out", str(pdf),
                           "--requesters", str(folder / "requesters.yaml"), "--policy", str(folder / "policy.yaml")])
        if rc:
            return rc
        document = pypdfium2.PdfDocument(str(pdf))
        pages = [i for i in range(len(document)) if "Statutory requests" in document[i].get_textpage().get_text_range()
                 or "Subject notices" in document[i].get_textpage().get_text_range()]
        images = [document[i].render(scale=1.4).to_pil() for i in pages]
        width = max(im.width for im in images)
        sheet = Image.new("RGB", (width, sum(im.height for im in images)), "white")
        y = 0
        for im in images:
            sheet.paste(im, (0, y))
            y += im.height
        sheet.save(args.out, optimize=True)
        print(f"wrote {args.out} (pages {[p + 1 for p in pages]} of {len(document)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
