"""The auditor's web page under ``/audit/``: sign in with a token (kept in an HttpOnly,
SameSite=Strict cookie scoped to ``/audit``), filter the request log, open one request, open the
quarterly report with its charts. Server-rendered HTML, no script (see :mod:`.templates`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.frontdoor.http import templates
from gateway.frontdoor.http.audit_api import CSP, render_report
from gateway.frontdoor.http.audit_source import QueryError, parse_search
from gateway.frontdoor.http.auth import COOKIE_NAME, authenticate_auditor, is_tls
from gateway.frontdoor.http.errors import ApiError

COOKIE_MAX_AGE_S = 8 * 3600
PAGE_LIMIT = 200
MAX_FORM_BYTES = 16 * 1024
PAGE_FILTERS = ("requester", "agency", "purpose", "decision", "type", "since", "until", "person", "license",
                "sql_contains")


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers={
        "Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer"})


def _signed_out(message: str, status: int) -> HTMLResponse:
    response = _html(templates.sign_in(message), status)
    response.delete_cookie(COOKIE_NAME, path="/audit")
    return response


async def _auditor(request: Request) -> str | Response:
    """The signed-in auditor's name, or the sign-in page to answer with."""
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        return _html(templates.sign_in(), 200 if request.url.path == "/audit/" else 401)
    try:
        entry = await authenticate_auditor(request, token)
    except ApiError as exc:
        if exc.status == 429:
            return _html(templates.sign_in(exc.message), 429)
        return _signed_out("Your session is no longer valid: sign in again.", exc.status)
    return entry.requester.name


def current_quarter() -> str:
    now = datetime.now(timezone.utc)
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


async def log_page(request: Request) -> Response:
    who = await _auditor(request)
    if isinstance(who, Response):
        return who
    params = {k: v.strip() for k, v in request.query_params.items() if k in PAGE_FILTERS and v.strip()}
    records, total, error = [], 0, ""
    try:
        wanted = parse_search({**params, "limit": str(PAGE_LIMIT)}, {k: [v] for k, v in params.items()})
        records, total = await request.app.state.audit_source.search(wanted)
    except QueryError as exc:
        error = str(exc)
    return _html(templates.log_page(who, params, records, total, current_quarter(), error), 400 if error else 200)


async def login(request: Request) -> Response:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            return _html(templates.sign_in("The form is too large."), 413)
    form = parse_qs(raw.decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    if not token:
        return _html(templates.sign_in("Enter your token."), 400)
    try:
        await authenticate_auditor(request, token)
    except ApiError as exc:
        message = {401: "That token is not valid.", 403: "That token does not have the auditor role.",
                   429: "Too many attempts; wait a moment."}.get(exc.status, "Sign-in failed.")
        return _signed_out(message, exc.status)
    response = RedirectResponse("/audit/", status_code=303)
    response.set_cookie(COOKIE_NAME, token, max_age=COOKIE_MAX_AGE_S, path="/audit", httponly=True,
                        samesite="strict", secure=is_tls(request))
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/audit/", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/audit")
    return response


async def request_page(request: Request) -> Response:
    who = await _auditor(request)
    if isinstance(who, Response):
        return who
    record = await request.app.state.audit_source.find(request.path_params["request_id"])
    if record is None:
        body = '<div class="card"><p class="error">No record with this request id.</p><a href="/audit/">back</a></div>'
        return _html(templates.page("Not found", body, auditor=who), 404)
    return _html(templates.request_page(who, record))


async def report_page(request: Request) -> Response:
    who = await _auditor(request)
    if isinstance(who, Response):
        return who
    quarter = request.query_params.get("quarter", "").strip() or current_quarter()
    fmt = request.query_params.get("format", "html")
    try:
        text, media_type = await render_report(request, quarter, fmt)
    except ApiError as exc:
        body = f'<div class="card"><p class="error">{escape(exc.message)}</p><a href="/audit/">back</a></div>'
        return _html(templates.page("Report", body, auditor=who), exc.status)
    if fmt == "html":
        return _html(templates.report_page(text, quarter, who))
    return Response(text, media_type=media_type, headers={"Cache-Control": "no-store"})
