"""Reading and writing the protocol's primitive types: Int8/16/32, NUL-terminated strings, byte runs."""

from __future__ import annotations

import struct

from gateway.wire.errors import LocalProtocolError, RemoteProtocolError

_I16 = struct.Struct("!h")
_U16 = struct.Struct("!H")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")


class Reader:
    """A cursor over one message body; every overrun raises :class:`RemoteProtocolError`."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise RemoteProtocolError("message body is shorter than its contents")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte1(self) -> int:
        return self._take(1)[0]

    def int16(self) -> int:
        return int(_I16.unpack(self._take(2))[0])

    def uint16(self) -> int:
        return int(_U16.unpack(self._take(2))[0])

    def int32(self) -> int:
        return int(_I32.unpack(self._take(4))[0])

    def uint32(self) -> int:
        return int(_U32.unpack(self._take(4))[0])

    def raw(self, n: int) -> bytes:
        return self._take(n)

    def rest(self) -> bytes:
        return self._take(len(self.data) - self.pos)

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise RemoteProtocolError("string is not NUL-terminated")
        chunk = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("string is not valid UTF-8") from None

    def count(self, size: int) -> int:
        """An Int16 element count, checked against what is left (``size`` bytes at least per element)."""
        n = self.int16()
        if n < 0 or n * size > len(self.data) - self.pos:
            raise RemoteProtocolError(f"element count {n} does not fit the message")
        return n

    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise RemoteProtocolError("message has trailing bytes after its contents")


def cstr(value: str) -> bytes:
    """Encode a NUL-terminated UTF-8 string."""
    data = value.encode("utf-8")
    if b"\0" in data:
        raise LocalProtocolError("a protocol string cannot contain NUL")
    return data + b"\0"


def i16(value: int) -> bytes:
    try:
        return _I16.pack(value)
    except struct.error:
        raise LocalProtocolError(f"{value} does not fit an Int16") from None


def u16(value: int) -> bytes:
    try:
        return _U16.pack(value)
    except struct.error:
        raise LocalProtocolError(f"{value} does not fit a UInt16") from None


def i32(value: int) -> bytes:
    try:
        return _I32.pack(value)
    except struct.error:
        raise LocalProtocolError(f"{value} does not fit an Int32") from None


def u32(value: int) -> bytes:
    try:
        return _U32.pack(value)
    except struct.error:
        raise LocalProtocolError(f"{value} does not fit a UInt32") from None


def frame(type_code: bytes, body: bytes) -> bytes:
    """A typed message: type byte, Int32 length (itself included), body."""
    return type_code + _U32.pack(len(body) + 4) + body


def values_body(values: tuple[bytes | None, ...]) -> bytes:
    """Int16 count then, per value, Int32 length (-1 for NULL) and the bytes."""
    parts = [i16(len(values))]
    for value in values:
        if value is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(_I32.pack(len(value)))
            parts.append(bytes(value))
    return b"".join(parts)


def read_values(r: Reader) -> tuple[bytes | None, ...]:
    n = r.count(4)
    out: list[bytes | None] = []
    for _ in range(n):
        size = r.int32()
        if size == -1:
            out.append(None)
        elif size < 0:
            raise RemoteProtocolError(f"invalid value length {size}")
        else:
            out.append(r.raw(size))
    return tuple(out)
