"""The request log's loop lane: with the journal in use, a batch is sealed and appended on the event loop
and its journal frame written by the C disk thread (``gateway/audit/_disk.c``), which never takes the GIL;
rotation, reopening, an outage's retries and close go to the writer thread. Real files, both paths:
the chain verifies, nothing acknowledged is missing, the tip file anchors the end, and a batch the
lane could not write is refused and cut off, not released."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gateway.audit.file_sink import AuditLog
from gateway.audit.journal import read_frames, journal_path
from gateway.audit.tips import read_tip_instances, tip_path
from gateway.audit.verify import iter_records, verify_files
from gateway.audit.writer_thread import DISK
from gateway.errors import AuditUnavailable

KEY = bytes(range(32))
needs_disk = pytest.mark.skipif(DISK is None, reason="gateway.audit._disk is not built (or GATEWAY_PURE_PYTHON)")


async def _workload(log: AuditLog, rounds: int = 30, width: int = 8) -> list[str]:
    """Sequential requests, then bursts of ``width`` at once, with outcomes nobody waits for; returns the
    request ids that were acknowledged."""
    acked: list[str] = []
    for i in range(rounds):
        await log.submit({"type": "request", "request_id": f"s{i}", "sql": "SELECT 1"})
        acked.append(f"s{i}")
    for r in range(rounds):
        ids = [f"b{r}-{k}" for k in range(width)]
        await asyncio.gather(*(log.submit({"type": "request", "request_id": rid, "sql": "SELECT 2"}) for rid in ids))
        acked.extend(ids)
        log.append_nowait({"type": "request", "request_id": f"n{r}", "sql": "SELECT 3"})
    return acked


def _ids(folder: Path) -> list[str]:
    return [r["request_id"] for r in iter_records([folder]) if r.get("type") == "request"]


@needs_disk
def test_batches_are_written_from_the_loop_and_the_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"

    async def go() -> tuple[int, int, list[str]]:
        log = AuditLog(path, instance="gw1", key=KEY)
        await log.start()
        log.tip_seconds = 0.0  # a tail anchor after every batch: stored by the thread, never by the loop
        acked = await _workload(log)
        await asyncio.sleep(0.05)  # the last outcomes' linger
        lane, batches = log.lane_batches, log.batches
        await log.close()
        return lane, batches, acked

    lane, batches, acked = asyncio.run(go())
    assert lane >= 30 and lane >= batches - 2  # all but the start's reopen-free close went through the lane
    ids = _ids(tmp_path)
    assert set(acked) <= set(ids)
    assert {f"n{r}" for r in range(30)} <= set(ids)  # records nobody waits for are written too
    result = verify_files([tmp_path], KEY)
    assert not result.broken and result.records == len(list(iter_records([tmp_path])))
    tips = read_tip_instances(tip_path(path))
    assert tips["gw1"]["seq"] == result.chains["gw1"][1]
    assert read_frames(journal_path(path)) == []  # a clean close leaves the journal cleared


def test_without_the_lane_the_thread_writes_everything(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"

    async def go() -> tuple[int, list[str]]:
        log = AuditLog(path, instance="gw1", key=KEY, lane=False)
        await log.start()
        acked = await _workload(log, rounds=10)
        await log.close()
        return log.lane_batches, acked

    lane, acked = asyncio.run(go())
    assert lane == 0
    assert set(acked) <= set(_ids(tmp_path))
    assert not verify_files([tmp_path], KEY).broken


@needs_disk
def test_rotation_and_a_wrapping_journal_go_through_the_thread_and_the_lane_resumes(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"

    async def go() -> tuple[int, int, list[str]]:
        # a 64 KiB journal wraps every ~100 records here; the file rotates every 20 KB
        log = AuditLog(path, instance="gw1", key=KEY, journal_bytes=64 * 1024, rotate_bytes=20_000)
        await log.start()
        acked = await _workload(log, rounds=60)
        lane, batches = log.lane_batches, log.batches
        await log.close()
        return lane, batches, acked

    lane, batches, acked = asyncio.run(go())
    rotated = [p for p in tmp_path.iterdir() if p.name.startswith("requests.") and p.name.endswith(".jsonl")
               and p.name != "requests.jsonl"]
    assert len(rotated) >= 3
    assert 0 < lane < batches  # the rotations were the thread's, the rest the lane's
    assert set(acked) <= set(_ids(tmp_path))
    result = verify_files([tmp_path], KEY)
    assert not result.broken, result


@needs_disk
def test_a_journal_write_that_fails_refuses_its_batch_and_the_log_recovers(tmp_path: Path) -> None:
    """The disk thread's write fails (the journal's descriptor is made read-only behind the log's back:
    EBADF): that batch's waiters are refused, its bytes are cut off the file, the next batch is written by
    the thread into a reopened file, and the lane takes over again."""
    path = tmp_path / "requests.jsonl"

    async def go() -> tuple[list[str], list[str], int]:
        log = AuditLog(path, instance="gw1", key=KEY)
        await log.start()
        ok = await _workload(log, rounds=3, width=1)
        journal = log._journal
        assert journal is not None
        good = journal.fd
        broken = os.open(journal.path, os.O_RDONLY)
        os.dup2(broken, good)  # the same number, now read-only: pwrite fails with EBADF
        refused: list[str] = []
        try:
            await log.submit({"type": "request", "request_id": "lost", "sql": "SELECT 1"})
        except AuditUnavailable:
            refused.append("lost")
        restored = os.open(journal.path, os.O_WRONLY | os.O_DSYNC)
        os.dup2(restored, good)
        os.close(restored)
        os.close(broken)
        await asyncio.sleep(log.retry_seconds)
        before = log.lane_batches
        after = []
        for i in range(5):
            await log.submit({"type": "request", "request_id": f"after{i}", "sql": "SELECT 1"})
            after.append(f"after{i}")
        resumed = log.lane_batches - before
        await log.close()
        return ok + after, refused, resumed

    acked, refused, resumed = asyncio.run(go())
    assert refused == ["lost"]
    ids = _ids(tmp_path)
    assert "lost" not in ids
    assert set(acked) <= set(ids)
    assert resumed >= 3  # the first one after the outage is the thread's (it reopens the file)
    result = verify_files([tmp_path], KEY)
    assert not result.broken, result
