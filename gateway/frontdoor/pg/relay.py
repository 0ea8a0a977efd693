"""Backend -> client relay: whole messages forwarded in large chunks, in the order the client expects.

The session records, for every message it forwards, what answer it expects (:class:`Pending`). The
relay walks the backend's bytes with the fast framer: DataRows are only counted; a terminal message
(ParseComplete, CommandComplete, ReadyForQuery, ErrorResponse...) pops its entry. Answers the gateway
produces itself (SET/SHOW of ``gateway.*``, refusals) sit in the same queue as ``SYNTH`` entries and
are written when every earlier answer has been written, so pipelined clients see them in order.

A denial is sent to the backend as a statement that fails at parse time (``MARKER_SQL``): the backend
then skips to Sync and aborts a transaction block exactly as for a real error; the relay swaps that
error for the gateway's own ErrorResponse.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from gateway.errors import RowLimitExceeded
from gateway.frontdoor.pg import responses
from gateway.wire import CopyFail, DEFAULT_MAX_MESSAGE, ErrorResponse, RemoteProtocolError, encode
from gateway.wire.buffer import Reader
from gateway.wire.framing import frame_end

log = logging.getLogger(__name__)

_NONCE = secrets.token_hex(8)
#: A statement that fails in parse analysis with 42P01 on any database (the relation cannot exist).
MARKER_SQL = f'SELECT FROM "gateway_denied_{_NONCE}"'
_MARKER_BYTES = f"gateway_denied_{_NONCE}".encode()

# (Final ints: compiled, they are constants, not module lookups)
EXT: Final = 0
EXEC: Final = 1
SYNC: Final = 2
QUERY: Final = 3
SYNTH: Final = 4
_D: Final = 68  # DataRow
_Z: Final = 90  # ReadyForQuery
_E: Final = 69  # ErrorResponse
_C: Final = 67  # CommandComplete
_I: Final = 73  # EmptyQueryResponse
_S: Final = 115  # PortalSuspended
_G: Final = 71  # CopyInResponse
_T: Final = 84  # RowDescription
_n: Final = 110  # NoData


def _ext_terminal(t: int) -> bool:
    """ParseComplete, BindComplete, CloseComplete, RowDescription, NoData: the end of an EXT answer."""
    return t == 49 or t == 50 or t == 51 or t == _T or t == _n


def _exec_terminal(t: int) -> bool:
    """CommandComplete, EmptyQueryResponse, PortalSuspended: the end of an Execute's answer."""
    return t == _C or t == _I or t == _S


class Pending:
    """One expected answer. ``data`` is the synthetic answer (SYNTH) or a replacement error (marker)."""

    __slots__ = ("kind", "plan", "t0", "rows", "data", "swallow", "ready", "cap", "hold", "done")

    def __init__(self, kind: int, plan: Any = None, data: bytes | None = None, *, swallow: bool = False,
                 ready: bool = False, done: Callable[[bool], None] | None = None, cap: int = -1) -> None:
        self.kind = kind
        # told whether the backend did it (True) or refused or skipped it (False): prepared-statement
        # bookkeeping (a Parse, a Close, a DISCARD ALL) follows what the backend really holds
        self.done = done
        self.plan = plan
        self.t0 = time.perf_counter() if plan is not None else 0.0
        self.rows = 0
        self.data = data
        self.swallow = swallow
        self.ready = ready
        # rows per answer (SPEC 9): the answer is held here until it is known to be within the cap
        # (``cap`` given: the caller read it from the plan already)
        if kind != QUERY and kind != EXEC or plan is None:
            cap = 0
        elif cap < 0:
            cap = getattr(plan, "row_cap", 0)
        self.cap = cap
        self.hold: list[bytes] | None = [] if self.cap else None


class Relay:
    """Owns the pending queue and the client-bound byte stream of one session."""

    def __init__(self, write_client: Callable[[bytes], None], write_backend: Callable[[bytes], None],
                 on_outcome: Callable[[Any, int, float, str | None], None],
                 max_message: int = DEFAULT_MAX_MESSAGE,
                 on_row_limit: Callable[[Any, int, float, bool], bytes] | None = None) -> None:
        self.write_client = write_client
        self.write_backend = write_backend
        self.on_outcome = on_outcome
        self.on_row_limit = on_row_limit  # an answer over its row cap: the error to send (and its record)
        self.max_message = max_message
        self.pending: deque[Pending] = deque()
        self.status = "I"
        self.in_error = False
        self.error_state: str | None = None
        # the start of a message not whole yet, and the length it has when whole: a long message (a
        # big DataRow) is gathered here until it is, not rejoined and rescanned on every chunk (that
        # was quadratic in its size: 0.27 s of event loop for 16 MB in 64 kB chunks, 4x per doubling)
        self._tail = bytearray()
        self._need = 0
        self.idle_waiters: list[Callable[[], None]] = []

    # ---- what the session queues --------------------------------------------------------
    def expect(self, entry: Pending) -> None:
        self.pending.append(entry)

    def synthetic(self, data: bytes, *, ready: bool = False) -> None:
        """Answer with ``data`` (and ReadyForQuery if ``ready``) once earlier answers are out."""
        if not self.pending:
            self.write_client(data + (responses.ready(self.status) if ready else b""))
        else:
            self.pending.append(Pending(SYNTH, data=data, ready=ready))

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    # ---- backend bytes ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Called with every chunk the backend sends (the hot path)."""
        tail = self._tail
        if tail:
            tail += data
            if len(tail) < self._need:
                return  # still short of the message's end: nothing to scan yet
            data = bytes(tail)
            tail.clear()
        n = len(data)
        pos = 0
        start = 0
        pieces: list[bytes] | None = None
        pending = self.pending
        head = pending[0] if pending else None
        max_message = self.max_message
        need = 5  # what the message at ``pos`` lacks being whole: at least its header
        while True:
            # the frame's end (as framing.frame_end, inline: type byte, then a big-endian length)
            if n - pos < 5:
                break
            length = (data[pos + 1] << 24) | (data[pos + 2] << 16) | (data[pos + 3] << 8) | data[pos + 4]
            if length < 4 or length > max_message:
                frame_end(data, pos, max_message)  # raises the protocol error
            end = pos + 1 + length
            if end > n:
                need = 1 + length
                break
            t = data[pos]
            if head is not None and head.hold is not None:  # a capped answer: held, counted, then released or refused
                if pieces is None:
                    pieces = []
                pieces.append(data[start:pos])
                pieces.append(self._held(head, t, data, pos, end))
                start = end
                head = pending[0] if pending else None
                pos = end
                continue
            if t == _D:
                if head is not None:
                    head.rows += 1
            elif head is not None and (t == _Z or t == _E or t == _G
                                       or (head.kind == EXT and _ext_terminal(t))
                                       or (head.kind == EXEC and _exec_terminal(t))):
                replacement = self._terminal(t, data, pos, end)
                if replacement is not None:
                    if pieces is None:
                        pieces = []
                    pieces.append(data[start:pos])
                    pieces.append(replacement)
                    start = end
                head = pending[0] if pending else None
            pos = end
        if pos < n:
            tail += data[pos:]
            self._need = need
        if pieces is None:
            if pos:
                self.write_client(data if pos == n else data[:pos])
        else:
            pieces.append(data[start:pos])
            self.write_client(b"".join(pieces))
        if not pending and self.idle_waiters:
            waiters, self.idle_waiters = self.idle_waiters, []
            for wake in waiters:
                wake()

    def _held(self, head: Pending, t: int, data: bytes, pos: int, end: int) -> bytes:
        """One backend message of a capped answer: what to write to the client now."""
        hold = head.hold
        assert hold is not None
        message = bytes(data[pos:end])
        if t == _D:
            head.rows += 1
            if head.rows <= head.cap:
                hold.append(message)
            return b""
        ends = t == _Z or t == _E or t == _G or (head.kind == EXEC and _exec_terminal(t))
        if head.kind == QUERY and t != _Z and t != _G:
            ends = False  # a simple Query's answer ends with its ReadyForQuery
        if not ends:
            if head.rows <= head.cap:
                hold.append(message)
            if t == _E:
                self.error_state = _field(message[5:], ord("C"))
            return b""
        over = head.rows > head.cap
        head.hold = None  # from here the entry is handled like any other
        if over:
            rows = head.rows
            head.rows = 0
            self.error_state = RowLimitExceeded.sqlstate
            # an Execute's outcome is recorded here; a Query's when its ReadyForQuery pops it (as 54000)
            error = self.on_row_limit(head.plan, rows, head.t0, head.kind == EXEC) if self.on_row_limit else b""
            if head.kind == EXEC:  # the portal's answer becomes an error; the client now skips to Sync
                self.pending.popleft()
                self.in_error = True
                return error
            replaced = self._terminal(t, data, pos, end)
            return error + (message if replaced is None else replaced)
        replaced = self._terminal(t, data, pos, end)
        return b"".join(hold) + (message if replaced is None else replaced)

    def _terminal(self, t: int, data: bytes, pos: int, end: int) -> bytes | None:
        """Handle a message that ends an expected answer; return replacement bytes or None to pass it."""
        pending = self.pending
        head = pending[0]
        if t == _G:  # COPY FROM STDIN: never let client data in; fail the copy ourselves
            self.write_backend(encode(CopyFail("gateway: COPY FROM STDIN is not allowed")))
            return b""
        if t == _E:
            return self._error(head, data, pos, end)
        if t == _Z:
            status = data[pos + 5]
            self.status = "I" if status == 73 else "T" if status == 84 else "E" if status == 69 else chr(status)
            while pending:
                entry = pending.popleft()
                if entry.done is not None:
                    entry.done(entry.kind == QUERY and self.error_state is None)
                if entry.kind == EXEC and entry.plan is not None:
                    self.on_outcome(entry.plan, entry.rows, entry.t0, self.error_state or "57014")
                if entry.kind == QUERY and entry.plan is not None:
                    self.on_outcome(entry.plan, entry.rows, entry.t0, self.error_state)
                if entry.kind == SYNC or entry.kind == QUERY:
                    break
            self.in_error = False
            self.error_state = None
            if not pending or pending[0].kind != SYNTH:
                return None  # the usual case: the ReadyForQuery goes as it is
            out: list[bytes] = [bytes(data[pos:end])]
            self._flush_synthetic(out)
            return b"".join(out) if len(out) > 1 else None
        # EXT / EXEC terminal
        pending.popleft()
        if head.done is not None:
            head.done(True)
        if head.kind == EXEC and head.plan is not None:
            self.on_outcome(head.plan, head.rows, head.t0, None)
        if not head.swallow and (not pending or pending[0].kind != SYNTH):
            return None  # the usual case: the message goes as it is
        out = [] if head.swallow else [bytes(data[pos:end])]
        self._flush_synthetic(out)
        if head.swallow or len(out) > 1:
            return b"".join(out)
        return None

    def _error(self, head: Pending, data: bytes, pos: int, end: int) -> bytes | None:
        body = bytes(data[pos + 5:end])
        replacement: bytes | None = None
        sqlstate = _field(body, ord("C"))
        if head.data is not None and head.kind != SYNTH and _MARKER_BYTES in body:
            replacement = head.data
            sqlstate = _field(head.data[5:], ord("C"))
        if head.kind == QUERY:
            self.error_state = sqlstate
            return replacement
        # extended protocol: the backend now skips to Sync; entries before it never get an answer
        self.in_error = True
        self.error_state = sqlstate
        if head.kind in (EXT, EXEC):
            self.pending.popleft()
            if head.done is not None:
                head.done(False)
            if head.kind == EXEC and head.plan is not None:
                self.on_outcome(head.plan, head.rows, head.t0, sqlstate)
        return replacement

    def _flush_synthetic(self, out: list[bytes]) -> None:
        pending = self.pending
        while pending and pending[0].kind == SYNTH:
            entry = pending.popleft()
            if self.in_error:
                continue
            out.append(entry.data or b"")
            if entry.ready:
                out.append(responses.ready(self.status))


def _field(body: bytes, code: int) -> str | None:
    """One field of an ErrorResponse body (without decoding the rest)."""
    try:
        msg = ErrorResponse.decode(Reader(body))
    except RemoteProtocolError:
        return None
    return msg.field(chr(code))
