"""A prepared statement's Bind is not planned again (issue 8: ``Gateway.rebind``), seen from outside.

The gateway runs in this process (a thread) with a real psycopg client. Between Binds of one prepared
statement the analyzer's caches are emptied: a Bind that planned would put the statement back in them
(every plan, hot or cold, goes through the analyzer and is remembered there); a Bind that reused the
held plan leaves them empty. The same text sent unprepared afterwards does show in them, so the check
can fail. The answers and the request records are checked too: a reused plan still answers each Bind
with a fresh, logged request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.frontdoor.pg.runner import ThreadedGateway
from gateway.pgserver import free_port

psycopg = pytest.importorskip("psycopg")

POINT = "SELECT first_name FROM dmv.persons WHERE person_id = %s"


@pytest.fixture
def gateway(dmv_dsn: str, tmp_path: Path) -> Iterator[ThreadedGateway]:
    settings = load_settings(None, env={
        "GATEWAY_BACKEND_DSN": dmv_dsn, "GATEWAY_PG_LISTEN": f"127.0.0.1:{free_port()}",
        "GATEWAY_AUDIT_PATH": str(tmp_path / "requests.jsonl"), "GATEWAY_ANALYSIS_WORKERS": "0",
    })
    gw = ThreadedGateway(settings, http=False).start()
    try:
        yield gw
    finally:
        gw.stop()


def _forget(gw: ThreadedGateway) -> dict[str, int]:
    """Empty the analyzer's caches (on the gateway's loop); the cache gauges afterwards."""
    async def forget() -> dict[str, int]:
        analyzer = gw.gw.analyzer
        for cache in (analyzer._exact, analyzer._shapes, analyzer._skeletons):
            cache.clear()
        analyzer._exact_bytes = analyzer._shape_bytes = 0
        return dict(analyzer.cache_state)
    return gw.call(forget())


def _state(gw: ThreadedGateway) -> dict[str, int]:
    async def state() -> dict[str, int]:
        return dict(gw.gw.analyzer.cache_state)
    return gw.call(state())


def _requests(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") == "request":
            out.append(record)
    return out


def test_a_prepared_bind_is_not_planned_again(gateway: ThreadedGateway, dmv_dsn: str, tmp_path: Path) -> None:
    pids = (7, 8, 9, 10, 11)
    with psycopg.connect(dmv_dsn, autocommit=True) as direct:
        expected = {pid: direct.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (pid,)).fetchone()[0]
                    for pid in pids}
    dsn = f"host=127.0.0.1 port={gateway.port} dbname=dmv user=dmv_clerk password=dmv_clerk-demo-password sslmode=disable"
    with psycopg.connect(dsn, autocommit=True, options="-c gateway.purpose=service_delivery") as conn:
        assert conn.execute(POINT, (6,), prepare=True).fetchone() is not None  # Parse (planned), Bind, Execute
        assert _state(gateway)["exact"] >= 1  # the plan is remembered where every plan is
        emptied = _forget(gateway)
        assert emptied["exact"] == emptied["shapes"] == emptied["skeletons"] == 0
        log = tmp_path / "requests.jsonl"
        before = len(_requests(log))
        got = {pid: conn.execute(POINT, (pid,), prepare=True).fetchone()[0] for pid in pids}  # Bind/Execute only
        assert got == expected
        after = _state(gateway)
        assert after["exact"] == after["shapes"] == after["skeletons"] == 0, \
            f"a Bind of a prepared statement was planned again (analyzer caches: {after})"
        # each Bind is still its own request, logged before its answer
        records = _requests(log)[before:]
        assert len(records) == len(pids)
        assert len({r["request_id"] for r in records}) == len(pids)
        assert all(r["decision"] in ("allow", "redact") for r in records)
        assert len({tuple(r["individuals"]) for r in records}) == len(pids)  # each Bind's own person, bound afresh

        # the control: the same text unprepared is planned, and shows where the Binds did not
        assert conn.execute(POINT, (7,), prepare=False).fetchone()[0] == expected[7]
        assert _state(gateway)["exact"] >= 1
