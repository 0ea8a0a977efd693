"""``POST /v1/query``: authenticate, validate the body, plan, log, run, answer.

The order is the contract: the request record is durable (``gw.log_request``) before anything reaches
the backend; a refused request is logged too, then answered with its error; the outcome record
follows the answer's rows. One SELECT (or one staff write the policy allows) per request runs over HTTP.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import AuditUnavailable, PolicyDenied
from gateway.frontdoor.http.auth import authenticate, client_addr, is_tls
from gateway.frontdoor.http.body import BodyError, QueryBody, parse_query_body
from gateway.frontdoor.http.errors import ApiError, StatementNotAllowed, request_id_of
from gateway.frontdoor.http.execute import run_select
from gateway.frontdoor.http.write import write_endpoint
from gateway.pipeline import Plan, SessionContext
from gateway.policy.types import Decision

MAX_BODY_BYTES = 2 * 1024 * 1024


async def read_body(request: Request, request_id: str) -> QueryBody:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "the body must be application/json", request_id=request_id)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", f"the body is larger than {MAX_BODY_BYTES} bytes",
                           request_id=request_id)
        chunks.append(chunk)
    try:
        return parse_query_body(b"".join(chunks))
    except BodyError as exc:
        raise ApiError(400, exc.code, str(exc), request_id=request_id) from None


def _select_only(plan: Plan) -> Plan:
    """The plan, or a denied copy when it is not exactly one SELECT (so the log says why)."""
    kinds = [s.kind for s in plan.statements]
    if kinds == ["select"] or kinds == ["write"]:  # a write: a staff write the policy allows (write.py)
        return plan
    if len(kinds) > 1:
        reason = f"{len(kinds)} statements in one request; the HTTP API runs one SELECT per request"
    else:
        reason = f"a {kinds[0] if kinds else 'empty'} statement; the HTTP API runs only SELECT statements"
    error = StatementNotAllowed(f"gateway: {reason}", rule="http.select_only")
    return dataclasses.replace(plan, decision=Decision("deny", reason, rule="http.select_only"), error=error)


def _no_paging(plan: Plan, body: QueryBody) -> Plan:
    """Paging through an answer is an export: refused to a requester with a row cap (SPEC 9)."""
    if plan.error is not None or not plan.row_cap or not body.offset:
        return plan
    error = PolicyDenied(f"gateway: paging with \"offset\" is an export, refused to this requester; it gets one "
                         f"answer of at most {plan.row_cap} rows", rule="limits.no_export")
    return dataclasses.replace(plan, error=error, decision=Decision("deny", error.message.removeprefix("gateway: "),
                                                                    rule="limits.no_export"))


async def _log_request(request: Request, ctx: SessionContext, plan: Plan, params: Any) -> None:
    gw = request.app.state.gw
    try:
        await gw.log_request(ctx, plan, params)  # counts the request and times the append
    except AuditUnavailable as exc:
        raise ApiError.from_gateway_error(exc, plan.request_id) from None


async def query_endpoint(request: Request) -> Response:
    started = time.perf_counter()
    gw, metrics = request.app.state.gw, request.app.state.metrics
    entry = await authenticate(request)
    body = await read_body(request, request_id_of(request))
    ctx = SessionContext(requester=entry.requester, claim=body.claim, front_door="http",
                         client_addr=client_addr(request), tls=is_tls(request),
                         session_id=f"http-{request_id_of(request)}",
                         application_name=request.headers.get("user-agent", "")[:64])
    plan = gw.plan_hot(ctx, body.sql) or await gw.plan_cold(ctx, body.sql)
    if plan.error is None:
        plan = _select_only(plan)
    plan = _no_paging(gw.admit(ctx, plan, body.params), body)
    request.state.request_id = plan.request_id
    await _log_request(request, ctx, plan, body.params)
    if plan.error is not None:
        raise ApiError.from_gateway_error(plan.error, plan.request_id)
    if plan.statements[0].kind == "write":
        return await write_endpoint(gw, ctx, plan, body.params, started)
    row_cap = plan.row_cap
    cap = min(body.limit or gw.settings.max_rows_http, gw.settings.max_rows_http)
    try:
        result = await run_select(gw.pool, plan.statements[0].sql, body.params, offset=body.offset,
                                  cap=min(row_cap, gw.settings.max_rows_http) if row_cap else cap,
                                  request_id=plan.request_id)
    except ApiError as exc:
        gw.log_outcome(ctx, plan, rows=0, duration_ms=(time.perf_counter() - started) * 1000.0,
                       sqlstate=exc.sqlstate, status="error")
        raise
    if row_cap:  # the whole answer is counted first: larger than the cap, nothing is released
        if result.has_more:
            raise ApiError.from_gateway_error(gw.refuse_rows(ctx, plan, row_cap + 1, result.duration_ms), plan.request_id)
        result = dataclasses.replace(result, rows=result.rows[:cap], has_more=len(result.rows) > cap)
    if result.has_more and body.limit is None:
        gw.log_outcome(ctx, plan, rows=0, duration_ms=result.duration_ms, status="error")
        raise ApiError(429, "row_limit_exceeded",
                       f"the answer has more than {cap} rows (the limit of the HTTP API); send \"limit\" and "
                       f"\"offset\" to page through it, or narrow the query (request {plan.request_id})",
                       request_id=plan.request_id)
    gw.log_outcome(ctx, plan, rows=len(result.rows), duration_ms=result.duration_ms)
    metrics.observe("gateway_request_duration_seconds", time.perf_counter() - started, front_door="http")
    payload = {
        "request_id": plan.request_id,
        "columns": [{"name": c.name, "type": c.type, "type_oid": c.type_oid} for c in result.columns],
        "rows": result.rows,
        "redacted": list(plan.redacted),
        "row_count": len(result.rows),
        "offset": body.offset,
        "limit": cap,
        "has_more": result.has_more,
    }
    if plan.use_notice is not None:
        payload["notice"] = plan.use_notice
    return JSONResponse(payload, headers={"X-Request-Id": plan.request_id})
