"""The files of a file-sink request log: naming, listing, and reading a file's first and last record.

The active file is the configured path (``requests.jsonl``); a rotated file is renamed to
``<stem>.<first seq, 12 digits><suffix>`` (``requests.000000000001.jsonl``) beside it. Order is
always taken from the records (instance, then ``seq``), never from names or times.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TAIL_CHUNK = 65536


@dataclass(frozen=True)
class FileEnds:
    """What the ends of one log file hold."""

    first: dict[str, Any] | None  # first whole record, None when there is none
    last: dict[str, Any] | None  # last whole record
    torn: bool  # the file ends in a line without its newline (a crash mid-write)
    size: int


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written (a short write is rare, but allowed)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries durable (a file created or renamed in it); best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rotated_name(active: Path, first_seq: int) -> Path:
    """Where the active file goes when rotated (a suffix is added if that name is taken)."""
    candidate = active.with_name(f"{active.stem}.{first_seq:012d}{active.suffix}")
    n = 1
    while candidate.exists():
        candidate = active.with_name(f"{active.stem}.{first_seq:012d}-{n}{active.suffix}")
        n += 1
    return candidate


def rotated_files(active: Path) -> list[Path]:
    """The rotated files of the log whose active file is ``active`` (unordered)."""
    prefix, suffix = active.stem + ".", active.suffix
    if not active.parent.is_dir():
        return []
    return [
        p
        for p in active.parent.iterdir()
        if p.name.startswith(prefix) and p.name.endswith(suffix) and p.name != active.name and p.is_file()
    ]


def log_files(paths: list[Path]) -> list[Path]:
    """Expand directories to their ``*.jsonl`` files; keep files as given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and ".jsonl" in p.name))
        else:
            found.append(path)
    return found


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_ends(path: Path) -> FileEnds:
    """First and last whole records of ``path`` and whether it ends torn; reads only its ends.

    A path that is not a regular file (``/dev/full``, say) reads as empty.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return FileEnds(None, None, False, 0)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return FileEnds(None, None, False, 0)
    size = st.st_size
    with open(path, "rb") as fh:
        head = fh.read(min(size, _TAIL_CHUNK))
        while b"\n" not in head and len(head) < size:
            head += fh.read(_TAIL_CHUNK)
        first = _parse(head.split(b"\n", 1)[0]) if b"\n" in head else None
        # Read backwards until the buffer holds the last whole line.
        pos, tail = size, b""
        while True:
            step = min(pos, _TAIL_CHUNK)
            pos -= step
            fh.seek(pos)
            tail = fh.read(step) + tail
            torn = not tail.endswith(b"\n")
            body = tail if not torn else tail[: tail.rfind(b"\n") + 1] if b"\n" in tail else b""
            lines = body[:-1].split(b"\n") if body else []
            if pos == 0 or len(lines) >= 2:
                break
    last = _parse(lines[-1]) if lines and lines[-1] else None
    return FileEnds(first, last, torn, size)
