"""The file sink: the request log in a local file, ``append`` returning once the line is on disk.

Group commit on a dedicated writer thread (:mod:`gateway.audit.writer_thread`): the loop only queues;
the thread seals whatever is queued, appends it to the log file with a plain ``write`` (the GIL kept)
and makes it durable with one ``O_DSYNC`` write of a frame into the journal beside it
(:mod:`gateway.audit.journal`: an overwrite of preallocated blocks, no metadata to commit), then hands
the batch back to the loop once. Where the C disk thread is built, the usual batch is sealed and
appended on the loop instead and only its journal frame is written off it (the loop lane, see
:mod:`gateway.audit.writer_thread`). Without the journal (``journal_bytes=0``, or no room for it) the log
file itself is opened ``O_DSYNC`` and the one write makes the batch durable. Batches grow by themselves under load (the loop
keeps queueing while the disk works); a lone client never waits for a timer. Rotation, the
moved-file check, retention and the tip file all run on that thread too, never on the loop.

A failed write (disk full, read-only, path gone, permission, another process holding the log) makes
every ``append`` of the batch raise :class:`~gateway.errors.AuditUnavailable`; the chain is rewound
and any partial bytes cut off, and the next batch opens the file afresh. Outcome records of the
batch are held and written once the log is back (see :mod:`gateway.audit.group_commit`). A file
found ending in a torn line (a crash mid-write) is rotated away on open, so the chain continues in a
new file.

This is the request log's own writer, not structlog: no logging configuration can drop a record.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import stat
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import structlog

from gateway.audit.chain import ChainState, checkpoint_record
from gateway.audit.tips import tip_path, write_tip
from gateway.audit.files import fsync_dir, read_ends, rotated_files, rotated_name, write_all
from gateway.audit.group_commit import SinkError, describe
from gateway.audit.journal import DEFAULT_BYTES, Journal, JournalBusy, journal_path
from gateway.audit.keyfile import key_path_for, load_or_create_key
from gateway.audit.literals import LiteralHasher
from gateway.audit.writer_thread import ThreadWriter
from gateway.audit.record import parse_time, utc_now
from gateway.errors import ConfigError

log = structlog.get_logger("gateway.audit")

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_DSYNC = os.O_DSYNC  # synchronized data integrity per write: what write + fdatasync gave


def _day_end(day: str) -> float:
    """The epoch second at which the UTC day ``day`` (``YYYY-MM-DD``) ends; 0 if it is not a day."""
    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return 0.0
    return (start + timedelta(days=1)).timestamp()


class _HeldStat:
    """The moved-file check's ``stat`` of the log's path, made without releasing the GIL (libc's
    ``statx`` through ``ctypes.PyDLL``). ``os.stat`` releases it: at load the writer thread then waits
    for the loop to hand the GIL back (up to the switch interval) before it can start the batch's
    write, once more per batch. The call is a path lookup of a local file (about a microsecond; on a
    filesystem whose lookups can hang, a network mount, it would hold the loop as long). Where libc
    has no ``statx`` (or its answer does not match ``fstat``'s), ``os.stat`` is used."""

    _AT_FDCWD = -100
    _STATX_INO = 0x100

    def __init__(self) -> None:
        self._statx = ctypes.PyDLL(None).statx  # AttributeError where libc has none
        self._buf = ctypes.create_string_buffer(256)  # struct statx: the same layout on every architecture
        self._words = memoryview(self._buf).cast("B").cast("Q")  # stx_ino is word 4; stx_dev_major, _minor word 17
        self._halves = memoryview(self._buf).cast("B").cast("I")

    def identity(self, path: bytes) -> tuple[int, int] | None:
        """(inode, device) of what is at ``path`` in statx's own terms, or None if nothing is."""
        if self._statx(self._AT_FDCWD, path, 0, self._STATX_INO, self._buf):
            return None
        words = self._words
        return words[4], words[17]

    def same_as(self, identity: tuple[int, int] | None, st: os.stat_result) -> bool:
        """Whether ``identity`` (from :meth:`identity`) names the file ``st`` describes."""
        halves = self._halves
        return identity is not None and identity[0] == st.st_ino and os.makedev(halves[34], halves[35]) == st.st_dev


def _held_stat() -> _HeldStat | None:
    try:
        return _HeldStat()
    except (AttributeError, OSError):  # no statx in this libc (or no libc to load)
        return None


def _held_write() -> Any:
    """A ``write(fd, data)`` that keeps the GIL (libc's ``write`` through ``ctypes.PyDLL``), for the
    journal's plain append to the log file: a page-cache write of a few kilobytes. ``os.write``
    releases the GIL, and the writer thread then waits for the loop to hand it back (up to the switch
    interval at load) before it can start the batch's durable write. None where libc has none."""
    try:
        func = ctypes.PyDLL(None, use_errno=True).write
    except (AttributeError, OSError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    func.restype = ctypes.c_ssize_t
    return func


_WRITE_HELD = _held_write()


class _PathMoved(Exception):
    """The open file is no longer the one at the log's path."""


class AuditLog(ThreadWriter):
    """The request log in a local file (see the module docstring). One writer per file."""

    def __init__(
        self,
        path: Path,
        *,
        instance: str,
        fsync_interval_ms: float = 2.0,
        hash_literals: bool = True,
        key: bytes | None = None,
        key_path: Path | None = None,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_daily: bool = True,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
        retention_days: float | None = None,
        max_batch: int = 1024,
        sync: bool = True,
        outage_buffer_bytes: int = 8 * 1024 * 1024,
        journal_bytes: int = DEFAULT_BYTES,
        lane: bool = True,
    ) -> None:
        super().__init__(
            lane=lane,
            instance=instance,
            fsync_interval_ms=fsync_interval_ms,
            hash_literals=hash_literals,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            max_batch=max_batch,
            outage_buffer_bytes=outage_buffer_bytes,
        )
        self.path = Path(path)
        self._path_text = os.fspath(self.path)  # stat'ed per batch: no Path.__fspath__ call each time
        self._path_bytes = os.fsencode(self._path_text)
        self._statx = _held_stat()
        self._path_id: tuple[int, int] | None = None  # the open file's identity in _HeldStat's terms, if used
        self.sync = sync  # False only for benchmarks: records are written but not fdatasync'ed
        self.key_path = key_path or key_path_for(self.path)
        self._key = key
        self.rotate_bytes = rotate_bytes
        self.rotate_daily = rotate_daily
        self.retention_days = retention_days
        self._fd: int | None = None
        # batches made durable in a preallocated journal (gateway.audit.journal) instead of by appending
        # to the log file O_DSYNC; None: off (sync off, journal_bytes 0)
        self._journal = Journal(journal_path(self.path), journal_bytes) if sync and journal_bytes > 0 else None
        self._journaled = False  # the open file is written through the journal (else O_DSYNC, when sync)
        self._truncate_to: int | None = None  # a failed lane batch's offset: the thread cuts the file there
        self._tip_instances: dict[str, Any] | None = None  # what the tip file holds, once it was read
        self._fd_id: tuple[int, int] = (0, 0)  # (inode, device) of the open file
        self._size = 0
        self._file_first_seq: int | None = None
        self._file_day = ""
        self._day_end = 0.0  # when the open file's UTC day ends (epoch seconds): daily rotation is due

    async def start(self) -> None:
        """Load (or create) the key, open the log and start the writer. A log that cannot be opened
        yet is not fatal (requests are refused until it can); a key that cannot be read is."""
        try:
            key = self._key if self._key is not None else load_or_create_key(self.key_path)
        except OSError as exc:
            raise ConfigError(f"cannot create the request-log key {self.key_path}: {describe(exc)}") from exc
        self.hasher = LiteralHasher(key, enabled=self.hash_literals)
        self._chain = ChainState(key, self.instance)
        self._pending.append(checkpoint_record("start", time=utc_now(), pid=os.getpid()))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # on start only: a folder gone later is an outage
            await asyncio.to_thread(self._ensure_open)
        except (OSError, SinkError) as exc:
            self._note_failure(describe(exc))
        self._start_writer()

    # -- reading back (RequestLog) ---------------------------------------------------------------

    def log_directory(self) -> Path:
        return self.path.parent

    def log_key(self) -> bytes:
        from gateway.audit.keyfile import read_key

        return self._key if self._key else read_key(self.key_path)

    async def read_records(self) -> list[dict[str, Any]]:
        from gateway.audit.verify import iter_records

        return await asyncio.to_thread(lambda: list(iter_records([self.log_directory()])))

    async def verify(self) -> Any:
        from gateway.audit.verify import verify_files

        return await asyncio.to_thread(verify_files, [self.log_directory()], self.log_key())

    async def close(self) -> None:
        """Write a closing checkpoint, flush what is queued, stop the writer and close the file."""
        await self._stop_writer()
        if self._chain is not None:
            log.info("audit_closed", path=str(self.path), last_seq=self._chain.seq, last_hash=self._chain.prev)
        self._drop_fd()  # with the journal: the file fdatasync'ed and the journal cleared
        if self._journal is not None:
            self._journal.close()

    def _flush_sync(self, records: list[dict[str, Any]], retry: bool = True) -> list[Exception | None]:
        """On the writer thread: seal ``records`` and write them durably in one system call. On an
        OSError the chain is rewound and the partial bytes cut off."""
        assert self._chain is not None
        self._ensure_open()
        self._maybe_rotate()
        assert self._fd is not None
        mark, offset = self._chain.mark(), self._size
        try:
            lines, errors = self._seal_batch(records)
            data = b"".join(lines)
        except Exception:
            self._chain.rewind(mark)  # nothing was written: the chain must not move
            raise
        try:
            self._write_data(self._fd, data, offset)
        except _PathMoved:  # nothing written: seal the batch again, into a fresh file at the path
            self._chain.rewind(mark)
            self._drop_fd()
            self._pending.append(checkpoint_record("reopen", time=utc_now(), note="log file moved or removed"))
            if retry:
                return self._flush_sync(records, retry=False)
            raise SinkError(f"{self.path} keeps moving") from None
        except OSError:
            self._chain.rewind(mark)
            self._drop_fd(truncate_to=offset)
            raise
        if self._file_first_seq is None:
            self._file_first_seq = mark[0] + 1
        self._size += len(data)
        self._flushed(len(records))
        return errors

    # -- the loop lane: a batch sealed and appended on the loop, its journal frame written by the C disk
    # thread (gateway/audit/_disk.c), when nothing unusual is due; everything else goes to the thread

    def _lane_ready(self) -> bool:
        return (self._journaled and self._fd is not None and self._failing is None and not self._held
                and self._truncate_to is None and self._size < self.rotate_bytes
                and not (self.rotate_daily and time.time() >= self._day_end) and self._same_file())

    def _lane_write(self, records: list[Any]) -> tuple[list[Exception | None], Any, tuple[int, bytes, int, int]]:
        chain, fd, journal = self._chain, self._fd, self._journal
        assert chain is not None and fd is not None and journal is not None
        mark, offset = chain.mark(), self._size
        try:
            lines, errors = self._seal_batch(records)
            data = b"".join(lines)
        except Exception:
            chain.rewind(mark)  # nothing was written: the chain must not move
            raise
        try:
            self._append(fd, data)
        except OSError:
            chain.rewind(mark)
            self._truncate_to = offset  # the thread cuts what part of it was written (_repair)
            raise
        self._size = offset + len(data)
        if journal.fits(len(data)):
            at, frame = journal.place(self._fd_id[0], offset, data)
            journal.started_writeback(fd, offset + len(data), len(data))
            return errors, (mark, offset, len(records), len(frame)), (journal.fd, frame, at, -1)
        # full: the file itself made durable (this batch with it), then frame 0 cleared
        return errors, (mark, offset, len(records), -1), (journal.fd, journal.restart_frame(), 0, fd)

    def _lane_written(self, state: Any, err: int) -> Exception | None:
        mark, offset, records, frame_length = state
        journal = self._journal
        assert journal is not None and self._chain is not None
        if err:
            self._chain.rewind(mark)
            self._size = offset
            self._truncate_to = offset  # the batch is in the file but not durable: the thread cuts it
            return OSError(err, os.strerror(err), str(journal.path))
        if frame_length < 0:
            journal.restarted()
        else:
            journal.placed(frame_length)
        if self._file_first_seq is None:
            self._file_first_seq = mark[0] + 1
        self._flushed(records)
        return None

    def _repair(self) -> None:
        """A lane batch that failed left its bytes (or part of them) at the file's end: cut them and
        close the file (the next batch reopens it)."""
        offset = self._truncate_to
        if offset is not None:
            self._truncate_to = None
            self._drop_fd(truncate_to=offset)

    def _store_tip(self, tip: dict[str, Any]) -> None:
        """The tip file, when a batch set one (a checkpoint, or once a second), after that batch was
        handed back. Its rewrite (a read, a temporary file, an fsync, a rename: a dozen system calls
        that each give the GIL up) never delays the answers of the batch it anchors."""
        try:
            self._tip_instances = write_tip(tip_path(self.path), tip, self._tip_instances)
        except OSError as exc:  # the log itself is durable; the anchor is late until the next checkpoint
            self._tip_instances = None  # read the file afresh next time
            log.warning("audit_tip_not_written", path=str(tip_path(self.path)), error=describe(exc))

    # -- blocking work, on the writer thread ------------------------------------------------------

    def _write_data(self, fd: int, data: bytes, offset: int) -> None:
        """Write one batch durably, first checking that ``fd`` is still the file at the log's path (an
        operator may move or remove it; one stat, the open file's identity is kept from its open).
        Raises :class:`_PathMoved` (nothing written) if it is not. The file is ``O_DSYNC`` when
        ``sync`` and no journal is in use: each write returns once its data is on disk, so no fdatasync
        call follows. With the journal (:mod:`gateway.audit.journal`), the write to the file is a plain
        one and the batch is made durable by its frame in the journal (or, when the journal is full, by
        an fdatasync of the file, after which the journal starts over)."""
        if not self._same_file():
            raise _PathMoved()
        self._append(fd, data)
        if self._journaled:
            journal = self._journal
            assert journal is not None
            if journal.fits(len(data)):
                journal.write(self._fd_id[0], offset, data)
                journal.started_writeback(fd, offset + len(data), len(data))
            else:  # full: the file itself made durable (this batch with it), then the journal starts over
                os.fdatasync(fd)
                journal.reset()

    def _same_file(self) -> bool:
        """Whether the open file is still the one at the log's path (an operator may move or remove
        it): one stat, the open file's identity is kept from its open."""
        statx, path_id = self._statx, self._path_id
        if statx is not None and path_id is not None:  # the stat without a GIL release (_HeldStat)
            return statx.identity(self._path_bytes) == path_id
        try:
            on_disk = os.stat(self._path_text)
        except OSError:
            return False
        return on_disk.st_ino == self._fd_id[0] and on_disk.st_dev == self._fd_id[1]

    def _append(self, fd: int, data: bytes) -> None:
        """All of ``data`` at the file's end: with the journal a plain write (durable by its frame,
        the GIL kept: _held_write), else the one ``O_DSYNC`` write that makes it durable."""
        if self._journaled and _WRITE_HELD is not None:
            written = _WRITE_HELD(fd, data, len(data))
            if written < 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), self._path_text)
        else:
            written = os.write(fd, data)
        if written < len(data):  # a short write (rare): the rest, until all of it is on disk
            write_all(fd, memoryview(data)[written:])

    def _ensure_open(self) -> None:
        assert self._chain is not None
        if self._fd is not None:
            return  # whether it is still the file at the path is checked by the writer thread, per write
        journaled = self._open_journal()  # first: what a crash took from the files is written back
        ends = read_ends(self.path)
        if ends.torn:
            first = ends.first["seq"] if ends.first else self._chain.seq + 1
            moved = rotated_name(self.path, int(first))
            os.rename(self.path, moved)
            log.warning("audit_torn_line", path=str(moved), message="the log ended in a torn line (crash); rotated")
            self._pending.append(checkpoint_record("rotate", time=utc_now(), previous_file=moved.name, torn=True))
            fsync_dir(self.path.parent)
            ends = read_ends(self.path)
        if ends.last is not None:
            if ends.last.get("instance") != self.instance:
                raise SinkError(f"{self.path} is written by instance {ends.last.get('instance')!r}")
            self._chain.seq, self._chain.prev = int(ends.last["seq"]), str(ends.last["hash"])
        elif self._chain.seq == 0:
            self._resume_from_rotated()
        created = not self.path.exists()
        fd = os.open(self.path, _OPEN_FLAGS | (_DSYNC if self.sync and not journaled else 0), 0o640)
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise SinkError(f"another gateway process is writing {self.path}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._size, self._fd_id = fd, st.st_size, (st.st_ino, st.st_dev)
        self._journaled = journaled and stat.S_ISREG(st.st_mode)
        if journaled and not self._journaled:  # not a regular file (/dev/full, a pipe): written O_DSYNC
            os.close(fd)
            self._fd = None
            fd = os.open(self.path, _OPEN_FLAGS | _DSYNC, 0o640)
            self._fd = fd
        self._path_id = None
        if self._statx is not None:  # the path's identity as the per-batch check reads it, if it is this file
            identity = self._statx.identity(self._path_bytes)
            self._path_id = identity if self._statx.same_as(identity, st) else None
        self._file_first_seq = int(ends.first["seq"]) if ends.first else None
        self._file_day = str((ends.first or {}).get("time", utc_now()))[:10]
        self._day_end = _day_end(self._file_day)
        if created:
            fsync_dir(self.path.parent)
            self._apply_retention()

    def _open_journal(self) -> bool:
        """Before the log file is opened: open the journal (created on first use) and write back what
        it holds that the log files lack (a crash of the machine). False when it cannot be used (off,
        or no space for it): the file is then appended to O_DSYNC, as without a journal."""
        journal = self._journal
        if journal is None:
            return False
        if not journal.is_open:
            try:
                is_regular = not self.path.exists() or stat.S_ISREG(os.stat(self.path).st_mode)
                if not is_regular:
                    return False
                journal.open()
            except JournalBusy:
                raise SinkError(f"another gateway process is writing {self.path}") from None
            except OSError as exc:
                log.warning("audit_journal_unavailable", path=str(journal.path), error=describe(exc),
                            message="batches are appended to the log file O_DSYNC instead")
                return False
        journal.recover(self.path, rotated_files(self.path))
        return True

    def _resume_from_rotated(self) -> None:
        assert self._chain is not None
        best: dict[str, Any] | None = None
        for path in rotated_files(self.path):
            last = read_ends(path).last
            if last and last.get("instance") == self.instance and (best is None or last["seq"] > best["seq"]):
                best = last
        if best is not None:
            self._chain.seq, self._chain.prev = int(best["seq"]), str(best["hash"])

    def _maybe_rotate(self) -> None:
        if self._size == 0:
            return
        if self._size < self.rotate_bytes and not (self.rotate_daily and time.time() >= self._day_end):
            return  # a size counter and a day boundary computed at open: no clock formatting per batch
        assert self._chain is not None
        first = self._file_first_seq if self._file_first_seq is not None else self._chain.seq
        moved = rotated_name(self.path, first)
        os.rename(self.path, moved)
        self._drop_fd()
        self._pending.append(checkpoint_record("rotate", time=utc_now(), previous_file=moved.name))
        # An anchor outside the log: with it, records cut off the end of a file can be noticed.
        log.info("audit_rotated", file=moved.name, last_seq=self._chain.seq, last_hash=self._chain.prev)
        self._ensure_open()

    def _apply_retention(self) -> None:
        """Delete rotated files of this instance whose last record is older than the retention."""
        if not self.retention_days:
            return
        cutoff = time.time() - self.retention_days * 86400
        removed: list[str] = []
        through = 0
        for path in rotated_files(self.path):
            ends = read_ends(path)
            if not ends.last or ends.last.get("instance") != self.instance:
                continue
            if parse_time(str(ends.last["time"])).timestamp() < cutoff:
                path.unlink()
                removed.append(path.name)
                through = max(through, int(ends.last["seq"]))
        if removed:
            log.info("audit_retention", removed=sorted(removed), removed_through_seq=through)
            self._pending.append(
                checkpoint_record("retention", time=utc_now(), removed=sorted(removed), removed_through_seq=through)
            )

    def _drop_fd(self, truncate_to: int | None = None) -> None:
        if self._fd is None:
            return
        if truncate_to is not None:
            try:
                os.ftruncate(self._fd, truncate_to)
            except OSError:
                pass  # a torn tail left behind is set aside when the file is next opened
        if self._journaled:  # what the journal holds for this file, made durable in the file itself
            journal = self._journal
            assert journal is not None
            try:
                os.fdatasync(self._fd)
                journal.reset()
            except OSError as exc:  # the frames stay: the next start writes them back (by inode)
                log.error("audit_log_not_synced", path=str(self.path), error=describe(exc))
        os.close(self._fd)
        self._fd = None
        self._journaled = False
