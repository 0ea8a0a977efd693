"""``build_app(gw)``: the starlette application of the HTTP front door, wired by constructor."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.frontdoor.http import api_docs, audit_api, audit_page, health
from gateway.frontdoor.http.audit_source import AuditSource
from gateway.frontdoor.http.errors import ApiError, CatchAllMiddleware, api_error_handler, http_exception_handler
from gateway.frontdoor.http.metrics import Metrics
from gateway.frontdoor.http.openapi import document, openapi_endpoint
from gateway.frontdoor.http.query import query_endpoint
from gateway.frontdoor.http.ratelimit import RateLimiter

#: Per-token rate limit defaults: generous for people and scripts, a brake on runaway loops.
DEFAULT_RATE_PER_SECOND = 50.0
DEFAULT_RATE_BURST = 200


def routes() -> list[Route]:
    return [
        Route("/v1/query", query_endpoint, methods=["POST"]),
        Route("/v1/audit/requests", audit_api.search_endpoint, methods=["GET"]),
        Route("/v1/audit/requests/{request_id}", audit_api.request_endpoint, methods=["GET"]),
        Route("/v1/reports/{quarter}", audit_api.report_endpoint, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        Route("/docs", api_docs.docs_endpoint, methods=["GET"]),
        Route("/audit/", audit_page.log_page, methods=["GET"]),
        Route("/audit/login", audit_page.login, methods=["POST"]),
        Route("/audit/logout", audit_page.logout, methods=["POST"]),
        Route("/audit/requests/{request_id}", audit_page.request_page, methods=["GET"]),
        Route("/audit/report", audit_page.report_page, methods=["GET"]),
    ]


class StatusCounter:
    """Counts responses by route and status for ``/metrics`` (the route template, not the raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                endpoint = getattr(route, "path", None) or "unmatched"
                self.metrics.count("gateway_http_requests_total", endpoint=endpoint, status=str(message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)


def build_app(gw: Any, *, rate_per_second: float | None = None, rate_burst: int | None = None,
              metrics: Metrics | None = None) -> Starlette:
    """The HTTP front door for a started (or about to start) :class:`~gateway.pipeline.Gateway`.

    The rate limit comes from the arguments, else from settings ``http_rate_per_second`` and
    ``http_rate_burst`` when they exist, else the defaults above. ``metrics`` may be shared with the
    wire front door so that ``/metrics`` counts both."""
    settings = getattr(gw, "settings", None)
    rate = rate_per_second or getattr(settings, "http_rate_per_second", None) or DEFAULT_RATE_PER_SECOND
    burst = rate_burst or getattr(settings, "http_rate_burst", None) or DEFAULT_RATE_BURST
    metrics = metrics or getattr(gw, "metrics", None) or Metrics()
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(CatchAllMiddleware, gw=gw), Middleware(StatusCounter, metrics=metrics)],
        exception_handlers={ApiError: api_error_handler, HTTPException: http_exception_handler},
    )
    app.state.gw = gw
    app.state.metrics = metrics
    app.state.limiter = RateLimiter(rate=float(rate), burst=int(burst))
    app.state.audit_source = AuditSource(gw.audit)
    app.state.openapi = document()
    return app


def route_paths(app: Starlette) -> set[tuple[str, str]]:
    """``(path, method)`` of every route (for the OpenAPI test)."""
    out = set()
    for route in app.routes:
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    out.add((route.path, method.lower()))
    return out


__all__ = ["build_app", "route_paths", "Request"]
