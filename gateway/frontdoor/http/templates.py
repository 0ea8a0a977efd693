"""The auditor page's HTML, as plain strings (no front-end build, no script). Every value is
escaped with :func:`html.escape` here, at the point it enters the markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from gateway.audit.search import EVENT_TYPES
from gateway.policy.types import JUSTIFICATION_FIELDS, PURPOSES

STYLE = """
:root { --ink:#1d2733; --muted:#5b6b7b; --line:#d5dde5; --accent:#1f5f99; --deny:#b3261e; --redact:#a86400; --allow:#2e7d32; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:#f6f8fa; }
header { background:#14324f; color:#fff; padding:10px 24px; display:flex; align-items:center; gap:24px; }
header h1 { font-size:17px; margin:0; font-weight:600; }
header nav { display:flex; gap:16px; flex:1; }
header a { color:#d7e7f7; text-decoration:none; }
header form { margin:0; }
header button { background:none; border:1px solid #7fa6cc; color:#fff; border-radius:4px; padding:3px 10px; cursor:pointer; }
main { padding:18px 24px 40px; max-width:1400px; }
h2 { font-size:18px; margin:8px 0 12px; }
h3 { font-size:15px; margin:18px 0 8px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:14px 16px; margin-bottom:16px; overflow-x:auto; }
form.filters { display:grid; grid-template-columns:repeat(auto-fill, minmax(170px, 1fr)); gap:10px 14px; align-items:end; }
label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:3px; }
input, select { font:inherit; padding:5px 7px; border:1px solid #b8c4cf; border-radius:4px; background:#fff; color:var(--ink); }
button.primary { background:var(--accent); color:#fff; border:0; border-radius:4px; padding:7px 14px; font:inherit; cursor:pointer; }
a.reset { color:var(--muted); font-size:13px; }
table { border-collapse:collapse; width:100%; background:#fff; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.03em; color:var(--muted); background:#eef2f6; }
td.sql { font-family: ui-monospace, Menlo, Consolas, monospace; font-size:12px; min-width:300px; overflow-wrap:anywhere; }
td.agency { max-width:190px; font-size:13px; }
td.time { white-space:nowrap; font-variant-numeric:tabular-nums; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; }
.badge.deny { background:var(--deny); } .badge.redact { background:var(--redact); } .badge.allow { background:var(--allow); }
.badge.event { background:#6b7785; }
pre { background:#f0f3f6; border:1px solid var(--line); border-radius:4px; padding:10px; white-space:pre-wrap; overflow-wrap:anywhere; font-size:12px; margin:0; }
dl { display:grid; grid-template-columns:180px 1fr; gap:6px 16px; margin:0; }
dt { color:var(--muted); } dd { margin:0; overflow-wrap:anywhere; }
.muted { color:var(--muted); } .error { color:var(--deny); font-weight:600; }
.signin { max-width:420px; margin:60px auto; }
.signin form { display:flex; flex-direction:column; gap:12px; }
"""


def page(title: str, body: str, *, auditor: str | None = None) -> str:
    """A whole page: header with navigation (when signed in), then ``body`` (already escaped)."""
    nav = ""
    if auditor:
        nav = (
            '<nav><a href="/audit/">Request log</a></nav>'
            f'<span class="muted" style="color:#b9cde0">signed in as {escape(auditor)}</span>'
            '<form method="post" action="/audit/logout"><button type="submit">Sign out</button></form>'
        )
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><header><h1>Gateway request log</h1>{nav}</header>"
        f"<main>{body}</main></body></html>"
    )


def sign_in(message: str = "") -> str:
    error = f'<p class="error">{escape(message)}</p>' if message else ""
    body = (
        '<div class="card signin"><h2>Auditor sign-in</h2>'
        '<p class="muted">Sign in with your auditor bearer token. It is kept in an HttpOnly cookie for this '
        "page only.</p>"
        f"{error}"
        '<form method="post" action="/audit/login">'
        '<label>Token<input type="password" name="token" autocomplete="current-password" required autofocus></label>'
        '<button class="primary" type="submit">Sign in</button></form></div>'
    )
    return page("Auditor sign-in", body)


def _select(name: str, options: Iterable[str], current: str | None, blank: str = "any") -> str:
    opts = [f'<option value="">{escape(blank)}</option>']
    for value in options:
        chosen = " selected" if value == current else ""
        opts.append(f'<option value="{escape(value)}"{chosen}>{escape(value)}</option>')
    return f'<select name="{escape(name)}">{"".join(opts)}</select>'


def _input(name: str, label: str, params: Mapping[str, str], placeholder: str = "") -> str:
    value = escape(params.get(name, ""))
    return (f'<label>{escape(label)}<input name="{escape(name)}" value="{value}" '
            f'placeholder="{escape(placeholder)}"></label>')


def _badge(record: Mapping[str, Any]) -> str:
    if record.get("type") != "request":
        return f'<span class="badge event">{escape(str(record.get("type")))}</span>'
    decision = str(record.get("decision") or "")
    return f'<span class="badge {escape(decision)}">{escape(decision)}</span>'


def log_page(auditor: str, params: Mapping[str, str], records: list[dict[str, Any]], total: int,
             quarter: str, error: str = "") -> str:
    filters = (
        '<form class="filters" method="get" action="/audit/">'
        + _input("requester", "Requester", params, "dmv_clerk")
        + _input("agency", "Agency contains", params)
        + f'<label>Purpose{_select("purpose", ("none", *PURPOSES), params.get("purpose"))}</label>'
        + f'<label>Decision{_select("decision", ("allow", "redact", "deny"), params.get("decision"))}</label>'
        + f'<label>Record type{_select("type", EVENT_TYPES, params.get("type"), "all")}</label>'
        + _input("since", "Since", params, "2026-07-01")
        + _input("until", "Until", params, "2026-10-01")
        + _input("person", "Person id", params)
        + _input("license", "License number", params)
        + _input("sql_contains", "SQL contains", params, "lawful_presence")
        + '<div><button class="primary" type="submit">Filter</button> <a class="reset" href="/audit/">reset</a></div>'
        "</form>"
    )
    report = (
        '<form class="filters" method="get" action="/audit/report">'
        f'<label>Quarter<input name="quarter" value="{escape(quarter)}" pattern="\\d{{4}}-?[Qq][1-4]"></label>'
        f'<label>Format{_select("format", ("html", "csv", "json"), "html", "html")}</label>'
        '<div><button class="primary" type="submit">Open report</button></div></form>'
    )
    rows = []
    for r in records:
        outcome = r.get("outcome") or {}
        rid = str(r.get("request_id") or "")
        link = f'<a href="/audit/requests/{quote(rid, safe="")}">{escape(rid)}</a>' if rid else ""
        text = r.get("sql_received") if r.get("type") == "request" else r.get("reason")
        reason = r.get("reason") if r.get("decision") == "deny" else ""
        rows.append(
            "<tr>"
            f'<td class="time">{escape(str(r.get("time", ""))[:19].replace("T", " "))}</td>'
            f"<td>{link}</td><td>{escape(str(r.get('requester') or ''))}</td>"
            f"<td class=\"agency\">{escape(str(r.get('agency') or ''))}</td><td>{escape(str(r.get('purpose') or 'none'))}</td>"
            f"<td>{_badge(r)}</td><td>{escape(str(outcome.get('rows_returned', '')))}</td>"
            f'<td class="sql">{escape(_short(str(text or ""), 220))}'
            + (f'<div class="muted">{escape(_short(str(reason), 200))}</div>' if reason else "")
            + "</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("Time (UTC)", "Request", "Requester", "Agency", "Purpose",
                                               "Decision", "Rows", "SQL (literals hashed) / reason"))
    table = (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>" if rows
             else '<p class="muted">No record matches these filters.</p>')
    problem = f'<p class="error">{escape(error)}</p>' if error else ""
    shown = f"{len(records)} of {total} matching record(s), newest first"
    body = (f'<div class="card"><h2>Filter the request log</h2>{problem}{filters}</div>'
            f'<div class="card"><h2>Quarterly report</h2>{report}</div>'
            f'<div class="card"><h2>Records</h2><p class="muted">{escape(shown)}</p>{table}</div>')
    return page("Request log", body, auditor=auditor)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _pre(value: Any) -> str:
    if value is None or value == "" or value == []:
        return '<span class="muted">none</span>'
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return f"<pre>{escape(text)}</pre>"


def request_page(auditor: str, record: Mapping[str, Any]) -> str:
    outcome = record.get("outcome") or {}
    justification = record.get("justification") or {}
    just = "; ".join(f"{k}: {justification[k]}" for k in JUSTIFICATION_FIELDS if justification.get(k)) or "none"
    fields: list[tuple[str, str]] = [
        ("Time (UTC)", escape(str(record.get("time", "")))),
        ("Request id", escape(str(record.get("request_id") or ""))),
        ("Record type", escape(str(record.get("type") or ""))),
        ("Requester", escape(f"{record.get('requester') or ''} ({record.get('agency') or ''})")),
        ("Front door", escape(f"{record.get('front_door') or ''} from {record.get('client_addr') or '?'}"
                              f"{' over TLS' if record.get('tls') else ''}")),
        ("Purpose", escape(str(record.get("purpose") or "none"))),
        ("Justification", escape(just)),
        ("Decision", _badge(record)),
        ("Reason", escape(str(record.get("reason") or ""))),
        ("Rule", escape(str(record.get("rule") or ""))),
        ("Error", escape(" / ".join(str(x) for x in (record.get("error_code"), record.get("sqlstate")) if x)
                         or "none")),
        ("Statutory request", escape("yes" if record.get("statutory_request") else
                                     f"no ({record.get('statutory_exclusion') or ''})")),
        ("Redacted output columns", escape(", ".join(record.get("redacted") or []) or "none")),
        ("Masked base columns", escape(", ".join(record.get("masked") or []) or "none")),
        ("Outcome", escape(", ".join(f"{k}: {outcome[k]}" for k in ("status", "rows_returned", "persons_returned",
                                                                   "duration_ms", "backend_sqlstate")
                                     if outcome.get(k) is not None) or "no outcome (refused, or not run)")),
        ("Policy digest", escape(str(record.get("policy_digest") or ""))),
    ]
    info = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in fields)
    acc_rows = "".join(
        f"<tr><td>{escape(str(a.get('column')))}</td><td>{escape(', '.join(a.get('tags') or []))}</td>"
        f"<td>{escape(', '.join(a.get('usage') or []))}</td></tr>"
        for a in record.get("accesses") or []
    )
    accesses = (f"<table><thead><tr><th>Column</th><th>Classification</th><th>Used as</th></tr></thead>"
                f"<tbody>{acc_rows}</tbody></table>" if acc_rows else '<p class="muted">No column accesses.</p>')
    body = (
        f'<div class="card"><h2>Request {escape(str(record.get("request_id") or ""))}</h2><dl>{info}</dl></div>'
        f'<div class="card"><h3>SQL as received (literals hashed)</h3>{_pre(record.get("sql_received"))}'
        f'<h3>SQL as sent to the database</h3>{_pre(record.get("sql_sent"))}'
        f'<h3>Parameters (hashed)</h3>{_pre(record.get("params"))}</div>'
        f'<div class="card"><h3>Columns touched</h3>{accesses}</div>'
        '<p><a href="/audit/">&larr; back to the request log</a></p>'
    )
    return page(f"Request {record.get('request_id')}", body, auditor=auditor)


def report_page(report_html: str, quarter: str, auditor: str) -> str:
    """The report's own self-contained page with a bar of links on top."""
    q = escape(quote(quarter, safe=""))
    link = "color:#d7e7f7;margin-right:18px;text-decoration:none"
    bar = (
        '<div style="background:#14324f;color:#fff;padding:8px 24px;font:14px system-ui,sans-serif">'
        f'<a style="{link}" href="/audit/">&larr; Request log</a>'
        f'<a style="{link}" href="/audit/report?quarter={q}&amp;format=csv">CSV</a>'
        f'<a style="{link}" href="/audit/report?quarter={q}&amp;format=json">JSON</a>'
        f'<span style="float:right;color:#b9cde0">signed in as {escape(auditor)}</span></div>'
    )
    body_at = report_html.find("<body")
    if body_at < 0:
        return bar + report_html
    insert_at = report_html.find(">", body_at) + 1
    return report_html[:insert_at] + bar + report_html[insert_at:]


def query_string(params: Mapping[str, str]) -> str:
    return urlencode({k: v for k, v in params.items() if v})
