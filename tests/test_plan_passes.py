"""The plan stage as a tuple of passes: its layering, its pure entry point, and an analyzer fault
injected through a real gateway (refused with a record, never a crash)."""

from __future__ import annotations

import ast
import asyncio
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import Client, log_records, make_gateway

from gateway.frontdoor.http import build_app
from gateway.plan.cache import Analyzer
from gateway.plan.fresh import plan_fresh
from gateway.plan.passes import PASSES, PlanEnv, StatementWork

ROOT = Path(__file__).resolve().parents[1] / "gateway"


def _imports(folder: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return found


def test_the_passes_run_in_order() -> None:
    assert [p.__name__ for p in PASSES] == ["identity", "analyze", "decide", "mask", "names"]


def test_no_import_cycles_between_the_rooms() -> None:
    analyzer = _imports("analyzer")
    assert not {m for m in analyzer if m.startswith(("gateway.rewrite", "gateway.plan", "gateway.policy.decide"))}
    assert not {m for m in _imports("catalog") if m.startswith("gateway.analyzer")}
    assert not {m for m in _imports("rewrite") if m.startswith(("gateway.analyzer", "gateway.plan"))}
    pure = analyzer | _imports("policy") | _imports("rewrite") | _imports("plan")
    assert not {m for m in pure if m.split(".")[0] in ("asyncio", "asyncpg", "starlette", "structlog")}


def test_plan_fresh_is_picklable(analysis_env: Any) -> None:
    env = PlanEnv(analysis_env.catalog, analysis_env.analyzer.classifier, analysis_env.analyzer.search_path)
    profile = analysis_env.profile("clerk")
    fresh = plan_fresh("SELECT first_name, zip FROM dmv.persons WHERE person_id = 7", profile, env)
    assert fresh.analysis.error is None and fresh.templates is not None
    again = pickle.loads(pickle.dumps(fresh))
    assert again.analysis == fresh.analysis
    refused = plan_fresh("SELECT immigration_status FROM dmv.lawful_presence WHERE immigration_status = 'TPS'",
                         profile, env)
    copy = pickle.loads(pickle.dumps(refused))
    assert copy.analysis.error is not None and copy.analysis.error.rule == refused.analysis.error.rule
    assert pickle.loads(pickle.dumps(env)).search_path == env.search_path


def _faulty(work: StatementWork, env: PlanEnv, profile: Any) -> StatementWork:
    raise TypeError("injected analyzer fault")


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture(scope="module")
def faulty_gw(runner: asyncio.Runner, dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # analysis on the event loop (no worker processes): the injected pass is the one that runs
    gateway = make_gateway(dmv_dsn, tmp_path_factory.mktemp("fault") / "requests.jsonl", analysis_workers=0)
    runner.run(gateway.start())
    good = gateway.analyzer
    gateway.analyzer = Analyzer(good.catalog, good.classifier, good.search_path,
                                passes=(PASSES[0], _faulty, *PASSES[1:]))
    yield gateway
    runner.run(gateway.stop())


def test_an_analyzer_fault_is_a_refusal_with_a_record(runner: asyncio.Runner, faulty_gw: Any) -> None:
    client = Client(runner, build_app(faulty_gw, rate_per_second=10_000, rate_burst=10_000))
    sql = "SELECT first_name FROM dmv.persons WHERE person_id = 3"
    response = client.query("dmv_clerk", {"sql": sql, "purpose": "service_delivery"})
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"]["code"] == "not_understood"
    assert "analyzer could not process the statement (TypeError)" in body["error"]["message"]
    assert "injected" not in response.text  # the fault's text stays inside
    rid = response.headers["X-Request-Id"]
    records = [r for r in log_records(Path(faulty_gw.settings.audit_path))
               if r.get("type") == "request" and r.get("request_id") == rid]
    assert len(records) == 1 and records[0]["decision"] == "deny"
    assert records[0]["sqlstate"] == "42501"
    # the gateway keeps serving: the next request is refused and recorded the same way
    again = client.query("dmv_clerk", {"sql": "SELECT 1 AS one", "purpose": "service_delivery"})
    assert again.status_code == 403 and again.headers["X-Request-Id"] != rid
    assert any(r.get("request_id") == again.headers["X-Request-Id"] for r in log_records(Path(faulty_gw.settings.audit_path)))
