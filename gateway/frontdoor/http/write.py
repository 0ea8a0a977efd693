"""A staff write over ``POST /v1/query`` (the policy's ``writes:`` grants, ``policy/writes.py``).

The request record is already durable (``query.py``); the write runs in a read-write transaction of
its own (``backend/writes.py``); the outcome record carries the rows it affected. The answer is the
SELECT answer's shape: ``columns``/``rows`` are the RETURNING rows (redacted like a SELECT's output),
``row_count`` the rows affected, ``command`` the command tag.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import JSONResponse, Response

from gateway.errors import GatewayError, PolicyDenied
from gateway.frontdoor.http.errors import ApiError
from gateway.frontdoor.http.execute import _coerce
from gateway.frontdoor.http.values import column_type_name, encode_value
from gateway.pipeline import Plan, SessionContext


async def write_endpoint(gw: Any, ctx: SessionContext, plan: Plan, params: tuple[Any, ...], started: float) -> Response:
    try:
        result = await gw.run_write(plan, lambda types: _coerce(params, types, plan.request_id))
    except ApiError as exc:
        gw.log_outcome(ctx, plan, rows=0, duration_ms=(time.perf_counter() - started) * 1000.0,
                       sqlstate=exc.sqlstate, status="error", rows_affected=0)
        raise
    except GatewayError as exc:
        gw.log_outcome(ctx, plan, rows=0, duration_ms=(time.perf_counter() - started) * 1000.0, sqlstate=exc.sqlstate,
                       status="refused" if isinstance(exc, PolicyDenied) else "error", rows_affected=0)
        raise ApiError.from_gateway_error(exc, plan.request_id) from None
    duration_ms = (time.perf_counter() - started) * 1000.0
    gw.log_outcome(ctx, plan, rows=len(result.rows), duration_ms=duration_ms, rows_affected=result.rowcount)
    payload: dict[str, Any] = {
        "request_id": plan.request_id,
        "columns": [{"name": f.name, "type": column_type_name(f.type_name, f.type_kind), "type_oid": f.type_oid}
                    for f in result.fields],
        "rows": [[encode_value(v, f.type_name) for v, f in zip(row, result.fields)] for row in result.rows],
        "redacted": list(plan.redacted),
        "row_count": result.rowcount,
        "command": result.tag,
    }
    if plan.use_notice is not None:
        payload["notice"] = plan.use_notice
    return JSONResponse(payload, headers={"X-Request-Id": plan.request_id})
