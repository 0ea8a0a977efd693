"""Sans-IO parsers: ``feed(bytes)`` then ``next_event()`` until it returns ``None`` (need more data).

:class:`FrontendParser` reads what a client sends (the server's side): it starts in the startup phase
(untyped packets) and switches to typed messages after a :class:`StartupMessage`.
:class:`BackendParser` reads what a server sends (the client's side).
Both raise :class:`RemoteProtocolError` on garbage; after that the parser stays broken.

>>> p = FrontendParser()
>>> p.feed(b"\\x00\\x00\\x00\\x08\\x04\\xd2\\x16\\x2f")
>>> p.next_event()
SSLRequest()
>>> p.next_event() is None
True
"""

from __future__ import annotations

import struct
from typing import Any

from gateway.wire.backend import BACKEND_TYPES, BackendMessage
from gateway.wire.buffer import Reader
from gateway.wire.errors import RemoteProtocolError
from gateway.wire.framing import DEFAULT_MAX_MESSAGE, frame_end
from gateway.wire.frontend import FRONTEND_TYPES, CancelRequest, FrontendMessage, StartupMessage, decode_startup

_U32 = struct.Struct("!I")

#: PostgreSQL's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH).
MAX_STARTUP_PACKET = 10000


#: a partial message longer than this is gathered in a bytearray (appended in place) instead of being
#: copied into a new bytes object on every read
_GATHER = 64 * 1024


class _Parser:
    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        # what is received and not yet returned: ``_buf[_pos:]``, a bytes object (the usual case: a read
        # that holds whole messages is parsed in place, no copy), then whatever ``_big`` gathers (a long
        # message arriving over many reads; it becomes ``_buf`` once its first message is whole)
        self._buf = b""
        self._pos = 0
        self._big = bytearray()
        self._broken: RemoteProtocolError | None = None

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        big = self._big
        if big:
            big += data
            self._gathered()
            return
        buf, pos = self._buf, self._pos
        rest = len(buf) - pos
        if not rest:
            self._buf = bytes(data)  # (no copy for bytes)
        elif rest + len(data) <= _GATHER or self.untyped():
            self._buf = buf[pos:] + data
        else:
            big += buf[pos:]
            big += data
            self._buf = b""
            self._gathered()
        self._pos = 0

    def _gathered(self) -> None:
        """The gathered message is whole (or its length is invalid: next_raw raises it): parse it."""
        big = self._big
        try:
            whole = frame_end(big, 0, self.max_message) >= 0
        except RemoteProtocolError:
            whole = True
        if whole:
            self._buf = bytes(big)
            self._pos = 0
            big.clear()

    def untyped(self) -> bool:
        """Still reading untyped packets (a startup packet): never gathered."""
        return False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message."""
        return len(self._buf) - self._pos + len(self._big)

    def take_buffered(self) -> bytes:
        """Hand over the bytes not parsed yet (e.g. before a TLS upgrade, where there must be none)."""
        data = self._buf[self._pos:] + bytes(self._big)
        self._buf = b""
        self._big.clear()
        self._pos = 0
        return data

    def next_raw(self) -> tuple[int, bytes] | None:
        """The next whole typed message as ``(type_byte, body)``, or ``None`` if incomplete."""
        if self._broken:
            raise self._broken
        buf, pos = self._buf, self._pos
        try:
            end = frame_end(buf, pos, self.max_message)
        except RemoteProtocolError as exc:
            self._broken = exc
            raise
        if end < 0:
            return None
        self._pos = end
        return buf[pos], buf[pos + 5:end]

    def _decode(self, table: dict[int, Any], type_byte: int, body: bytes) -> Any:
        cls = table.get(type_byte)
        if cls is None:
            self._broken = RemoteProtocolError(f"unknown message type {chr(type_byte)!r}")
            raise self._broken
        r = Reader(body)
        try:
            msg = cls.decode(r)  # type: ignore[attr-defined]
        except RemoteProtocolError as exc:
            self._broken = exc
            raise
        return msg


class FrontendParser(_Parser):
    """Parses the client's side of a connection."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        super().__init__(max_message)
        self.in_startup = True
        self.closed = False

    def untyped(self) -> bool:
        return self.in_startup

    def next_event(self) -> FrontendMessage | None:
        """The next whole message (a startup packet first, then typed messages), or ``None``."""
        if self._broken:
            raise self._broken
        if self.closed and self.buffered:
            self._broken = RemoteProtocolError("data after a CancelRequest")
            raise self._broken
        if self.in_startup:
            return self._next_startup()
        raw = self.next_raw()
        if raw is None:
            return None
        return self._decode(FRONTEND_TYPES, raw[0], raw[1])

    def _next_startup(self) -> FrontendMessage | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 4:
            return None
        length = _U32.unpack_from(buf, pos)[0]
        if length < 8 or length > MAX_STARTUP_PACKET:
            self._broken = RemoteProtocolError(f"invalid startup packet length {length}")
            raise self._broken
        if len(buf) - pos < length:
            return None
        self._pos = pos + length
        try:
            msg = decode_startup(bytes(buf[pos + 4:pos + length]))
        except RemoteProtocolError as exc:
            self._broken = exc
            raise
        if isinstance(msg, StartupMessage):
            self.in_startup = False
        elif isinstance(msg, CancelRequest):
            self.closed = True
        return msg


class BackendParser(_Parser):
    """Parses the server's side of a connection."""

    def next_event(self) -> BackendMessage | None:
        """The next whole message from the server, or ``None`` if more bytes are needed."""
        raw = self.next_raw()
        if raw is None:
            return None
        return self._decode(BACKEND_TYPES, raw[0], raw[1])
