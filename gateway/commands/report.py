"""``gateway report --quarter 2026-Q3``: the quarterly report of the request log (SB21-131)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HELP = "write the quarterly report of the request log (html, csv, json or pdf)"
DESCRIPTION = (
    "Aggregate the request log for one quarter: requests by agency, requester, purpose and decision; "
    "every request that touched immigration-status information and under which exception; every "
    "refusal; requests from immigration agencies; bulk or unusual access; the chain verification "
    "result; and the attestation that no request was granted for a barred purpose (refused, with the "
    "reason, when the log shows one or the chain is broken)."
)

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quarter", required=True, help="the quarter, like 2026-Q3")
    parser.add_argument("--format", choices=("html", "csv", "json", "pdf"), default="html")
    parser.add_argument("--out", type=Path, help="output file (default: report-QUARTER.FORMAT; '-' for stdout)")
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="log files or the log directory (default: the configured audit_path's folder)")
    parser.add_argument("--dsn", help="read the PostgreSQL sink at this DSN instead of files")
    parser.add_argument("--table", default=None, help="audit table for --dsn")
    parser.add_argument("--key", type=Path, help="the log key file (default: audit.key beside the log)")
    parser.add_argument("--config", help="settings file (for the default audit_path)")
    parser.add_argument("--title", default="Colorado DMV request log", help="the report's title")
    parser.add_argument("--bulk-persons", type=int, default=100, help="persons per request counted as bulk")
    parser.add_argument("--requests-per-requester", type=int, default=1000,
                        help="requests in the quarter flagged as high volume")
    parser.add_argument("--repeated-lookups", type=int, default=5,
                        help="requests by one requester naming the same value, flagged as repeated look-ups")
    parser.add_argument("--requesters", default=os.environ.get("GATEWAY_REQUESTERS"),
                        help="requesters file, for the certifications on file (default: $GATEWAY_REQUESTERS)")
    parser.add_argument("--policy", default=os.environ.get("GATEWAY_POLICY", "policies/colorado-dmv.yaml"),
                        help="policy file, for certification_valid_days (default: $GATEWAY_POLICY)")
    parser.add_argument("--notices", type=Path, help="the subject-notice queue (default: beside the log)")


def _verification(args: argparse.Namespace, paths: list[Path], key: bytes) -> Any:
    from gateway.audit.report import Verification

    if args.dsn:
        from gateway.audit.pg_sink import DEFAULT_TABLE, verify_pg

        result = asyncio.run(verify_pg(args.dsn, key, args.table or DEFAULT_TABLE))
    else:
        from gateway.audit.verify import verify_files

        result = verify_files(paths, key)
    shown = tuple(str(f) for f in result.findings if f.severity != "info")
    return Verification(result.ok, result.summary(), shown)


def _certification_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    if not args.requesters:
        return []
    from datetime import date

    from gateway.identity.certifications import summary
    from gateway.identity.requesters import load_requesters
    from gateway.policy.load import load_policy

    days = load_policy(args.policy).file.external_requesters.certification_valid_days
    rows: list[dict[str, Any]] = []
    for entry in sorted(load_requesters(args.requesters), key=lambda e: e.requester.name):
        req = entry.requester
        if req.internal or req.is_auditor:
            continue
        found = summary(req.name, req.agency, entry.certifications, req.certification, date.today(), days)
        rows += found or [{"requester": req.name, "agency": req.agency, "id": None, "status": "missing"}]
    return rows


def _compliance(args: argparse.Namespace, paths: list[Path], records: list[dict[str, Any]], quarter: Any) -> Any:
    from gateway.audit.report_compliance import build_compliance
    from gateway.notices.queue import FILE_NAME, NoticeQueue

    queue = args.notices
    if queue is None and paths:
        queue = (paths[0] if paths[0].is_dir() else paths[0].parent) / FILE_NAME
    notices = NoticeQueue(queue).notices() if queue is not None else []
    return build_compliance(records, quarter.start, quarter.end, certifications=_certification_rows(args),
                            notices=notices)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: str, out: Path) -> None:
    """Print ``html`` to ``out`` with headless chromium; raises RuntimeError with a clear message."""
    browser = find_chromium()
    if browser is None:
        try:
            import weasyprint  # type: ignore[import-not-found, import-untyped]
        except ImportError:
            raise RuntimeError("PDF needs chromium (apt-get install chromium) or weasyprint (pip install weasyprint); "
                               "use --format html and print it instead") from None
        weasyprint.HTML(string=html).write_pdf(str(out))
        return
    with tempfile.TemporaryDirectory(prefix="gateway-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, "utf-8")
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer",
               f"--print-to-pdf={out.resolve()}", page.as_uri()]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"chromium could not print the PDF: {done.stderr.strip()[-300:]}")


def run(args: argparse.Namespace) -> int:
    from gateway.audit.report import Quarter, Thresholds, build_report
    from gateway.audit.report_render import to_csv, to_html, to_json
    from gateway.commands.audit import _records, _resolve, _UsageError
    from gateway.errors import ConfigError

    try:
        quarter = Quarter.parse(args.quarter)
        paths, key = _resolve(args)
        verification = _verification(args, paths, key)
        thresholds = Thresholds(args.bulk_persons, args.requests_per_requester, args.repeated_lookups)
        records = _records(args, paths)
        report = build_report(records, quarter, verification, thresholds)
        report = dataclasses.replace(report, compliance=_compliance(args, paths, records, quarter))
    except (_UsageError, ConfigError, ValueError) as exc:
        print(f"gateway report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gateway report: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = args.out or Path(f"report-{quarter}.{args.format}")
    if args.format == "pdf":
        if str(out) == "-":
            print("gateway report: a PDF needs --out FILE", file=sys.stderr)
            return 2
        try:
            html_to_pdf(to_html(report, title=args.title, generated_at=generated), out)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            print(f"gateway report: {exc}", file=sys.stderr)
            return 1
    else:
        text = {"html": lambda: to_html(report, title=args.title, generated_at=generated),
                "csv": lambda: to_csv(report), "json": lambda: to_json(report)}[args.format]()  # fmt: skip
        if str(out) == "-":
            sys.stdout.write(text)
            return 0
        out.write_text(text, "utf-8")
    state = "attestation made" if report.attestation.made else "ATTESTATION REFUSED"
    print(f"wrote {out}: {report.totals['requests']} requests in {quarter}; {state}")
    return 0
