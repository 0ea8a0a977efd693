"""Auditor endpoints (requesters with the auditor role only; others get 403 ``forbidden``):

* ``GET /v1/audit/requests``: search the request log (the filters of ``gateway audit search``);
* ``GET /v1/audit/requests/{request_id}``: one request with its outcome;
* ``GET /v1/reports/{quarter}?format=html|csv|json``: the quarterly report (``gateway report``).
"""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from gateway.audit.report import Quarter, Thresholds
from gateway.audit.report_render import to_csv, to_html, to_json
from gateway.frontdoor.http.audit_source import QueryError, parse_search
from gateway.frontdoor.http.auth import authenticate_auditor
from gateway.frontdoor.http.errors import ApiError, request_id_of

REPORT_FORMATS = ("html", "csv", "json")
REPORT_PARAMS = ("format", "bulk_persons", "requests_per_requester", "repeated_lookups")


def _invalid(request: Request, message: str) -> ApiError:
    return ApiError(400, "invalid_query", message, request_id=request_id_of(request))


async def search_endpoint(request: Request) -> Response:
    await authenticate_auditor(request)
    multi = {k: request.query_params.getlist(k) for k in request.query_params}
    try:
        wanted = parse_search(dict(request.query_params), multi)
    except QueryError as exc:
        raise _invalid(request, str(exc)) from None
    page, total = await request.app.state.audit_source.search(wanted)
    return JSONResponse({"records": page, "total": total, "limit": wanted.limit, "offset": wanted.offset})


async def request_endpoint(request: Request) -> Response:
    await authenticate_auditor(request)
    request_id = request.path_params["request_id"]
    record = await request.app.state.audit_source.find(request_id)
    if record is None:
        raise ApiError(404, "not_found", f"no record with request id {request_id!r} in the log",
                       request_id=request_id_of(request))
    return JSONResponse({"record": record})


def thresholds_from(request: Request) -> Thresholds:
    values = {}
    for name in ("bulk_persons", "requests_per_requester", "repeated_lookups"):
        text = request.query_params.get(name)
        if text is not None:
            if not text.isdigit() or not 1 <= int(text) <= 10**9:
                raise _invalid(request, f"{name} must be a positive integer")
            values[name] = int(text)
    return Thresholds(**values)


def parse_quarter(request: Request, text: str) -> Quarter:
    try:
        quarter = Quarter.parse(text)
    except ValueError as exc:
        raise _invalid(request, str(exc)) from None
    if not 1 <= quarter.year <= 9998:  # Quarter.parse takes 0000-Q1, which has no datetime
        raise _invalid(request, f"the year of quarter {text!r} is out of range")
    return quarter


async def render_report(request: Request, quarter_text: str, fmt: str) -> tuple[str, str]:
    """The report text and its media type (shared with the web page)."""
    if fmt not in REPORT_FORMATS:
        raise _invalid(request, f"format must be one of {', '.join(REPORT_FORMATS)}")
    quarter = parse_quarter(request, quarter_text)
    report = await request.app.state.audit_source.report(quarter, thresholds_from(request))
    if fmt == "json":
        return to_json(report), "application/json"
    if fmt == "csv":
        return to_csv(report), "text/csv; charset=utf-8"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return to_html(report, generated_at=generated), "text/html; charset=utf-8"


async def report_endpoint(request: Request) -> Response:
    await authenticate_auditor(request)
    for name in request.query_params:
        if name not in REPORT_PARAMS:
            raise _invalid(request, f"unknown parameter {name!r}; parameters are: {', '.join(REPORT_PARAMS)}")
    fmt = request.query_params.get("format", "html")
    text, media_type = await render_report(request, request.path_params["quarter"], fmt)
    if fmt == "html":
        return HTMLResponse(text, headers={"Content-Security-Policy": CSP})
    return Response(text, media_type=media_type)


#: The report and the auditor page are self-contained: no script, no external resource.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'"
