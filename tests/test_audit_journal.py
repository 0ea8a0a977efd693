"""The request log's durability journal: batches durable in a preallocated file, the log file written
plainly; after a crash of the machine (the log file's page cache lost), the next start writes back
from the journal every batch that was acknowledged. Real files, a real writer process killed with
SIGKILL; the machine's crash is simulated by cutting the log file where unsynced data would be lost."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway.audit.file_sink import AuditLog
from gateway.audit.journal import HEADER_SIZE, Frame, Journal, encode_frame, journal_path, read_frames
from gateway.audit.verify import iter_records, verify_files
from test_audit_file_sink import WRITER  # appends batches of 16 records, printing the last acknowledged

KEY = bytes(range(32))

def _write_then_kill(path: Path, journal_bytes: int, at_least: int) -> int:
    """A writer process appending until ``at_least`` records are acknowledged, then SIGKILLed; returns
    the last acknowledged request number."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(journal_bytes)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    acked, deadline = -1, time.monotonic() + 60
    while acked < at_least and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert acked >= at_least
    return acked


def _restart(path: Path, journal_bytes: int = 16 * 1024 * 1024) -> None:
    async def go() -> None:
        log = AuditLog(path, instance="gw1", key=KEY, journal_bytes=journal_bytes)
        await log.start()
        await log.append({"type": "request", "request_id": "after-restart"})
        await log.close()

    asyncio.run(go())


def _request_ids(folder: Path) -> list[str]:
    return [r["request_id"] for r in iter_records([folder]) if r["type"] == "request"]


def test_batches_are_durable_in_the_journal_and_the_log_file_is_a_plain_append(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"

    async def go() -> None:
        log = AuditLog(path, instance="gw1", key=KEY)
        await log.start()
        for i in range(5):
            await log.append({"type": "request", "request_id": f"r{i}"})
        assert log._fd is not None and log._journaled
        assert not fcntl.fcntl(log._fd, fcntl.F_GETFL) & os.O_DSYNC  # the log file: no durable append
        frames = read_frames(journal_path(path))
        data = path.read_bytes()
        assert len(frames) >= 5 and {f.inode for f in frames} == {os.stat(path).st_ino}
        assert b"".join(f.data for f in frames) == data  # every batch, each at its offset
        assert all(data[f.offset : f.offset + len(f.data)] == f.data for f in frames)
        await log.close()
        assert read_frames(journal_path(path)) == []  # closed cleanly: the file is durable, nothing to recover

    asyncio.run(go())
    assert os.path.getsize(journal_path(path)) == 8 * 1024 * 1024
    assert _request_ids(tmp_path) == [f"r{i}" for i in range(5)]
    assert verify_files([tmp_path], KEY).ok


@pytest.mark.parametrize("loss", ["cut mid-line", "zeroed tail", "whole file empty"])
def test_a_crash_of_the_machine_loses_nothing_acknowledged(tmp_path: Path, loss: str) -> None:
    """The writer is killed, then the log file loses what only its page cache held (cut at a point
    inside the journal's span, or its tail turned to zeros as a filesystem may leave it): the next
    start writes the lost batches back from the journal, the chain verifies, and it goes on."""
    path = tmp_path / "requests.jsonl"
    acked = _write_then_kill(path, 16 * 1024 * 1024, 400)
    size = path.stat().st_size
    frames = read_frames(journal_path(path))
    assert frames and frames[0].offset == 0  # the journal holds every batch since the start
    cut = {"cut mid-line": size // 3 + 7, "zeroed tail": size // 2 + 11, "whole file empty": 0}[loss]
    with open(path, "r+b") as fh:
        if loss == "zeroed tail":
            fh.seek(cut)
            fh.write(bytes(size - cut))
        else:
            fh.truncate(cut)
    lost = {f"r{i}" for i in range(acked + 1)} - set(_request_ids(tmp_path))
    assert len(lost) > 100  # acknowledged records really are gone from the file now

    _restart(path)
    ids = _request_ids(tmp_path)
    assert {f"r{i}" for i in range(acked + 1)} <= set(ids)
    assert len(ids) == len(set(ids)) and ids[-1] == "after-restart"
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings
    assert not [f for f in result.findings if f.severity != "info"], result.findings


def test_a_full_journal_starts_over_once_the_log_file_is_durable(tmp_path: Path) -> None:
    """A 64 KB journal wraps many times; after a crash only what the last wrap's fdatasync did not
    cover (from the journal's first frame on) can be lost from the file, and it is written back."""
    path = tmp_path / "requests.jsonl"
    acked = _write_then_kill(path, 64 * 1024, 800)  # past WRITEBACK_BYTES: writeback started too
    frames = read_frames(journal_path(path))
    assert frames and frames[0].offset > 0  # it wrapped: older batches are durable in the file itself
    assert sum(len(f.data) + HEADER_SIZE for f in frames) <= 64 * 1024
    with open(path, "r+b") as fh:
        fh.truncate(frames[0].offset + 5)  # all that an fdatasync did not cover, lost
    _restart(path, 64 * 1024)
    ids = _request_ids(tmp_path)
    assert {f"r{i}" for i in range(acked + 1)} <= set(ids) and len(ids) == len(set(ids))
    assert verify_files([tmp_path], KEY).ok


def test_the_walk_stops_at_a_torn_frame_and_at_frames_of_an_older_generation(tmp_path: Path) -> None:
    journal = tmp_path / "requests.journal"
    a, b, c = b'{"a": 1}\n', b'{"b": 2}\n', b'{"c": 3}\n'
    old = encode_frame(6, 42, 0, b"x" * 40)  # a longer frame of generation 6 the new one overwrote
    new = encode_frame(7, 42, 0, a) + encode_frame(7, 42, len(a), b)
    journal.write_bytes(new + old[len(new):] + encode_frame(6, 42, 99, c) + bytes(256))
    assert read_frames(journal) == [Frame(7, 42, 0, a), Frame(7, 42, len(a), b)]
    torn = bytearray(new + encode_frame(7, 42, len(a) + len(b), c))
    torn[-2] ^= 0x01  # the third frame's data is not what its CRC says: a write the crash cut
    journal.write_bytes(bytes(torn) + bytes(64))
    assert [f.data for f in read_frames(journal)] == [a, b]
    journal.write_bytes(bytes(1024))
    assert read_frames(journal) == []


def test_recovery_writes_each_batch_back_into_the_file_of_its_inode(tmp_path: Path) -> None:
    """Frames of a file rotated away just before the crash go back into that (renamed) file."""
    active, rotated = tmp_path / "requests.jsonl", tmp_path / "requests.000000000001.jsonl"
    rotated.write_bytes(b'{"r": 1}\n{"r": 2}\n')
    active.write_bytes(b'{"r": 3}\n')
    old, new = os.stat(rotated).st_ino, os.stat(active).st_ino
    journal = Journal(journal_path(active), 64 * 1024)
    journal.open()
    journal.write(old, 0, b'{"r": 1}\n')
    journal.write(old, 9, b'{"r": 2}\n')
    journal.write(new, 0, b'{"r": 3}\n{"r": 4}\n')  # the second line: only in the journal
    journal.close()
    with open(rotated, "r+b") as fh:
        fh.truncate(12)  # the second record half lost
    assert journal.recover(active, [rotated]) == 2
    assert rotated.read_bytes() == b'{"r": 1}\n{"r": 2}\n'
    assert active.read_bytes() == b'{"r": 3}\n{"r": 4}\n'
    assert journal.recover(active, [rotated]) == 0  # already there: nothing written twice


def test_without_room_for_a_journal_batches_are_appended_durably(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    journal_path(path).mkdir()  # the journal cannot be created there

    async def go() -> None:
        log = AuditLog(path, instance="gw1", key=KEY)
        await log.start()
        await log.append({"type": "request", "request_id": "r1"})
        assert log._fd is not None and not log._journaled
        assert fcntl.fcntl(log._fd, fcntl.F_GETFL) & os.O_DSYNC
        await log.close()

    asyncio.run(go())
    assert _request_ids(tmp_path) == ["r1"] and verify_files([tmp_path], KEY).ok


def test_journal_off_and_sync_off_append_as_before(tmp_path: Path) -> None:
    for name, kwargs, dsync in (("off", {"journal_bytes": 0}, True), ("nosync", {"sync": False}, False)):
        folder = tmp_path / name
        path = folder / "requests.jsonl"

        async def go() -> None:
            log = AuditLog(path, instance="gw1", key=KEY, **kwargs)  # type: ignore[arg-type]
            await log.start()
            await log.append({"type": "request", "request_id": "r1"})
            assert log._fd is not None and not log._journaled
            assert bool(fcntl.fcntl(log._fd, fcntl.F_GETFL) & os.O_DSYNC) == dsync
            await log.close()

        asyncio.run(go())
        assert not journal_path(path).exists()
        assert _request_ids(folder) == ["r1"]


FULL = textwrap.dedent(
    """
    import asyncio, resource, signal, sys
    from pathlib import Path
    from gateway.audit.file_sink import AuditLog
    from gateway.errors import AuditUnavailable

    async def main():
        path = Path(sys.argv[1])
        log = AuditLog(path, instance="gw1", key=bytes(range(32)))
        await log.start()
        for i in range(3):
            await log.append({"type": "request", "request_id": f"r{i}"})
        assert log._journaled
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        limit = path.stat().st_size + 40  # the next batch fits only in part: a short write, then EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        try:
            await log.append({"type": "request", "request_id": "refused", "pad": "x" * 500})
        except AuditUnavailable as exc:
            print("refused:", exc.detail)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        await log.append({"type": "request", "request_id": "r3"})
        await log.close()

    asyncio.run(main())
    """
)


def test_a_failed_append_to_the_log_file_refuses_the_batch_and_cuts_it_off(tmp_path: Path) -> None:
    """The journaled sink's plain append fails for real (RLIMIT_FSIZE: a short write, then EFBIG): the
    batch is refused, its partial bytes cut off, and the log resumes in the same chain."""
    path = tmp_path / "requests.jsonl"
    done = subprocess.run([sys.executable, "-c", FULL, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "File too large" in done.stdout, done.stdout
    assert _request_ids(tmp_path) == ["r0", "r1", "r2", "r3"]
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings


def test_a_second_process_on_the_same_log_touches_neither_the_journal_nor_the_file(tmp_path: Path) -> None:
    """The journal is locked before anything is recovered from it: a second gateway on the same path
    (here, a second sink in this process: flock locks are per open file) is refused at once."""
    path = tmp_path / "requests.jsonl"

    async def go() -> None:
        first = AuditLog(path, instance="gw1", key=KEY)
        await first.start()
        await first.append({"type": "request", "request_id": "r1"})
        before = (path.read_bytes(), journal_path(path).read_bytes())
        second = AuditLog(path, instance="gw1", key=KEY)
        await second.start()
        assert not second.available and second._fd is None
        assert (path.read_bytes(), journal_path(path).read_bytes()) == before
        await second.close()
        await first.append({"type": "request", "request_id": "r2"})
        await first.close()

    asyncio.run(go())
    assert _request_ids(tmp_path) == ["r1", "r2"] and verify_files([tmp_path], KEY).ok


def test_after_a_start_the_journal_holds_only_new_frames(tmp_path: Path) -> None:
    """A start after a killed writer makes the files durable and resets the journal: the frames it
    writes then are the only ones a walk finds, none left over from before the start after them."""
    path = tmp_path / "requests.jsonl"
    _write_then_kill(path, 16 * 1024 * 1024, 200)
    before = read_frames(journal_path(path))
    size = path.stat().st_size
    assert len(before) > 3

    async def go() -> None:
        log = AuditLog(path, instance="gw1", key=KEY)
        await log.start()
        await log.append({"type": "request", "request_id": "after-restart"})
        frames = read_frames(journal_path(path))
        assert frames and all(f.offset >= size for f in frames), [f.offset for f in frames]
        assert frames[0].generation != before[0].generation
        await log.close()

    asyncio.run(go())
    assert verify_files([tmp_path], KEY).ok
