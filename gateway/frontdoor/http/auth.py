"""Who is asking: the bearer token (API) or the auditor cookie (web page), checked against the
hashed tokens of the requesters file; and the per-token rate limit.

A failed authentication is logged in the request log as a ``login_failed`` event (never the token).
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request

from gateway.frontdoor.http.errors import ApiError, request_id_of
from gateway.identity.requesters import RequesterEntry

log = structlog.get_logger("gateway.http")

#: The auditor page keeps the auditor's token in this cookie (HttpOnly, SameSite=Strict, path /audit).
COOKIE_NAME = "gateway_auditor"


def client_addr(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else ""


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer TOKEN`` (scheme case-insensitive), or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _failed(request: Request, reason: str) -> None:
    gw = request.app.state.gw
    try:
        await gw.log_event(None, "login_failed", user=None, front_door="http", client_addr=client_addr(request),
                           tls=is_tls(request), reason=reason, request_id=request_id_of(request))
    except Exception as exc:  # noqa: BLE001 - the 401 goes out whether or not the event is written
        log.warning("login_failed_not_logged", error=str(exc))


def check_rate(request: Request, key: str) -> None:
    """Raise a 429 ``rate_limited`` when ``key`` has used up its bucket."""
    wait = request.app.state.limiter.take(key)
    if wait > 0:
        request.app.state.metrics.count("gateway_http_rate_limited_total")
        raise ApiError(429, "rate_limited", f"too many requests; retry in {wait:.1f} s",
                       request_id=request_id_of(request), headers={"Retry-After": str(max(1, round(wait + 0.5)))})


async def authenticate(request: Request, token: str | None = None) -> RequesterEntry:
    """The requester of this request's bearer token (or ``token``); raises 401 or 429."""
    gw: Any = request.app.state.gw
    token = token if token is not None else bearer_token(request)
    entry = gw.requesters.by_token(token) if token else None
    if entry is None:
        check_rate(request, f"addr:{request.client.host if request.client else ''}")
        reason = "no bearer token" if not token else "unknown bearer token"
        await _failed(request, reason)
        raise ApiError(401, "authentication_failed",
                       "authentication failed: send Authorization: Bearer TOKEN with a valid token"
                       if not token else "authentication failed: the bearer token is not valid",
                       request_id=request_id_of(request), headers={"WWW-Authenticate": 'Bearer realm="gateway"'})
    try:
        check_rate(request, f"token:{entry.requester.name}")
    except ApiError:
        await _rate_limited(request, entry)
        raise
    return entry


async def _rate_limited(request: Request, entry: RequesterEntry) -> None:
    """Every refusal is a record (SPEC 9): a token over its HTTP burst rate too."""
    gw = request.app.state.gw
    try:
        await gw.log_event(None, "rate_limited", requester=entry.requester.name, agency=entry.requester.agency,
                           requester_kind=entry.requester.kind, front_door="http", client_addr=client_addr(request),
                           tls=is_tls(request), request_id=request_id_of(request), sqlstate="53400",
                           rule="http.token_bucket")
    except Exception as exc:  # noqa: BLE001 - the 429 goes out whether or not the event is written
        log.warning("rate_limited_not_logged", error=str(exc))


async def authenticate_auditor(request: Request, token: str | None = None) -> RequesterEntry:
    """Like :func:`authenticate`, then 403 ``forbidden`` unless the requester has the auditor role."""
    entry = await authenticate(request, token)
    if not entry.requester.is_auditor:
        raise ApiError(403, "forbidden", "this endpoint is for requesters with the auditor role",
                       request_id=request_id_of(request))
    return entry
