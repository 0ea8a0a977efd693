"""Tail truncation: a log whose last records were cut off is detected, by the tip file beside it, by
the PostgreSQL sink's tip table, and by a previous report (``audit verify --since-report``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg

from gateway.audit.file_sink import AuditLog
from gateway.audit.pg_sink import PgAuditLog, verify_pg
from gateway.audit.tips import read_report
from gateway.audit.verify import verify_files
from tests.frontdoor_pg_support import ROOT, start_gateway

KEY = bytes(range(32))


def _gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def _cut(path: Path, n: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-n]))


def test_last_50_records_cut_from_a_real_gateway_log(dmv_dsn: str, tmp_path: Path) -> None:
    script = tmp_path / "queries.sql"
    script.write_text("".join(f"SELECT license_class FROM dmv.licenses WHERE license_id = {i};\n" for i in range(1, 41)))
    for gw in start_gateway(dmv_dsn, tmp_path):
        done = gw.psql("dmv_clerk", f"\\i {script}")
        assert done.returncode == 0, done.stderr
    log = tmp_path / "requests.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["type"] == "checkpoint" and records[-1]["reason"] == "close"
    assert records[-1]["last_seq"] == records[-2]["seq"] and records[-1]["last_hash"] == records[-2]["hash"]
    tip = json.loads((tmp_path / "requests.tip.json").read_text())["instances"]
    assert list(tip.values())[0]["seq"] == records[-1]["seq"]

    intact = _gateway("audit", "verify", str(tmp_path))
    assert intact.returncode == 0, intact.stderr
    report = tmp_path / "previous.json"
    made = _gateway("report", "--quarter", _this_quarter(records[-1]["time"]), "--format", "json", "--out", str(report),
                    str(tmp_path))
    assert made.returncode == 0, made.stderr
    assert read_report(report)[0].seq == records[-1]["seq"]

    _cut(log, 50)
    cut = _gateway("audit", "verify", str(tmp_path))
    assert cut.returncode == 1
    assert "50 record(s) cut off the end" in cut.stderr and "tip file requests.tip.json" in cut.stderr

    # whoever cut the log can remove the tip file too: the previous report still knows the end
    (tmp_path / "requests.tip.json").unlink()
    fooled = _gateway("audit", "verify", str(tmp_path))
    assert fooled.returncode == 0  # without an anchor the shorter chain is valid...
    caught = _gateway("audit", "verify", str(tmp_path), "--since-report", str(report))
    assert caught.returncode == 1 and "50 record(s) cut off the end" in caught.stderr
    assert "report " in caught.stderr


def _this_quarter(time: str) -> str:
    year, month = int(time[:4]), int(time[5:7])
    return f"{year}-Q{(month - 1) // 3 + 1}"


def test_a_rewritten_tail_is_not_the_record_the_report_saw(tmp_path: Path) -> None:
    async def write(n: int) -> None:
        sink = AuditLog(tmp_path / "requests.jsonl", instance="gw-t", key=KEY)
        await sink.start()
        for i in range(n):
            await sink.append({"type": "request", "request_id": f"r{i}", "requester": "u", "decision": "allow"})
        await sink.close()

    asyncio.run(write(10))
    from gateway.audit.report import chain_tips
    from gateway.audit.verify import iter_records

    tips = chain_tips(iter_records([tmp_path]))
    (tmp_path / "prev.json").write_text(json.dumps({"quarter": "2026-Q4", "chain_tips": tips}))
    anchors = read_report(tmp_path / "prev.json")
    assert verify_files([tmp_path], KEY, anchors).ok
    # cut back and write again with the key: a valid chain, but not the one the report saw
    _cut(tmp_path / "requests.jsonl", 3)
    (tmp_path / "requests.tip.json").unlink()
    asyncio.run(write(5))
    result = verify_files([tmp_path], KEY, anchors)
    assert not result.ok
    assert any("hash differs" in f.message for f in result.findings)


def test_pg_sink_tip_table_finds_rows_cut_off(fresh_db: Callable[[str], str]) -> None:
    dsn = fresh_db("audit_tail")

    async def go() -> None:
        sink = PgAuditLog(dsn, instance="gw-p", key=KEY)
        await sink.start()
        for i in range(80):
            await sink.append({"type": "request", "request_id": f"r{i}", "requester": "u", "decision": "allow"})
        await sink.close()
        assert (await verify_pg(dsn, KEY)).ok
        conn = await asyncpg.connect(dsn)
        try:
            tip = await conn.fetchrow("SELECT seq, hash FROM gateway_request_log_tip WHERE instance = 'gw-p'")
            assert tip["seq"] == 82  # start + 80 + close
            await conn.execute("DELETE FROM gateway_request_log WHERE seq > 32")
        finally:
            await conn.close()
        result = await verify_pg(dsn, KEY)
        assert not result.ok
        assert any("50 record(s) cut off the end" in f.message and "gateway_request_log_tip" in f.message
                   for f in result.findings)

    asyncio.run(go())


def test_a_tail_cut_while_the_gateway_runs_is_seen_within_a_second(dmv_dsn: str, tmp_path: Path) -> None:
    """No checkpoint falls in the window (1000 records or 60 s apart): the tip is refreshed after a batch
    once a second has passed, so records cut off the end of a running gateway's log are still noticed."""
    import time

    for gw in start_gateway(dmv_dsn, tmp_path):
        first = gw.psql("dmv_clerk", "SELECT 1")
        assert first.returncode == 0, first.stderr
        time.sleep(1.2)
        for i in range(3):
            done = gw.psql("dmv_clerk", f"SELECT license_class FROM dmv.licenses WHERE license_id = {i + 1}")
            assert done.returncode == 0, done.stderr
        time.sleep(1.2)
        last = gw.psql("dmv_clerk", "SELECT 2")  # its batch rewrites the tip: the chain's end after it
        assert last.returncode == 0, last.stderr
        time.sleep(0.3)
        log = tmp_path / "requests.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()]
        tip = list(json.loads((tmp_path / "requests.tip.json").read_text())["instances"].values())[0]
        start = next(r for r in records if r.get("type") == "checkpoint" and r.get("reason") == "start")
        assert tip["seq"] > records[-6]["seq"] > start["seq"]  # refreshed since the start: cutting 6 shows
        assert not [r for r in records if r.get("type") == "checkpoint" and r.get("reason") == "periodic"]
        _cut(log, 6)
        cut = _gateway("audit", "verify", str(tmp_path))
        assert cut.returncode == 1 and "cut off the end" in cut.stderr, cut.stderr


def test_the_tip_file_keeps_other_instances_and_is_replaced_whole(tmp_path: Path) -> None:
    """write_tip reads the file once, then rewrites it from what it returned: another instance's entry
    found there stays, and no temporary file is left beside it."""
    from gateway.audit.tips import read_tip_instances, write_tip

    path = tmp_path / "requests.tip.json"
    path.write_text(json.dumps({"version": 1, "instances": {"other": {"seq": 7, "hash": "h7", "time": "t"}}}))
    known = write_tip(path, {"instance": "gw1", "seq": 1, "hash": "a", "time": "t1"})
    known = write_tip(path, {"instance": "gw1", "seq": 2, "hash": "b", "time": "t2"}, known)
    assert read_tip_instances(path) == {"other": {"seq": 7, "hash": "h7", "time": "t"},
                                        "gw1": {"seq": 2, "hash": "b", "time": "t2"}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.tip.json"]
