"""Signals through a real gateway: SIGHUP reloads the policy and requesters atomically (and survives
a broken file); SIGTERM stops accepting, lets a 3 s query finish, then closes the log."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from frontdoor_pg_support import ROOT, start_gateway

psycopg = pytest.importorskip("psycopg")

POINT = "SELECT zip FROM dmv.persons WHERE person_id = 1"


def _records(audit: Path, kind: str | None = None) -> list[dict[str, object]]:
    out = []
    for line in audit.read_text().splitlines():
        record = json.loads(line)
        if kind is None or record.get("type") == kind:
            out.append(record)
    return out


def _wait_for(predicate, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_sighup_reloads_and_survives_a_broken_file(dmv_dsn: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    requesters = tmp_path / "requesters.yaml"
    shutil.copy(ROOT / "policies/colorado-dmv.yaml", policy)
    shutil.copy(ROOT / "policies/requesters.example.yaml", requesters)
    for side in (ROOT / "policies").glob("*.yaml"):  # files the requesters file may name beside it
        if not (tmp_path / side.name).exists():
            shutil.copy(side, tmp_path / side.name)
    audit = tmp_path / "audit"
    audit.mkdir()
    for gw in start_gateway(dmv_dsn, audit, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters)):
        with psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True) as conn:
            conn.execute(POINT).fetchall()
            first_digest = _records(gw.audit_path, "request")[-1]["policy_digest"]

            policy.write_text(policy.read_text() + "\n# reviewed again\n")
            gw.process.send_signal(signal.SIGHUP)
            done = _wait_for(lambda: _records(gw.audit_path, "reload"))
            assert done[-1]["accepted"] is True
            conn.execute(POINT).fetchall()
            new_digest = _records(gw.audit_path, "request")[-1]["policy_digest"]
            assert new_digest != first_digest and new_digest == done[-1]["policy_digest"]

            good = policy.read_text()
            policy.write_text("version: [this is not a policy\n")
            gw.process.send_signal(signal.SIGHUP)
            refused = _wait_for(lambda: [r for r in _records(gw.audit_path, "reload") if r["accepted"] is False])
            assert refused[-1]["error"]
            assert gw.process.poll() is None
            conn.execute(POINT).fetchall()  # the same session, still served, under the old policy
            assert _records(gw.audit_path, "request")[-1]["policy_digest"] == new_digest
            with psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True) as fresh:  # and new sessions too
                assert fresh.execute("SELECT 1").fetchone() == (1,)
            policy.write_text(good)
        log = (audit / "gateway.log").read_text()
        assert "reload_refused" in log and "reloaded" in log


def _three_second_count(dmv_dsn: str) -> str:
    """A query that runs about 3 s on this machine (pg_sleep is refused by the gateway)."""
    with psycopg.connect(dmv_dsn, autocommit=True) as conn:
        n = 2_000_000
        t0 = time.perf_counter()
        conn.execute("SELECT count(*) FROM generate_series(1, %s)", (n,)).fetchone()
        took = max(time.perf_counter() - t0, 0.01)
    return f"SELECT count(*) FROM generate_series(1, {int(n * 3.0 / took)})"


def test_sigterm_drains_a_three_second_query(dmv_dsn: str, tmp_path: Path) -> None:
    sql = _three_second_count(dmv_dsn)
    for gw in start_gateway(dmv_dsn, tmp_path):
        result: list[object] = []

        def run() -> None:
            try:
                with psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True) as conn:
                    t0 = time.monotonic()
                    result.append(conn.execute(sql).fetchone())
                    result.append(time.monotonic() - t0)
            except Exception as exc:  # noqa: BLE001 - asserted below
                result.append(exc)

        idle = psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True)
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(1.0)  # the query is running
        gw.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection((gw.host, gw.port), timeout=2).close()
        thread.join(60)
        assert result and not isinstance(result[0], Exception), result
        assert result[1] > 1.5  # it ran to its end, after the signal
        assert gw.process.wait(30) == 0
        with pytest.raises(psycopg.OperationalError):  # an idle session was told and closed
            idle.execute("SELECT 1")
        idle.close()
        log = (tmp_path / "gateway.log").read_text()
        assert "audit_closed" in log
        answered = [r for r in _records(gw.audit_path, "request") if r.get("sql_received", "").startswith("SELECT count")]
        assert answered, "the drained query has no record"
