"""The HTTP front door: a starlette application (``build_app``) served by uvicorn (``serve_http``).

Endpoints: ``POST /v1/query``; ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``; the
auditor endpoints ``/v1/audit/requests``, ``/v1/reports/{quarter}`` and the auditor page ``/audit/``.
See docs/http-api.md.
"""

from gateway.frontdoor.http.app import build_app
from gateway.frontdoor.http.server import serve_http

__all__ = ["build_app", "serve_http"]
