"""The request log's durability journal: a preallocated file that batches are made durable in.

Appending to the log file durably (``O_DSYNC``) costs a journal commit of the filesystem per batch: the
file's size changes with every write, and that metadata must reach the disk before the write returns.
On this project's machines that is 215-390 µs a batch. Overwriting blocks of a file that is already
allocated and written changes no metadata, so an ``O_DSYNC`` write there only waits for its own data:
150-290 µs, and less system time (what PostgreSQL does with its pre-zeroed WAL segments).

So, with the journal on, a batch is written twice: to the log file (``requests.jsonl``) as a plain
buffered append (it stays the one file auditors and ``audit verify`` read), then to the journal as a
frame, ``O_DSYNC``. The batch is durable once its frame is: that is when its waiters are told. The
log file itself is made durable (``fdatasync``) only when the journal wraps around, when the file is
rotated, moved or closed, and on start; until then the journal holds every batch written since.

A frame is a 32-byte header (:data:`_HEADER`: magic, generation, the log file's inode, the offset of
the batch in it, its length, a CRC-32 of both) and the batch's bytes. Frames follow each other from
offset 0 within a *generation*; each reset (a wrap, a rotation, a start) takes the next generation,
so frames left from an earlier one end the walk. The magic starts with a 0xFF byte, which UTF-8 (the
log's JSON lines) never holds: what is left of a longer frame that was overwritten is never taken for
a header.

On start, :meth:`Journal.recover` walks the frames of the current generation and compares each with
the log file (the active one or a rotated one with that inode): from the first batch missing there
(a crash of the machine took the page cache), the file is cut back to that batch's offset, every
batch from it on is written again, and the file is fdatasync'ed. Then the journal is reset.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.audit.files import fsync_dir

log = structlog.get_logger("gateway.audit")

_MAGIC = b"\xffGWJ"
_HEADER = struct.Struct("<4sIQQII")  # magic, generation, inode, offset, length, crc32(header[:28] + data)
HEADER_SIZE = _HEADER.size  # 32
_ZEROS = bytes(HEADER_SIZE)
#: the default journal size (a setting: ``audit_journal_mb``)
DEFAULT_BYTES = 8 * 1024 * 1024
_FILL_CHUNK = 1024 * 1024
#: the log file's writeback is started (not waited for) every this many bytes, so that the fdatasync
#: when the journal wraps finds little left to write (a 16 MB tail took 9 ms, 1 MB about 1 ms)
WRITEBACK_BYTES = 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """libc's ``sync_file_range`` (Linux), called through ``ctypes.CDLL`` (it releases the GIL; the call
    only queues the writeback); None where there is none."""
    try:
        func = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_start_writeback = _sync_file_range()


def journal_path(log_path: Path) -> Path:
    """Beside the log: ``requests.journal`` for ``requests.jsonl`` (no ``.jsonl`` in the name, so that
    readers of the log's folder never take it for a log file)."""
    return log_path.with_name(f"{log_path.stem}.journal")


@dataclass(frozen=True)
class Frame:
    generation: int
    inode: int
    offset: int  # where the batch starts in the log file
    data: bytes


def _crc(head: bytes, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(head))


def encode_frame(generation: int, inode: int, offset: int, data: bytes) -> bytes:
    head = struct.pack("<4sIQQI", _MAGIC, generation, inode, offset, len(data))
    return head + struct.pack("<I", _crc(head, data)) + data


def read_frames(path: Path) -> list[Frame]:
    """The frames of the journal's current generation, in order (those of frame 0's generation, up to
    the first that is not whole). Reads only the frames (a cleared journal: 32 bytes)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return []
    frames: list[Frame] = []
    with fh:
        size = os.fstat(fh.fileno()).st_size
        pos, generation = 0, None
        while pos + HEADER_SIZE <= size:
            head = os.pread(fh.fileno(), HEADER_SIZE, pos)
            magic, gen, inode, offset, length, crc = _HEADER.unpack(head)
            end = pos + HEADER_SIZE + length
            if magic != _MAGIC or (generation is not None and gen != generation) or end > size:
                break
            data = os.pread(fh.fileno(), length, pos + HEADER_SIZE)
            if len(data) != length or _crc(head[: HEADER_SIZE - 4], data) != crc:
                break
            generation = gen
            frames.append(Frame(gen, inode, offset, data))
            pos = end
    return frames


class JournalBusy(Exception):
    """Another process holds the journal (and so writes its log)."""


class Journal:
    """One log file's journal (see the module docstring); used by the file sink's writer thread only."""

    def __init__(self, path: Path, size: int = DEFAULT_BYTES) -> None:
        self.path = path
        self.size = max(size, 64 * 1024)
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._pos = 0
        self._unwritten = 0  # bytes of the log file written since its writeback was last started
        self._generation = int.from_bytes(os.urandom(4), "little") or 1

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self) -> None:
        """Open the journal, creating (and filling with zeros, durably) a missing or short one. Raises
        OSError (no space for it, say): the sink then appends to the log file ``O_DSYNC`` instead; and
        :class:`JournalBusy` when another process holds it (an exclusive ``flock`` while open)."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # before anything is written or recovered
            except BlockingIOError:
                raise JournalBusy(str(self.path)) from None
            have = os.fstat(fd).st_size
            if have < self.size:  # written, not just allocated: an overwrite must change no metadata
                chunk = bytes(min(_FILL_CHUNK, self.size))
                pos = have
                while pos < self.size:
                    pos += os.pwrite(fd, chunk[: self.size - pos], pos)
                os.fsync(fd)
                fsync_dir(self.path.parent)
            else:
                self.size = have
            frames = read_frames(self.path)
            if frames:
                self._generation = frames[0].generation
            durable = os.open(self.path, os.O_WRONLY | os.O_DSYNC | getattr(os, "O_CLOEXEC", 0))
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._lock_fd = durable, fd  # the lock is held by the first descriptor, kept open

    def recover(self, active: Path, rotated: list[Path]) -> int:
        """Write back into the log files every batch the journal holds that they lack (after a crash of
        the machine), make every file it names durable (after a killed process, what it wrote may be in
        the page cache only), and, when the journal is open and every file was found, reset it: new
        frames never follow stale ones of the same generation. Returns how many batches were written.
        Call before the log file is opened."""
        frames = read_frames(self.path)
        if not frames:
            return 0
        files: dict[int, Path] = {}
        for candidate in [*rotated, active]:
            try:
                files[os.stat(candidate).st_ino] = candidate
            except OSError:
                continue
        restored, complete = 0, True
        for inode in dict.fromkeys(frame.inode for frame in frames):
            mine = [frame for frame in frames if frame.inode == inode]
            target = files.get(inode)
            if target is None:
                log.error("audit_journal_file_missing", journal=str(self.path), inode=inode,
                          batches=len(mine), message="batches of a log file that is no longer there")
                complete = False
                continue
            restored += _restore(target, mine)
        if complete and self._fd is not None:  # everything it held is durable in the files now
            self.reset()
        return restored

    @property
    def fd(self) -> int:
        """The journal's ``O_DSYNC`` descriptor (for a write made elsewhere: :meth:`place`)."""
        assert self._fd is not None
        return self._fd

    def write(self, inode: int, offset: int, data: bytes) -> None:
        """Make one batch durable (it is already in the log file's page cache at ``offset``). The caller
        checks :meth:`fits` first and, when it does not, makes the log file durable and calls
        :meth:`reset`. On an OSError the frame is not written (the next write goes to the same place)."""
        assert self._fd is not None
        at, frame = self.place(inode, offset, data)
        done = os.pwrite(self._fd, frame, at)
        if done < len(frame):  # a short write (rare): the rest, until all of it is on disk
            view = memoryview(frame)[done:]
            at += done
            while view:
                step = os.pwrite(self._fd, view, at)
                view, at = view[step:], at + step
        self.placed(len(frame))

    def place(self, inode: int, offset: int, data: bytes) -> tuple[int, bytes]:
        """Where the frame of a batch goes in the journal, and the frame, for a caller that writes it
        itself (the C disk thread) to :attr:`fd`; then :meth:`placed` once it is durable (a frame that
        failed is not placed: the next goes to the same place)."""
        return self._pos, encode_frame(self._generation, inode, offset, data)

    def placed(self, length: int) -> None:
        self._pos += length

    @staticmethod
    def restart_frame() -> bytes:
        """What :meth:`reset` writes at offset 0 (a cleared frame 0), for a caller that writes it itself
        after making the log file durable; then :meth:`restarted`."""
        return _ZEROS

    def started_writeback(self, log_fd: int, end: int, length: int) -> bool:
        """Note ``length`` more bytes of the log file (it now ends at ``end``); every
        :data:`WRITEBACK_BYTES`, start their writeback without waiting for it. True when it did."""
        self._unwritten += length
        if self._unwritten < WRITEBACK_BYTES or _start_writeback is None:
            return False
        _start_writeback(log_fd, end - self._unwritten, self._unwritten, _SYNC_FILE_RANGE_WRITE)
        self._unwritten = 0
        return True

    def fits(self, length: int) -> bool:
        return self._pos + HEADER_SIZE + length <= self.size

    def reset(self) -> None:
        """Start a new generation at offset 0: everything written before is durable in the log files.
        Frame 0 is cleared first (durably), so that a start after this finds nothing to compare."""
        assert self._fd is not None
        os.pwrite(self._fd, _ZEROS, 0)
        self.restarted()

    def restarted(self) -> None:
        """Frame 0 was cleared (:meth:`reset`): the next frame starts a new generation at offset 0."""
        self._generation = (self._generation + 1) & 0xFFFFFFFF or 1
        self._pos = 0
        self._unwritten = 0

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None



def _restore(path: Path, frames: list[Frame]) -> int:
    """Make ``path`` hold every frame's batch at its offset: from the first that is not there, cut the
    file there and write that batch and all after it; fdatasync (also when nothing was missing).
    Returns the batches written."""
    with open(path, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        first = None
        for i, frame in enumerate(frames):
            if frame.offset + len(frame.data) > size:
                first = i
                break
            fh.seek(frame.offset)
            if fh.read(len(frame.data)) != frame.data:
                first = i
                break
        if first is None:
            os.fdatasync(fh.fileno())
            return 0
        start = frames[first].offset
        if start > size:  # the file lost more than the journal holds: append (the chain shows the gap)
            log.error("audit_journal_gap", path=str(path), size=size, first_offset=start,
                      message="the log file is shorter than the journal's first missing batch")
            start = size
        fh.truncate(start)
        fh.seek(start)
        expected = frames[first].offset
        written = 0
        for frame in frames[first:]:
            if frame.offset != expected:  # not contiguous: not one run of batches; stop
                break
            fh.write(frame.data)
            expected += len(frame.data)
            written += 1
        fh.flush()
        os.fdatasync(fh.fileno())
    log.warning("audit_journal_recovered", path=str(path), batches=written, from_offset=start,
                message="batches that were durable only in the journal were written back into the log file")
    return written
