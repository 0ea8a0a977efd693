"""Health, readiness, metrics, rate limits and failures (request log or backend down, a bug)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import Client, log_records, make_gateway
from starlette.requests import Request

from gateway.frontdoor.http import build_app


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture
def gw(runner: asyncio.Runner, dmv_dsn: str, tmp_path: Path) -> Iterator[Any]:
    gateway = make_gateway(dmv_dsn, tmp_path / "log" / "requests.jsonl")
    runner.run(gateway.start())
    yield gateway
    runner.run(gateway.stop())


def test_health_ready_and_metrics(runner: asyncio.Runner, gw: Any) -> None:
    client = Client(runner, build_app(gw))
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"backend": "ok", "request_log": "ok"}
    client.query("dmv_clerk", {"sql": "SELECT 1", "purpose": "service_delivery"})
    client.query("ice_ero", {"sql": "SELECT first_name FROM dmv.persons", "purpose": "civil_immigration_enforcement"})
    text = client.get("/metrics").text
    assert 'gateway_requests_total{decision="allow",front_door="http",purpose="service_delivery"} 1' in text
    assert 'gateway_requests_total{decision="deny",front_door="http",purpose="civil_immigration_enforcement"} 1' in text
    assert 'gateway_request_duration_seconds_count{front_door="http"} 1' in text
    assert "gateway_audit_append_seconds_count 2" in text
    assert "gateway_backend_pool_size " in text and "gateway_backend_pool_in_use " in text
    assert "gateway_audit_available 1" in text
    assert 'gateway_http_requests_total{endpoint="/v1/query",status="403"} 1' in text
    assert "# TYPE gateway_request_duration_seconds histogram" in text


def test_rate_limit_per_token(runner: asyncio.Runner, gw: Any) -> None:
    client = Client(runner, build_app(gw, rate_per_second=0.01, rate_burst=2))
    codes = [client.query("dmv_clerk", {"sql": "SELECT 1"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.query("dmv_clerk", {"sql": "SELECT 1"})
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    assert client.query("cbi_analyst", {"sql": "SELECT 1", "purpose": "criminal_law_enforcement",
                                        "case_number": "CR-2026-0042"}).status_code == 200


class CountingPool:
    """The real pool, counting acquisitions (to show that nothing reached the backend)."""

    def __init__(self, pool: Any) -> None:
        self.pool, self.acquired = pool, 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.acquired += 1
        return self.pool.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


def test_request_log_unavailable_means_nothing_runs(runner: asyncio.Runner, gw: Any) -> None:
    client = Client(runner, build_app(gw))
    runner.run(gw.audit.close())
    real, gw.pool = gw.pool, CountingPool(gw.pool)
    try:
        r = client.query("dmv_clerk", {"sql": "SELECT person_id FROM dmv.persons LIMIT 1"})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "audit_unavailable"
        assert gw.pool.acquired == 0
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["request_log"] != "ok"
    finally:
        gw.pool = real


def test_backend_down_is_503(runner: asyncio.Runner, gw: Any) -> None:
    client = Client(runner, build_app(gw))
    runner.run(gw.pool.close())
    r = client.query("dmv_clerk", {"sql": "SELECT 1"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "backend_unavailable"
    assert client.get("/readyz").status_code == 503
    records: list[dict[str, Any]] = []
    for _ in range(100):  # the outcome record is queued without waiting: give the writer time
        records = [x for x in log_records(Path(gw.audit.path)) if x.get("request_id") == r.headers["X-Request-Id"]]
        if len(records) >= 2:
            break
        runner.run(asyncio.sleep(0.02))
    assert [x["type"] for x in records] == ["request", "outcome"] and records[1]["status"] == "error"


def test_a_bug_is_a_500_without_traceback(runner: asyncio.Runner, gw: Any) -> None:
    app = build_app(gw)

    async def broken(request: Request) -> Any:
        raise RuntimeError("secret internals")

    app.add_route("/boom", broken)
    r = Client(runner, app).get("/boom")
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["code"] == "internal_error" and error["request_id"]
    assert "secret" not in r.text and "Traceback" not in r.text


def test_unknown_route_and_method(runner: asyncio.Runner, gw: Any) -> None:
    client = Client(runner, build_app(gw))
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    r = client.get("/v1/query")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
