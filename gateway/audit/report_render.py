"""The quarterly report as HTML (inline SVG charts), CSV and JSON: the same figures in each.

Pure: :class:`~gateway.audit.report.QuarterReport` in, text out. The HTML is one self-contained page
(no script, no external resource) that prints on A4.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from html import escape
from pathlib import Path
from string import Template

from gateway.audit.report import Count, QuarterReport, Row
from gateway.audit.report_compliance_render import compliance_csv_rows, compliance_html
from gateway.audit.report_svg import horizontal_bars, weekly_columns


def all_weeks(report: QuarterReport) -> tuple[Count, ...]:
    """Every week of the quarter (by its Monday), with zeros where nothing was requested, so the
    chart's axis is the quarter's time line and not only the weeks that had requests."""
    known = {c.key: c for c in report.by_week}
    start, end = date.fromisoformat(report.period_start), date.fromisoformat(report.period_end)
    monday = start - timedelta(days=start.weekday())
    weeks = []
    while monday < end:
        key = monday.isoformat()
        weeks.append(known.pop(key, Count(key, 0)))
        monday += timedelta(days=7)
    return tuple(sorted(weeks + list(known.values()), key=lambda c: c.key))


def to_json(report: QuarterReport) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"


CSV_FIELDS = (
    "section", "key", "agency", "total", "allow", "redact", "deny", "time", "request_id", "requester",
    "purpose", "decision", "reason", "rule", "justification", "columns", "released", "persons", "detail",
)  # fmt: skip


def to_csv(report: QuarterReport) -> str:
    """One table with a ``section`` column: counts, listed requests, unusual access, verification."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for key, value in report.totals.items():
        writer.writerow({"section": "totals", "key": key, "total": value})
    writer.writerow({"section": "totals", "key": "login_failed", "total": report.login_failures})
    writer.writerow({"section": "totals", "key": "purpose_change", "total": report.purpose_changes})
    for section, counts in (
        ("by_agency", report.by_agency),
        ("by_requester", report.by_requester),
        ("by_purpose", report.by_purpose),
        ("by_week", report.by_week),
    ):
        for c in counts:
            writer.writerow({"section": section, **_count_fields(c)})
    for section, rows in (
        ("immigration_status", report.immigration),
        ("refusal", report.refusals),
        ("immigration_agency", report.immigration_agencies),
        ("barred_purpose_violation", report.attestation.violations),
    ):
        for r in rows:
            writer.writerow({"section": section, **_row_fields(r)})
    for u in report.unusual:
        writer.writerow({"section": "unusual", "key": u.kind, "requester": u.requester, "total": u.count, "detail": u.detail})
    for row in compliance_csv_rows(report.compliance):
        writer.writerow(row)
    writer.writerow({"section": "verification", "key": "ok" if report.verification.ok else "broken",
                     "detail": report.verification.summary})  # fmt: skip
    writer.writerow({"section": "attestation", "key": "made" if report.attestation.made else "refused",
                     "detail": report.attestation.statement})  # fmt: skip
    return out.getvalue()


def _count_fields(c: Count) -> dict[str, object]:
    return {"key": c.key, "agency": c.agency, "total": c.total, "allow": c.allow, "redact": c.redact, "deny": c.deny}


def _row_fields(r: Row) -> dict[str, object]:
    return {
        "time": r.time, "request_id": r.request_id, "requester": r.requester, "agency": r.agency,
        "purpose": r.purpose, "decision": r.decision, "reason": r.reason, "rule": r.rule,
        "justification": r.justification, "columns": " ".join(r.columns), "released": " ".join(r.released),
        "persons": "" if r.persons is None else r.persons,
    }  # fmt: skip


PAGE = Template(Path(__file__).with_name("report_template.html").read_text("utf-8"))


def _table(headers: tuple[str, ...], rows: list[tuple[object, ...]], empty: str) -> str:
    if not rows:
        return f"<p class='empty'>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _request_rows(rows: tuple[Row, ...], *, justification: bool = True) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for r in rows:
        detail = r.justification if justification else r.reason
        released = ", ".join(c.rsplit(".", 1)[-1] for c in r.released) or "none (masked or refused)"
        out.append((r.time[:16].replace("T", " "), r.requester, r.purpose, r.decision, detail or "-", released))
    return out


def _counts_table(counts: tuple[Count, ...], first: str, with_agency: bool = False) -> str:
    headers = (first, "agency", "requests", "allowed", "redacted", "denied") if with_agency else (
        first, "requests", "allowed", "redacted", "denied")  # fmt: skip
    rows = [
        ((c.key, c.agency) if with_agency else (c.key,)) + (c.total, c.allow, c.redact, c.deny) for c in counts
    ]
    return _table(headers, rows, "No requests.")


def immigration_summary(rows: tuple[Row, ...]) -> list[tuple[object, ...]]:
    """Per purpose: requests touching immigration status, how many released it, masked it, were refused."""
    table: dict[str, list[int]] = {}
    for r in rows:
        counts = table.setdefault(r.purpose, [0, 0, 0, 0])
        counts[0] += 1
        if r.decision == "deny":
            counts[3] += 1
        elif r.released:
            counts[1] += 1
        else:
            counts[2] += 1
    return [(purpose, *counts) for purpose, counts in sorted(table.items(), key=lambda kv: -kv[1][0])]


def refusal_summary(rows: tuple[Row, ...]) -> list[tuple[object, ...]]:
    """Refusals grouped by reason, most frequent first, with the requesters concerned."""
    table: dict[tuple[str, str], tuple[int, set[str]]] = {}
    for r in rows:
        count, who = table.get((r.reason, r.rule), (0, set()))
        who.add(r.requester)
        table[(r.reason, r.rule)] = (count + 1, who)
    items = sorted(table.items(), key=lambda kv: -kv[1][0])
    return [(reason, rule or "-", count, ", ".join(sorted(who))) for (reason, rule), (count, who) in items]


def agency_summary(rows: tuple[Row, ...]) -> list[tuple[object, ...]]:
    """Requests from immigration agencies grouped by requester, purpose, decision and reason."""
    table: dict[tuple[str, str, str, str], int] = {}
    for r in rows:
        key = (r.requester, r.purpose, r.decision, r.reason)
        table[key] = table.get(key, 0) + 1
    return [(*key, count) for key, count in sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))]


def to_html(report: QuarterReport, *, title: str = "Colorado DMV request log", generated_at: str = "") -> str:
    t = report.totals
    att = report.attestation
    ver = report.verification
    cards = "".join(
        f"<div class='card {cls}'><div class='n'>{value}</div><div class='l'>{escape(label)}</div></div>"
        for value, label, cls in (
            (t["requests"], "requests", ""),
            (t["allow"], "allowed", "allow"),
            (t["redact"], "redacted", "redact"),
            (t["deny"], "refused", "deny"),
            (len(report.immigration), "touched immigration status", ""),
            (len(report.immigration_agencies), "from immigration agencies", ""),
        )
    )
    violations = _table(
        ("time", "requester", "purpose", "decision", "why barred", "status columns released"),
        _request_rows(att.violations, justification=False),
        "",
    ) if att.violations else ""  # fmt: skip
    findings = "".join(f"<li>{escape(f)}</li>" for f in ver.findings[:20])
    unusual = _table(
        ("kind", "requester", "detail", "count"),
        [(u.kind, u.requester, u.detail, u.count) for u in report.unusual],
        "No bulk or unusual access above the thresholds.",
    )
    return PAGE.substitute(
        title=escape(title),
        quarter=escape(report.quarter),
        period=f"{escape(report.period_start)} to {escape(report.period_end)} (end exclusive, UTC)",
        generated=escape(generated_at),
        instances=escape(", ".join(report.instances) or "-"),
        cards=cards,
        attestation_class="ok" if att.made else "refused",
        attestation_title="Attestation" if att.made else "Attestation refused",
        attestation=escape(att.statement),
        violations=violations,
        verification_class="ok" if ver.ok else "refused",
        verification=escape(ver.summary),
        findings=f"<ul>{findings}</ul>" if findings else "",
        weekly_chart=weekly_columns(all_weeks(report), width=940),
        agency_chart=horizontal_bars(report.by_agency, width=940, label_width=420),
        purpose_chart=horizontal_bars(report.by_purpose, width=470, label_width=210),
        requester_chart=horizontal_bars(report.by_requester, width=470, label_width=120),
        agency_table=_counts_table(report.by_agency, "agency"),
        requester_table=_counts_table(report.by_requester, "requester", with_agency=True),
        purpose_table=_counts_table(report.by_purpose, "purpose"),
        immigration_summary=_table(
            ("purpose", "requests", "status released", "status masked", "refused"),
            immigration_summary(report.immigration),
            "No request touched immigration-status information.",
        ),
        refusal_summary=_table(("reason", "rule", "refusals", "requesters"), refusal_summary(report.refusals),
                               "No request was refused."),
        immigration_table=_table(
            ("time", "requester", "purpose", "decision", "exception (justification)", "status columns released"),
            _request_rows(report.immigration),
            "No request touched immigration-status information.",
        ),
        refusal_table=_table(
            ("time", "requester", "agency", "purpose", "reason", "rule"),
            [(r.time[:16].replace("T", " "), r.requester, r.agency, r.purpose, r.reason, r.rule or "-")
             for r in report.refusals],
            "No request was refused.",
        ),  # fmt: skip
        agencies_summary=_table(
            ("requester", "purpose", "decision", "reason", "requests"),
            agency_summary(report.immigration_agencies),
            "No request from an immigration agency or for civil immigration enforcement.",
        ),
        agencies_table=_table(
            ("time", "requester", "purpose", "decision", "reason", "status columns released"),
            _request_rows(report.immigration_agencies, justification=False),
            "No request from an immigration agency or for civil immigration enforcement.",
        ),
        unusual_table=unusual,
        login_failures=report.login_failures,
        purpose_changes=report.purpose_changes,
        compliance=compliance_html(report.compliance),
    )
