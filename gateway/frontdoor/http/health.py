"""``/healthz`` (the process answers), ``/readyz`` (backend reachable, request log writable) and
``/metrics`` (Prometheus text). None of them needs a token; none of them says anything about data."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from gateway import __version__
from gateway.audit.sink import RequestLog

READY_TIMEOUT_S = 3.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


async def _backend_ok(pool: Any) -> str | None:
    """None when ``SELECT 1`` works through the pool, else why not (no DSN, no secret)."""
    if pool is None:
        return "no backend pool (the gateway is not started)"
    try:
        async with pool.acquire(timeout=READY_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1", timeout=READY_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"backend not reachable ({type(exc).__name__})"
    return None


def audit_available(audit: RequestLog) -> bool:
    """The sink's own ``available``: started, not closed, last write succeeded."""
    return audit.available


async def readyz(request: Request) -> Response:
    gw = request.app.state.gw
    backend_problem = await _backend_ok(gw.pool)
    audit_ok = audit_available(gw.audit)
    checks = {
        "backend": "ok" if backend_problem is None else backend_problem,
        "request_log": "ok" if audit_ok else "the request log cannot be written",
    }
    ready = backend_problem is None and audit_ok
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def pool_gauges(pool: Any) -> dict[str, float]:
    if pool is None:
        return {"gateway_backend_pool_size": 0, "gateway_backend_pool_in_use": 0}
    size = pool.get_size()
    return {"gateway_backend_pool_size": size, "gateway_backend_pool_in_use": size - pool.get_idle_size()}


def metrics_text(gw: Any, metrics: Any) -> str:
    """This process's metrics in the Prometheus text format."""
    gauges = {**pool_gauges(gw.pool), "gateway_audit_available": 1.0 if audit_available(gw.audit) else 0.0}
    if hasattr(gw, "gauges"):
        gauges.update(gw.gauges())
    return str(metrics.render(gauges))


async def metrics_endpoint(request: Request) -> Response:
    text = metrics_text(request.app.state.gw, request.app.state.metrics)
    every_worker = getattr(request.app.state, "every_worker_metrics", None)  # gateway serve --workers N
    if every_worker is not None:
        text = await every_worker(text)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
