"""HTML of the report's compliance sections (its own template, ``report_compliance.html``)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template

from gateway.audit.report_compliance import ComplianceSections

PART = Template(Path(__file__).with_name("report_compliance.html").read_text("utf-8"))


def _table(headers: tuple[str, ...], rows: list[tuple[object, ...]], empty: str, cls: str = "") -> str:
    if not rows:
        return f"<p class='empty'>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def compliance_html(c: ComplianceSections | None) -> str:
    if c is None:
        return ""
    ytd = c.year_to_date
    expiring = ", ".join(f"{r['requester']} ({r['id']}, {r['expires_on']})" for r in c.expiring)
    return PART.substitute(
        statutory_total=c.statutory_total,
        use_notices=c.use_notices,
        statutory_table=_table(
            ("purpose", "requests", "granted", "refused", "status released"),
            [(s.purpose, s.requests, s.granted, s.refused, s.status_released) for s in c.statutory],
            "No statutory request in the quarter."),
        ytd_period=escape(f"{ytd['period_start']} to {ytd['period_end']}"),
        ytd_table=_table(
            ("requests", "statutory requests", "status released", "refused", "immigration agencies",
             "barred grants", "use notices", "subject notices"),
            [(ytd["requests"], ytd["statutory_requests"], ytd["status_released"], ytd["refused"],
              ytd["immigration_agency"], ytd["barred"], ytd["use_notices"], ytd["subject_notices"])], ""),
        expiring_note=escape(f"Expiring within 30 days: {expiring}." if expiring else "None expires within 30 days."),
        certifications_table=_table(
            ("requester", "agency", "certification", "signer", "signed", "form", "expires", "status"),
            [(r["requester"], r.get("agency", ""), r.get("id") or "-", r.get("signer") or "-", r.get("signed_on") or "-",
              r.get("form_version") or "-", r.get("expires_on") or "-", r["status"]) for r in c.certifications],
            "No requester outside the agency."),
        notices_queued=c.notices["queued_in_quarter"], notices_sent=c.notices["sent"],
        notices_deferred=c.notices["deferred"], notices_pending=c.notices["pending"],
        notices_overdue=c.notices["overdue_now"],
        overdue_table=_table(
            ("notice", "person", "requester", "agency", "requested", "due", "reason"),
            [(n["id"], n["person"], n["requester"], n["agency"], n["requested_at"][:10], n["due"], n["reason"])
             for n in c.overdue],
            "No overdue notice."),
        relayed_table=_table(
            ("requester", "ORI", "end user", "requests", "refused"),
            [(r["requester"], r["ori"], r["end_user"], r["requests"], r["refused"]) for r in c.relayed],
            "No request relayed by a switch or vendor."),
        writes_table=_table(
            ("requester", "agency", "writes", "allowed", "refused", "rows affected", "24-74-104 writes",
             "24-74-104 refused"),
            [(r["requester"], r["agency"], r["writes"], r["allowed"], r["refused"], r["rows_affected"], r["status_writes"],
              r["refused_24_74_104"]) for r in c.writes],
            "No staff write in the quarter."),
    )  # fmt: skip


def compliance_csv_rows(c: ComplianceSections | None) -> list[dict[str, object]]:
    """Rows for the report's CSV (its ``section`` column names the part)."""
    if c is None:
        return []
    rows: list[dict[str, object]] = [{"section": "statutory", "key": s.purpose, "total": s.requests, "allow": s.granted,
                                      "deny": s.refused, "detail": f"status released {s.status_released}"}
                                     for s in c.statutory]
    rows += [{"section": "year_to_date", "key": k, "total": v} for k, v in c.year_to_date.items()
             if not k.startswith("period")]
    rows += [{"section": "certification", "key": r.get("id") or "-", "requester": r["requester"], "agency": r.get("agency"),
              "detail": f"{r['status']}; signed {r.get('signed_on')} by {r.get('signer')}; expires {r.get('expires_on')}"}
             for r in c.certifications]
    rows += [{"section": "notices", "key": k, "total": v} for k, v in c.notices.items()]
    rows += [{"section": "notice_overdue", "key": n["id"], "requester": n["requester"], "agency": n["agency"],
              "time": n["requested_at"], "request_id": n["request_id"], "detail": f"due {n['due']}; {n['reason']}"}
             for n in c.overdue]
    rows += [{"section": "relayed", "key": r["ori"], "requester": r["requester"], "total": r["requests"],
              "deny": r["refused"], "detail": f"end user {r['end_user']}"} for r in c.relayed]
    rows += [{"section": "writes", "key": r["requester"], "requester": r["requester"], "agency": r["agency"],
              "total": r["writes"], "allow": r["allowed"], "deny": r["refused"],
              "detail": f"rows affected {r['rows_affected']}; 24-74-104 writes {r['status_writes']}, "
                        f"refused {r['refused_24_74_104']}"} for r in c.writes]
    return rows
