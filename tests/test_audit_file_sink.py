"""The file sink: one durable record per append under group commit; real write failures refuse
requests and the log resumes after repair; a killed writer leaves a log that verifies."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway.audit.file_sink import AuditLog
from gateway.audit.verify import iter_records, verify_files
from gateway.errors import AuditUnavailable

KEY = bytes(range(32))


def request(i: int, front_door: str = "pg") -> dict[str, object]:
    return {"type": "request", "request_id": f"r{i}", "front_door": front_door, "decision": "allow"}


def test_exactly_one_request_record_per_append_under_group_commit(tmp_path: Path) -> None:
    async def go() -> AuditLog:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY)
        await log.start()
        await asyncio.gather(*(log.append(request(i, "pg" if i % 2 else "http")) for i in range(2000)))
        await log.close()
        return log

    log = asyncio.run(go())
    assert log.batches < 200  # grouped: far fewer fdatasyncs than records
    records = list(iter_records([tmp_path]))
    ids = [r["request_id"] for r in records if r["type"] == "request"]
    assert sorted(ids) == sorted(f"r{i}" for i in range(2000))
    assert len(ids) == len(set(ids))
    assert verify_files([tmp_path], KEY).ok


def test_build_request_record_hashes_with_the_log_key(tmp_path: Path) -> None:
    async def go() -> dict[str, object]:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY)
        await log.start()
        record = log.build_request_record(request_id="r1", requester="dmv_clerk", agency="DMV", front_door="pg",
                                          sql_received="select 1 from dmv.licenses where license_number = 'CO5'",
                                          decision="allow")  # fmt: skip
        await log.append(record)
        await log.close()
        return record

    record = asyncio.run(go())
    assert "CO5" not in json.dumps(record) and record["instance"] == "gw1" and record["schema"] == 1
    assert "CO5" not in (tmp_path / "requests.jsonl").read_text()


def _moved_file_sink(path: Path, check: str) -> AuditLog:
    """A sink whose per-batch moved-file check is libc's statx (GIL held) or, as where libc has none,
    os.stat."""
    log = AuditLog(path, instance="gw1", key=KEY)
    if check == "os.stat":
        log._statx = None
    elif log._statx is None:
        pytest.skip("this libc has no statx")
    return log


@pytest.mark.parametrize("check", ["statx", "os.stat"])
def test_disk_full_refuses_then_resumes(tmp_path: Path, check: str) -> None:
    """ENOSPC for real: the log path becomes a symlink to /dev/full while the gateway runs."""
    path = tmp_path / "requests.jsonl"

    async def go() -> None:
        log = _moved_file_sink(path, check)
        await log.start()
        await log.append(request(1))
        path.rename(tmp_path / "requests.000000000001.jsonl")  # the operator moves the file away...
        path.symlink_to("/dev/full")  # ...and the path now points at a full device
        with pytest.raises(AuditUnavailable) as info:
            await log.append(request(2))
        assert info.value.sqlstate == "58030" and info.value.http_status == 503
        assert "No space left on device" in (info.value.detail or "")
        assert not log.available
        with pytest.raises(AuditUnavailable):
            await log.append(request(3))  # still refused, gateway still running
        path.unlink()  # repaired
        await log.append(request(4))
        assert log.available
        await log.close()

    asyncio.run(go())
    records = list(iter_records([tmp_path]))
    ids = [r["request_id"] for r in records if r["type"] == "request"]
    assert ids == ["r1", "r4"]  # what was refused is not in the log, and nothing acknowledged is missing
    assert any(r.get("reason") == "resume" for r in records)
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings


@pytest.mark.parametrize("check", ["statx", "os.stat"])
def test_path_gone_refuses_then_resumes_in_the_same_chain(tmp_path: Path, check: str) -> None:
    """The log directory is replaced by a regular file (ENOTDIR), then put back."""
    logdir = tmp_path / "logs"
    path = logdir / "requests.jsonl"

    async def go() -> None:
        log = _moved_file_sink(path, check)
        await log.start()
        assert (log._path_id is not None) == (check == "statx")  # the check under test is the one in use
        await log.append(request(1))
        logdir.rename(tmp_path / "logs-away")
        logdir.write_text("not a directory")
        with pytest.raises(AuditUnavailable) as info:
            await log.append(request(2))
        assert "Not a directory" in (info.value.detail or "") or "No such file" in (info.value.detail or "")
        logdir.unlink()
        (tmp_path / "logs-away").rename(logdir)
        await log.append(request(3))
        await log.close()

    asyncio.run(go())
    result = verify_files([logdir], KEY)
    assert result.ok, result.findings
    ids = [r["request_id"] for r in iter_records([logdir]) if r["type"] == "request"]
    assert ids == ["r1", "r3"]


def test_unwritable_at_start_is_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")

    async def go() -> None:
        log = AuditLog(blocker / "requests.jsonl", instance="gw1", key=KEY)
        await log.start()
        with pytest.raises(AuditUnavailable):
            await log.append(request(1))
        await log.close()

    asyncio.run(go())


def test_second_writer_on_the_same_file_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        first = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY)
        await first.start()
        await first.append(request(1))
        second = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY)
        await second.start()
        with pytest.raises(AuditUnavailable) as info:
            await second.append(request(2))
        assert "another gateway process" in (info.value.detail or "")
        await second.close()
        await first.close()

    asyncio.run(go())
    assert verify_files([tmp_path], KEY).ok


def test_key_is_created_beside_the_log_with_mode_0600(tmp_path: Path) -> None:
    async def go() -> None:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw1")
        await log.start()
        await log.append(request(1))
        await log.close()

    asyncio.run(go())
    key_file = tmp_path / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert verify_files([tmp_path], bytes.fromhex(key_file.read_text().strip())).ok


def test_rotation_and_retention_keep_a_verifiable_chain(tmp_path: Path) -> None:
    async def write(n: int, retention: float | None) -> None:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY, rotate_bytes=1200,
                       retention_days=retention)  # fmt: skip
        await log.start()
        for i in range(n):
            await log.append(request(i))
        await log.close()

    asyncio.run(write(30, None))
    rotated = sorted(tmp_path.glob("requests.0*.jsonl"))
    assert len(rotated) >= 4 and verify_files([tmp_path], KEY).ok
    # Retention goes by the time of a file's last record (editing it would be tampering), so use a
    # retention so short that every rotated file is past it.
    asyncio.run(write(5, 1e-9))
    assert not any(p.exists() for p in rotated)
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings
    assert any("removed by retention" in f.message for f in result.findings)


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from gateway.audit.file_sink import AuditLog

    async def main():
        journal = {"journal_bytes": int(sys.argv[2])} if len(sys.argv) > 2 else {}  # else the default
        log = AuditLog(Path(sys.argv[1]), instance="gw1", key=bytes(range(32)), fsync_interval_ms=0, **journal)
        await log.start()
        i = 0
        while True:
            batch = [log.append({"type": "request", "request_id": f"r{i + k}", "pad": "x" * 3000})
                     for k in range(16)]
            await asyncio.gather(*batch)
            print(i + 15, flush=True)  # acknowledged: a result could be released now
            i += 16

    asyncio.run(main())
    """
)


def test_sigkill_mid_write_leaves_a_log_that_verifies(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = -1
    deadline = time.monotonic() + 30
    while acked < 800 and time.monotonic() < deadline:
        acked = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert acked >= 800
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings  # a torn last line, if any, is only a warning
    ids = {r["request_id"] for r in iter_records([tmp_path]) if r["type"] == "request"}
    assert {f"r{i}" for i in range(acked + 1)} <= ids  # nothing acknowledged is missing

    async def restart() -> None:
        log = AuditLog(path, instance="gw1", key=KEY)
        await log.start()
        await log.append(request(99999))
        await log.close()

    asyncio.run(restart())
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings
    assert result.chains["gw1"][1] > acked


def test_a_torn_tail_after_kill_is_recognised(tmp_path: Path) -> None:
    """Simulate the crash exactly: a whole log, then half of the next line."""
    path = tmp_path / "requests.jsonl"

    async def go() -> None:
        log = AuditLog(path, instance="gw1", key=KEY)
        await log.start()
        for i in range(5):
            await log.append(request(i))
        # no close: the process "dies" here

    asyncio.run(go())
    whole = path.read_bytes()
    last = whole.splitlines(keepends=True)[-1]
    with open(path, "ab") as fh:
        fh.write(last[: len(last) // 2])
    result = verify_files([tmp_path], KEY)
    assert result.ok
    assert [f for f in result.findings if f.severity == "warning"][0].where == "requests.jsonl line 7"


def test_both_sinks_are_request_logs_and_unavailable_after_close(tmp_path: Path) -> None:
    from gateway.audit.pg_sink import PgAuditLog
    from gateway.audit.sink import RequestLog

    async def go() -> None:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY)
        assert isinstance(log, RequestLog) and not log.available
        await log.start()
        assert log.available
        await log.append(request(1))
        await log.close()
        assert not log.available
        records = await log.read_records()
        assert [r["type"] for r in records if r["type"] == "request"] == ["request"]
        assert (await log.verify()).ok

    asyncio.run(go())
    assert isinstance(PgAuditLog("postgresql://x@127.0.0.1:1/x", instance="gw1", key=KEY), RequestLog)


def test_an_outcome_goes_with_the_next_request_or_after_the_linger(tmp_path: Path) -> None:
    """A record nobody waits for starts no write of its own: a lone client's outcome is written with
    its next request (one write per request, not two), and without a next request after the linger."""
    from gateway.audit.record import per_request
    from gateway.audit.splice import outcome_entry

    linger_ms = 300.0

    async def go() -> tuple[int, int, float]:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY, fsync_interval_ms=linger_ms)
        await log.start()
        await log.append(request(0))  # the start checkpoint and r0
        first = log.batches
        for i in range(1, 6):
            await log.append(request(i))
            log.append_outcome(outcome_entry(f"r{i}", "ok", 1, None, 0.25, None))
        in_step = log.batches - first  # r1, then o1+r2, ..., o4+r5
        t0 = time.monotonic()
        while log.records < 11 and time.monotonic() - t0 < 10:
            await asyncio.sleep(0.005)
        waited = time.monotonic() - t0
        total = log.batches - first
        await log.close()
        return in_step, total, waited

    in_step, total, waited = asyncio.run(go())
    assert in_step == 5
    assert total == 6  # o5 alone, once the linger passed
    assert waited >= linger_ms / 1000 * 0.5
    records = [r for r in per_request(iter_records([tmp_path])) if r["type"] in ("request", "outcome")]
    order = [(r["type"][0], r["request_id"]) for r in records]
    assert order == [("r", "r0"), ("r", "r1")] + [x for i in range(2, 6) for x in (("o", f"r{i - 1}"), ("r", f"r{i}"))] \
        + [("o", "r5")]
    assert verify_files([tmp_path], KEY).ok


def test_a_mixed_batch_seals_in_order_with_periodic_checkpoints_and_refuses_only_the_bad_record(tmp_path: Path) -> None:
    """Prepared records (sealed in compiled runs), dict events, a record that cannot be serialized and
    periodic checkpoints falling inside the runs, all in one batch: the chain verifies, every record is
    in queue order, and only the bad record's waiter is refused."""
    from gateway.audit.canonical import PreparedRecord, RecordTemplate

    template = RecordTemplate({"schema": 1, "type": "request"}, ("request_id", "time", "rows", "instance", "seq", "prev"))

    def prepared(request_id: str, rows: object) -> PreparedRecord:
        return PreparedRecord(template, {"request_id": request_id, "time": "2026-07-01T00:00:00.000000Z", "rows": rows})

    async def go() -> list[BaseException | None]:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw1", key=KEY, checkpoint_every=4)
        await log.start()
        await log.append(request(0))
        futures = []
        for i in range(1, 15):
            if i == 7:
                futures.append(log.submit(prepared("bad", object())))  # not JSON: refused, the others are not
            elif i % 3 == 0:
                futures.append(log.submit(request(i)))  # a dict record
            else:
                futures.append(log.submit(prepared(f"r{i}", i)))
        results = await asyncio.gather(*futures, return_exceptions=True)
        await log.close()
        return list(results)

    results = asyncio.run(go())
    assert [i + 1 for i, r in enumerate(results) if r is not None] == [7]
    assert isinstance(results[6], AuditUnavailable)
    records = list(iter_records([tmp_path]))
    ids = [r["request_id"] for r in records if r["type"] == "request"]
    assert ids == ["r0"] + [f"r{i}" for i in range(1, 15) if i != 7]
    assert sum(1 for r in records if r.get("reason") == "periodic") >= 3
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert verify_files([tmp_path], KEY).ok
