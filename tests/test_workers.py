"""``gateway serve --workers 2`` through a real gateway: both workers serve, each writes its own chain,
``audit verify`` reads both and names the one tampered with, SIGHUP reaches both, SIGTERM drains
both; a worker killed is restarted; the bulk-access cap, the connection cap per requester and a
cancel hold across workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from frontdoor_pg_support import ROOT, WireGateway, start_gateway

psycopg = pytest.importorskip("psycopg")

POINT = "SELECT zip FROM dmv.persons WHERE person_id = %s"
GOV = {"purpose": "governor_authorized", "authorization_id": "GOV-2026-0001"}
INDIVIDUALS_CAP = 6


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _chains(audit: Path) -> dict[str, list[dict[str, Any]]]:
    return {p.name: _records(p) for p in sorted(audit.glob("requests.w*.jsonl"))}


def _wait_for(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def _connect(gw: WireGateway, user: str = "dmv_clerk", claim: dict[str, str] | None = None) -> Any:
    options = " ".join(f"-c gateway.{k}={v}" for k, v in (claim or {}).items())
    return psycopg.connect(host=gw.host, port=gw.port, user=user, password=f"{user}-demo-password", dbname="dmv",
                           sslmode="disable", autocommit=True, options=options, connect_timeout=20)


def _audit_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


def _served_by_both(gw: WireGateway, audit: Path) -> None:
    """New connections until both workers have answered one (the kernel spreads them by port hash)."""
    for i in range(60):
        with _connect(gw) as conn:
            conn.execute(POINT, (1 + i,)).fetchall()
        chains = _chains(audit)
        if len(chains) == 2 and all(any(r["type"] == "request" for r in c) for c in chains.values()):
            return
    raise AssertionError(f"60 connections did not reach both workers: {list(_chains(audit))}")


@pytest.fixture()
def gw2(dmv_dsn: str, tmp_path: Path) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, tmp_path, GATEWAY_WORKERS="2")


def test_two_workers_serve_each_its_own_chain_and_verify_reads_both(gw2: WireGateway, tmp_path: Path) -> None:
    _served_by_both(gw2, tmp_path)
    assert not (tmp_path / "requests.jsonl").exists()  # no chain of the configured name itself
    chains = _chains(tmp_path)
    assert set(chains) == {"requests.w0.jsonl", "requests.w1.jsonl"}
    for name, records in chains.items():
        worker = name.split(".")[1]
        assert {r["instance"] for r in records} == {f"gateway.{worker}"}  # the worker id in every record
    # /metrics says which worker answered; fresh connections reach both
    seen = set()
    for _ in range(40):
        with httpx.Client(timeout=10) as client:  # a new connection each time
            text = client.get(f"http://{gw2.host}:{gw2.http_port}/metrics").text
        assert "gateway_workers 2" in text
        # every worker's series on one page, labelled by worker (Prometheus sums them)
        assert 'gateway_worker_up{worker="w0"} 1' in text and 'gateway_worker_up{worker="w1"} 1' in text
        assert 'gateway_wire_clients{worker="w0"}' in text and 'gateway_wire_clients{worker="w1"}' in text
        assert text.count("# TYPE gateway_wire_clients ") == 1
        seen.add(re.search(r"^gateway_worker (\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        if seen == {"0", "1"}:
            break
    assert seen == {"0", "1"}
    # the admin console shows it too (SHOW STATS of the worker that took the connection)
    seen = set()
    for _ in range(40):
        with psycopg.connect(f"postgresql://auditor:auditor-demo-password@{gw2.host}:{gw2.port}/gateway",
                             autocommit=True) as admin:
            stats = dict(admin.execute("SHOW STATS").fetchall())
        assert float(stats["gateway_workers"]) == 2
        seen.add(int(float(stats["gateway_worker"])))
        if seen == {0, 1}:
            break
    assert seen == {0, 1}
    # the auditor endpoints of either worker read both chains
    auditor = {"Authorization": "Bearer auditor-demo-token"}
    for _ in range(4):
        with httpx.Client(timeout=60) as client:
            found = client.get(f"http://{gw2.host}:{gw2.http_port}/v1/audit/requests",
                               params={"requester": "dmv_clerk", "limit": 1000}, headers=auditor).json()
            assert {r["instance"] for r in found["records"]} == {"gateway.w0", "gateway.w1"}
            report = client.get(f"http://{gw2.host}:{gw2.http_port}/v1/reports/{_quarter()}",
                                params={"format": "json"}, headers=auditor).json()
            assert set(report["chain_tips"]) == {"gateway.w0", "gateway.w1"}
            assert re.search(r"gateway\.w0 seq 1\.\.\d+ intact, gateway\.w1 seq 1\.\.\d+ intact",
                             report["verification"]["summary"]), report["verification"]
    # SIGHUP reaches both workers: a reload record in each chain
    gw2.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: all(any(r["type"] == "reload" for r in c) for c in _chains(tmp_path).values()))
    # the admin console's RELOAD, on whichever worker takes it, reloads both
    with psycopg.connect(f"postgresql://auditor:auditor-demo-password@{gw2.host}:{gw2.port}/gateway",
                         autocommit=True) as admin:
        admin.execute("RELOAD")
    _wait_for(lambda: all(sum(r["type"] == "reload" for r in c) == 2 for c in _chains(tmp_path).values()))
    # SIGTERM drains both, then the supervisor exits 0; each chain ends in a closing checkpoint
    gw2.process.send_signal(signal.SIGTERM)
    assert gw2.process.wait(60) == 0
    for name, records in _chains(tmp_path).items():
        assert records[-1]["type"] == "checkpoint" and records[-1]["reason"] == "close", name
    done = _audit_cli("verify", "--json", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert set(result["chains"]) == {"gateway.w0", "gateway.w1"}
    assert result["chain_status"] == {"gateway.w0": "intact", "gateway.w1": "intact"}
    # search reads both chains, in time order
    found = _audit_cli("search", "--json", "--requester", "dmv_clerk", str(tmp_path))
    assert found.returncode == 0, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert {r["instance"] for r in rows} == {"gateway.w0", "gateway.w1"}
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    # the end cut off worker 0's file (a copy of the folder): the tip file beside it gives it away
    import shutil

    cut = tmp_path / "cut"
    cut.mkdir()
    for f in tmp_path.iterdir():
        if f.is_file() and (f.suffix == ".jsonl" or f.name.endswith(".tip.json") or f.name == "audit.key"):
            shutil.copy(f, cut / f.name)
    lines0 = (cut / "requests.w0.jsonl").read_text().splitlines(keepends=True)
    (cut / "requests.w0.jsonl").write_text("".join(lines0[:-2]))
    short = _audit_cli("verify", str(cut))
    assert short.returncode == 1, short.stdout + short.stderr
    assert "instance 'gateway.w0'" in short.stderr and "cut off the end" in short.stderr
    assert "gateway.w0 seq 1.." in short.stdout and "BROKEN at its end" in short.stdout
    assert re.search(r"gateway\.w1 seq 1\.\.\d+ intact", short.stdout), short.stdout
    # a record edited in worker 1's file: verify names that file and chain, and worker 0's stays intact
    path = tmp_path / "requests.w1.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "request")
    edited = json.loads(lines[n])
    edited["requester"] = "someone_else"
    lines[n] = json.dumps(edited, sort_keys=True, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))
    broken = _audit_cli("verify", str(tmp_path))
    assert broken.returncode == 1
    assert f"requests.w1.jsonl line {n + 1}" in broken.stderr and "edited" in broken.stderr
    assert "requests.w0.jsonl" not in broken.stderr
    assert "gateway.w0 seq 1.." in broken.stdout and "intact" in broken.stdout
    assert re.search(r"gateway\.w1 seq 1\.\.\d+ BROKEN", broken.stdout), broken.stdout


def test_a_killed_worker_is_restarted_and_logged(gw2: WireGateway, tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    def started() -> dict[str, int]:
        found = {index: int(pid) for index, pid in re.findall(r"worker w(\d) started \(pid (\d+)\)", log.read_text())}
        return found if set(found) == {"0", "1"} else {}

    pids = _wait_for(started)
    os.kill(pids["1"], signal.SIGKILL)
    _wait_for(lambda: "worker w1 (pid %d) died (signal SIGKILL): restarting it" % pids["1"] in log.read_text())
    _wait_for(lambda: len(re.findall(r"worker w1 started", log.read_text())) == 2)
    _served_by_both(gw2, tmp_path)  # the new worker 1 serves (and continues its chain)
    gw2.process.send_signal(signal.SIGTERM)
    assert gw2.process.wait(60) == 0
    done = _audit_cli("verify", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_cancel_reaches_the_session_on_the_other_worker(gw2: WireGateway, dmv_dsn: str) -> None:
    with psycopg.connect(dmv_dsn, autocommit=True) as conn:
        n = 2_000_000
        t0 = time.perf_counter()
        conn.execute("SELECT count(*) FROM generate_series(1, %s)", (n,)).fetchone()
        took = max(time.perf_counter() - t0, 0.01)
    slow = f"SELECT count(*) FROM generate_series(1, {int(n * 30 / took)})"  # about 30 s
    for _ in range(6):  # the cancel connection lands on either worker; several rounds cover both cases
        with _connect(gw2) as conn:
            conn.execute("SELECT count(*) FROM generate_series(1, 10)").fetchall()  # the shape, planned
            timer = threading.Timer(1.0, conn.cancel)
            timer.start()
            t0 = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(slow).fetchall()
            assert time.monotonic() - t0 < 15
            timer.join()


def _capped_policy(tmp: Path, **limits: Any) -> Path:
    data = yaml.safe_load((ROOT / "policies/colorado-dmv.yaml").read_text())
    data["limits"]["overrides"] = [{"requester": "gov_office", "individuals_per_day": INDIVIDUALS_CAP}]
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_bulk_limit_and_the_connection_cap_hold_across_two_workers(dmv_dsn: str, tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    policy = _capped_policy(tmp_path)
    for gw in start_gateway(dmv_dsn, audit, GATEWAY_WORKERS="2", GATEWAY_POLICY=str(policy),
                            GATEWAY_MAX_CONNECTIONS_PER_REQUESTER="3", GATEWAY_HTTP_RATE_PER_SECOND="0.05",
                            GATEWAY_HTTP_RATE_BURST="4"):
        # the HTTP rate limit per token: a burst of 4 in all, whichever worker each connection reaches
        codes = []
        for _ in range(10):
            with httpx.Client(timeout=30) as client:  # a new connection each time
                codes.append(client.post(f"http://{gw.host}:{gw.http_port}/v1/query",
                                         json={"sql": "SELECT 1", "purpose": "service_delivery"},
                                         headers={"Authorization": "Bearer dmv_clerk-demo-token"}).status_code)
        assert codes.count(200) == 4 and codes.count(429) == 6, codes
        answered, refused = 0, 0
        for person in range(301, 301 + 2 * INDIVIDUALS_CAP):  # one new individual per connection
            with _connect(gw, "gov_office", GOV) as conn:
                try:
                    conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (person,)).fetchall()
                    answered += 1
                except psycopg.errors.ConfigurationLimitExceeded as exc:
                    assert "distinct individuals today" in str(exc)
                    refused += 1
        assert (answered, refused) == (INDIVIDUALS_CAP, INDIVIDUALS_CAP)  # not twice the cap
        requests = [r for c in _chains(audit).values() for r in c
                    if r["type"] == "request" and r.get("requester") == "gov_office"]
        assert {r["instance"] for r in requests} == {"gateway.w0", "gateway.w1"}  # both workers counted
        # three sessions of one requester at most, over all workers: the fourth and fifth are refused
        held = [_connect(gw, "gov_office", GOV) for _ in range(3)]
        try:
            for _ in range(2):
                with pytest.raises(psycopg.OperationalError, match="too many connections for requester"):
                    _connect(gw, "gov_office", GOV).close()
        finally:
            for conn in held:
                conn.close()
        _wait_for(lambda: _try_connect(gw))  # the slots are free again once they left
        # a guesser is slowed by the failures it had on the other worker too
        for _ in range(4):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(host=gw.host, port=gw.port, user="gov_office", password="wrong", dbname="dmv",
                                sslmode="disable", connect_timeout=20).close()
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=gw.host, port=gw.port, user="gov_office", password="wrong", dbname="dmv",
                            sslmode="disable", connect_timeout=20).close()
        assert time.monotonic() - t0 >= 1.9  # 0.25 * 2**3 after four failures, wherever they landed


def _try_connect(gw: WireGateway) -> bool:
    try:
        _connect(gw, "gov_office", GOV).close()
    except psycopg.OperationalError:
        return False
    return True


def _quarter() -> str:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


def test_postgresql_sink_one_chain_per_worker_and_the_report_reads_both(dmv_dsn: str, tmp_path: Path,
                                                                         fresh_db: Any) -> None:
    audit_dsn = fresh_db("audit_workers")
    key = tmp_path / "audit.key"
    for gw in start_gateway(dmv_dsn, tmp_path, GATEWAY_WORKERS="2", GATEWAY_AUDIT_DSN=audit_dsn,
                            GATEWAY_AUDIT_KEY=str(key)):
        for i in range(60):
            with _connect(gw) as conn:
                conn.execute(POINT, (1 + i,)).fetchall()
            with psycopg.connect(audit_dsn) as db:
                instances = {r[0] for r in db.execute(
                    "SELECT DISTINCT instance FROM gateway_request_log WHERE type = 'request'")}
            if instances == {"gateway.w0", "gateway.w1"}:
                break
        assert instances == {"gateway.w0", "gateway.w1"}
        gw.process.send_signal(signal.SIGTERM)
        assert gw.process.wait(60) == 0
    assert not list(tmp_path.glob("*.jsonl"))  # no file chain beside the key
    done = _audit_cli("verify", "--json", "--dsn", audit_dsn, "--key", str(key))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["chain_status"] == {"gateway.w0": "intact", "gateway.w1": "intact"}
    report = subprocess.run([sys.executable, "-m", "gateway", "report", "--quarter", _quarter(), "--format", "json",
                             "--out", "-", "--dsn", audit_dsn, "--key", str(key)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert set(data["chain_tips"]) == {"gateway.w0", "gateway.w1"}
    assert data["verification"]["ok"] is True and data["attestation"]["made"] is True
    (tmp_path / "before.json").write_text(report.stdout)
    # one row of worker 0 edited: verify and the report name that chain; the other stays intact
    with psycopg.connect(audit_dsn, autocommit=True) as db:
        seq = db.execute("SELECT min(seq) FROM gateway_request_log WHERE instance = 'gateway.w0' "
                         "AND type = 'request'").fetchone()[0]
        db.execute("UPDATE gateway_request_log SET line = replace(line, '\"dmv_clerk\"', '\"nobody\"') "
                   "WHERE instance = 'gateway.w0' AND seq = %s", (seq,))
    broken = _audit_cli("verify", "--dsn", audit_dsn, "--key", str(key), "--since-report", str(tmp_path / "before.json"))
    assert broken.returncode == 1
    assert f"instance 'gateway.w0' seq {seq}" in broken.stderr
    assert re.search(r"gateway\.w0 seq 1\.\.\d+ BROKEN", broken.stdout) and "gateway.w1 seq 1.." in broken.stdout
    again = subprocess.run([sys.executable, "-m", "gateway", "report", "--quarter", _quarter(), "--format", "json",
                            "--out", "-", "--dsn", audit_dsn, "--key", str(key)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, check=False)
    data = json.loads(again.stdout)
    assert data["attestation"]["made"] is False and "gateway.w0 seq 1.." in data["attestation"]["statement"]


def test_worker_settings_split_the_backend_connections_and_name_the_chain() -> None:
    from gateway.config import load_settings
    from gateway.workers import worker_settings

    settings = load_settings(None, env={"GATEWAY_WORKERS": "3", "GATEWAY_POOL_SIZE": "10",
                                        "GATEWAY_AUDIT_PATH": "/var/log/gw/audit.jsonl", "GATEWAY_INSTANCE_NAME": "gw1"})
    assert settings.workers == 3
    w2 = worker_settings(settings, 2)
    assert (w2.audit_path, w2.instance_name) == ("/var/log/gw/audit.w2.jsonl", "gw1.w2")
    assert (w2.pool_size, w2.wire_pool_size, w2.workers) == (4, 14, 1)  # 10 and 40 in all, rounded up
    assert load_settings(None, env={}).workers == 1  # one process unless asked


def test_one_metrics_page_for_every_worker() -> None:
    from gateway.workers import merge_metrics

    page = ("# HELP gateway_requests_total requests\n# TYPE gateway_requests_total counter\n"
            'gateway_requests_total{decision="allow"} 3\n# HELP gateway_worker w\n# TYPE gateway_worker gauge\n'
            "gateway_worker 0\n# HELP gateway_wire_clients c\n# TYPE gateway_wire_clients gauge\ngateway_wire_clients 2\n")
    merged = merge_metrics({0: page, 1: page.replace("} 3", "} 5"), 2: None}, answered_by=1)
    lines = merged.splitlines()
    assert 'gateway_requests_total{worker="w0",decision="allow"} 3' in lines
    assert 'gateway_requests_total{worker="w1",decision="allow"} 5' in lines
    assert 'gateway_wire_clients{worker="w1"} 2' in lines
    assert lines.count("# TYPE gateway_requests_total counter") == 1
    assert "gateway_worker 1" in lines and "gateway_workers 3" in lines
    assert 'gateway_worker_up{worker="w2"} 0' in lines and lines.count("# TYPE gateway_worker gauge") == 1


def test_workers_that_keep_dying_at_start_stop_the_gateway(tmp_path: Path) -> None:
    from frontdoor_pg_support import gateway_env
    from gateway.pgserver.launcher import free_port

    dead = f"postgresql://nobody:nothing@127.0.0.1:{free_port()}/dmv"  # nothing listens there
    env = gateway_env(dead, tmp_path, free_port(), free_port(), GATEWAY_WORKERS="2")
    done = subprocess.run([sys.executable, "-m", "gateway", "serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 1
    log = done.stdout + done.stderr
    assert "died at start 3 times in a row" in log and "stopping the gateway" in log
    assert "restarting it" in log  # it was tried again before giving up
