"""The admin console over the wire (database ``gateway``, auditor role) and pool state in /metrics."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from frontdoor_pg_support import WireGateway, wire_gw  # noqa: F401 - the fixture

psycopg = pytest.importorskip("psycopg")


def _console(gw: WireGateway, user: str = "auditor"):  # type: ignore[no-untyped-def]
    return psycopg.connect(f"postgresql://{user}:{user}-demo-password@{gw.host}:{gw.port}/gateway", autocommit=True)


def test_show_pools_clients_stats_and_reload(wire_gw: WireGateway) -> None:  # noqa: F811
    with psycopg.connect(wire_gw.dsn("dmv_clerk"), autocommit=True, application_name="console-test") as clerk:
        clerk.execute("SELECT zip FROM dmv.persons WHERE person_id = 1").fetchall()
        with _console(wire_gw) as console:
            cur = console.execute("SHOW POOLS")
            names = [d.name for d in cur.description]
            pool = dict(zip(names, cur.fetchone()))
            assert pool["pool"] == "wire" and int(pool["sessions"]) >= 1 and int(pool["size"]) >= 1
            clients = console.execute("SHOW CLIENTS").fetchall()
            assert any(row[1] == "dmv_clerk" and row[6] == "console-test" for row in clients), clients
            stats = dict(console.execute("SHOW STATS").fetchall())
            assert "gateway_wire_backend_pool_in_use" in stats and "gateway_analysis_workers_workers" in stats
            console.execute("RELOAD")
            with pytest.raises(psycopg.errors.SyntaxError):
                console.execute("DROP TABLE dmv.persons")
    records = [json.loads(line) for line in wire_gw.audit_path.read_text().splitlines()]
    assert {"SHOW POOLS", "RELOAD"} <= {r.get("command") for r in records if r.get("type") == "admin"}


def test_only_the_auditor_may_use_the_console(wire_gw: WireGateway) -> None:  # noqa: F811
    with pytest.raises(psycopg.OperationalError) as info:
        _console(wire_gw, "dmv_clerk")
    assert "may not use the admin console" in str(info.value)


def test_psql_talks_to_the_console(wire_gw: WireGateway) -> None:  # noqa: F811
    import os

    env = dict(os.environ, PGPASSWORD="auditor-demo-password", PGSSLMODE="disable")
    out = subprocess.run(["psql", "-X", "-h", wire_gw.host, "-p", str(wire_gw.port), "-U", "auditor", "-d", "gateway",
                          "-At", "-c", "SHOW POOLS"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("wire|")


def test_pool_state_in_metrics(wire_gw: WireGateway) -> None:  # noqa: F811
    text = urllib.request.urlopen(f"http://127.0.0.1:{wire_gw.http_port}/metrics", timeout=10).read().decode()
    for name in ("gateway_wire_backend_pool_in_use", "gateway_wire_clients", "gateway_analysis_workers_busy",
                 "gateway_analysis_cache_shape_bytes"):
        assert f"\n{name} " in text, name
