"""HTTP errors: one JSON shape, ``{"error": {"code", "message", "request_id"}}``, and no traceback ever.

:class:`ApiError` is what the endpoints raise; :func:`error_response` is the only place that writes
the JSON. :class:`CatchAllMiddleware` turns any other exception into a 500 ``internal_error`` (and
logs it with structlog), so a client never sees a traceback or a bare connection reset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BadRequest, GatewayError

log = structlog.get_logger("gateway.http")

#: Stable error codes of the HTTP API (documented in docs/http-api.md and the OpenAPI document).
ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "the body is not a JSON object"),
    "invalid_body": (400, "a field is unknown, missing or of the wrong type"),
    "invalid_parameter": (400, "a query parameter does not fit its placeholder's type"),
    "invalid_query": (400, "a query-string parameter of an auditor endpoint is invalid"),
    "syntax_error": (400, "the SQL does not parse"),
    "statement_not_allowed": (400, "only one SELECT statement per request runs over HTTP"),
    "backend_error": (400, "PostgreSQL refused the statement (the SQLSTATE is in the error)"),
    "authentication_failed": (401, "missing or unknown bearer token"),
    "policy_denied": (403, "the policy refuses the statement"),
    "purpose_refused": (403, "the purpose is unknown, not allowed, or lacks its justification"),
    "not_understood": (403, "the analyzer cannot fully understand the statement (fail closed)"),
    "forbidden": (403, "the endpoint needs the auditor role"),
    "not_found": (404, "no such endpoint or record"),
    "method_not_allowed": (405, "the endpoint does not take this method"),
    "body_too_large": (413, "the request body is larger than the limit"),
    "unsupported_media_type": (415, "the body must be application/json"),
    "rate_limited": (429, "too many requests for this token; retry after the Retry-After delay"),
    "row_limit_exceeded": (429, "the answer has more rows than the limit; page with limit/offset"),
    "backend_unavailable": (503, "the backend database is not reachable"),
    "audit_unavailable": (503, "the request log cannot be written, so nothing ran"),
    "internal_error": (500, "a bug in the gateway; the request id is in the server log"),
}


class ApiError(Exception):
    """An error answer: HTTP status, stable code, a message safe to show, and the request id."""

    def __init__(self, status: int, code: str, message: str, *, request_id: str | None = None,
                 sqlstate: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message if message.startswith("gateway:") else f"gateway: {message}"
        self.request_id = request_id
        self.sqlstate = sqlstate
        self.headers = dict(headers or {})

    @classmethod
    def from_gateway_error(cls, exc: GatewayError, request_id: str | None) -> ApiError:
        """The answer for an error of the one error tree (policy, syntax, audit, backend...)."""
        return cls(exc.http_status, exc.code, exc.client_message(request_id), request_id=request_id,
                   sqlstate=exc.sqlstate)

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.request_id,
                              sqlstate=self.sqlstate, headers=self.headers)


class StatementNotAllowed(BadRequest):
    """A statement the HTTP front door does not run (anything but one SELECT)."""

    code = "statement_not_allowed"


def error_response(status: int, code: str, message: str, request_id: str | None, *,
                   sqlstate: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """The one place that writes an error body."""
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if sqlstate:
        body["sqlstate"] = sqlstate
    out = dict(headers or {})
    if request_id:
        out["X-Request-Id"] = request_id
    return JSONResponse({"error": body}, status_code=status, headers=out)


def request_id_of(request: Request) -> str:
    """The request id of this HTTP request (made on first use, from the gateway's sequence)."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.app.state.gw.new_request_id()
        request.state.request_id = rid
    return str(rid)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.request_id is None:
        exc.request_id = request_id_of(request)
    return exc.response()


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (routing) as our JSON error."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_body")
    message = {404: "no such endpoint", 405: f"method {request.method} is not allowed here"}.get(
        exc.status_code, str(exc.detail))
    return error_response(exc.status_code, code, f"gateway: {message}", request_id_of(request),
                          headers=exc.headers)


class CatchAllMiddleware:
    """Outermost middleware of our own: any exception becomes a logged 500 ``internal_error``."""

    def __init__(self, app: ASGIApp, *, gw: Any) -> None:
        self.app = app
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001 - the point of this middleware
            state = scope.get("state") or {}
            rid = state.get("request_id") or self.gw.new_request_id()
            log.exception("http_internal_error", request_id=rid, path=scope.get("path"), method=scope.get("method"))
            if not started:
                response = error_response(500, "internal_error",
                                          f"gateway: internal error; the operator can find it by request id {rid}",
                                          rid)
                await response(scope, receive, send)
