"""Messages the server (backend) sends, as frozen dataclasses, with their encoders and decoders.

>>> from gateway.wire import encode
>>> encode(ReadyForQuery("I"))
b'Z\\x00\\x00\\x00\\x05I'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.wire.buffer import Reader, cstr, i16, i32, read_values, u16, u32, values_body
from gateway.wire.errors import LocalProtocolError, RemoteProtocolError
from gateway.wire.auth import (
    AuthenticationCleartextPassword, AuthenticationMD5Password, AuthenticationOk, AuthenticationOther,
    AuthenticationSASL, AuthenticationSASLContinue, AuthenticationSASLFinal, decode_auth,
)
from gateway.wire.frontend import CopyData, CopyDone


def _decode_fields(r: Reader) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = []
    while True:
        code = r.byte1()
        if code == 0:
            break
        if code > 127:  # field codes are ASCII letters (and the encoder writes nothing else)
            raise RemoteProtocolError(f"invalid error field code {code:#x}")
        fields.append((chr(code), r.cstring()))
    r.finish()
    return tuple(fields)


def _fields_body(fields: tuple[tuple[str, str], ...]) -> bytes:
    parts = []
    for code, value in fields:
        if len(code) != 1 or code == "\0" or ord(code) > 127:
            raise LocalProtocolError(f"invalid error field code {code!r}")
        parts.append(code.encode("ascii") + cstr(value))
    return b"".join(parts) + b"\0"


class _FieldsMixin:
    fields: tuple[tuple[str, str], ...]

    def field(self, code: str) -> str | None:
        for key, value in self.fields:
            if key == code:
                return value
        return None

    @property
    def severity(self) -> str | None:
        return self.field("V") or self.field("S")

    @property
    def sqlstate(self) -> str | None:
        return self.field("C")

    @property
    def message(self) -> str | None:
        return self.field("M")


@dataclass(frozen=True)
class ErrorResponse(_FieldsMixin):
    TYPE: ClassVar[bytes] = b"E"
    fields: tuple[tuple[str, str], ...]

    @classmethod
    def make(cls, sqlstate: str, message: str, *, severity: str = "ERROR", detail: str | None = None,
             hint: str | None = None) -> ErrorResponse:
        fields = [("S", severity), ("V", severity), ("C", sqlstate), ("M", message)]
        if detail:
            fields.append(("D", detail))
        if hint:
            fields.append(("H", hint))
        return cls(tuple(fields))

    def body(self) -> bytes:
        return _fields_body(self.fields)

    @classmethod
    def decode(cls, r: Reader) -> ErrorResponse:
        return cls(_decode_fields(r))


@dataclass(frozen=True)
class NoticeResponse(_FieldsMixin):
    TYPE: ClassVar[bytes] = b"N"
    fields: tuple[tuple[str, str], ...]

    @classmethod
    def make(cls, sqlstate: str, message: str, *, severity: str = "NOTICE") -> NoticeResponse:
        return cls((("S", severity), ("V", severity), ("C", sqlstate), ("M", message)))

    def body(self) -> bytes:
        return _fields_body(self.fields)

    @classmethod
    def decode(cls, r: Reader) -> NoticeResponse:
        return cls(_decode_fields(r))


@dataclass(frozen=True)
class ParameterStatus:
    TYPE: ClassVar[bytes] = b"S"
    name: str
    value: str

    def body(self) -> bytes:
        return cstr(self.name) + cstr(self.value)

    @classmethod
    def decode(cls, r: Reader) -> ParameterStatus:
        msg = cls(r.cstring(), r.cstring())
        r.finish()
        return msg


@dataclass(frozen=True)
class BackendKeyData:
    TYPE: ClassVar[bytes] = b"K"
    process_id: int
    secret_key: bytes

    def body(self) -> bytes:
        if not 4 <= len(self.secret_key) <= 256:
            raise LocalProtocolError("the cancel key is 4 to 256 bytes")
        return i32(self.process_id) + bytes(self.secret_key)

    @classmethod
    def decode(cls, r: Reader) -> BackendKeyData:
        pid = r.int32()
        key = r.rest()
        if not 4 <= len(key) <= 256:
            raise RemoteProtocolError("BackendKeyData secret key must be 4 to 256 bytes")
        return cls(pid, key)


@dataclass(frozen=True)
class ReadyForQuery:
    TYPE: ClassVar[bytes] = b"Z"
    status: str = "I"

    def body(self) -> bytes:
        if self.status not in ("I", "T", "E"):
            raise LocalProtocolError(f"invalid transaction status {self.status!r}")
        return self.status.encode("ascii")

    @classmethod
    def decode(cls, r: Reader) -> ReadyForQuery:
        status = chr(r.byte1())
        r.finish()
        if status not in ("I", "T", "E"):
            raise RemoteProtocolError(f"invalid transaction status {status!r}")
        return cls(status)


@dataclass(frozen=True)
class FieldDescription:
    name: str
    table_oid: int = 0
    column_attr: int = 0
    type_oid: int = 25
    type_size: int = -1
    type_modifier: int = -1
    format: int = 0


@dataclass(frozen=True)
class RowDescription:
    TYPE: ClassVar[bytes] = b"T"
    fields: tuple[FieldDescription, ...]

    def body(self) -> bytes:
        parts = [i16(len(self.fields))]
        for f in self.fields:
            parts.append(cstr(f.name) + u32(f.table_oid) + i16(f.column_attr) + u32(f.type_oid)
                         + i16(f.type_size) + i32(f.type_modifier) + i16(f.format))
        return b"".join(parts)

    @classmethod
    def decode(cls, r: Reader) -> RowDescription:
        n = r.count(19)
        fields = tuple(
            FieldDescription(r.cstring(), r.uint32(), r.int16(), r.uint32(), r.int16(), r.int32(), r.int16())
            for _ in range(n)
        )
        r.finish()
        return cls(fields)


@dataclass(frozen=True)
class DataRow:
    TYPE: ClassVar[bytes] = b"D"
    values: tuple[bytes | None, ...]

    def body(self) -> bytes:
        return values_body(self.values)

    @classmethod
    def decode(cls, r: Reader) -> DataRow:
        values = read_values(r)
        r.finish()
        return cls(values)


@dataclass(frozen=True)
class CommandComplete:
    TYPE: ClassVar[bytes] = b"C"
    tag: str

    def body(self) -> bytes:
        return cstr(self.tag)

    @classmethod
    def decode(cls, r: Reader) -> CommandComplete:
        msg = cls(r.cstring())
        r.finish()
        return msg


@dataclass(frozen=True)
class ParameterDescription:
    TYPE: ClassVar[bytes] = b"t"
    type_oids: tuple[int, ...]

    def body(self) -> bytes:
        return u16(len(self.type_oids)) + b"".join(u32(o) for o in self.type_oids)

    @classmethod
    def decode(cls, r: Reader) -> ParameterDescription:
        n = r.uint16()
        oids = tuple(r.uint32() for _ in range(n))
        r.finish()
        return cls(oids)


@dataclass(frozen=True)
class NegotiateProtocolVersion:
    TYPE: ClassVar[bytes] = b"v"
    newest_minor: int
    unrecognized: tuple[str, ...] = ()

    def body(self) -> bytes:
        return i32(self.newest_minor) + i32(len(self.unrecognized)) + b"".join(cstr(o) for o in self.unrecognized)

    @classmethod
    def decode(cls, r: Reader) -> NegotiateProtocolVersion:
        minor, n = r.int32(), r.int32()
        if n < 0 or n > len(r.data):
            raise RemoteProtocolError("invalid option count")
        opts = tuple(r.cstring() for _ in range(n))
        r.finish()
        return cls(minor, opts)


@dataclass(frozen=True)
class _CopyResponse:
    format: int = 0
    column_formats: tuple[int, ...] = ()

    def body(self) -> bytes:
        return bytes([self.format]) + i16(len(self.column_formats)) + b"".join(i16(f) for f in self.column_formats)

    @classmethod
    def decode(cls, r: Reader):  # type: ignore[no-untyped-def]
        fmt = r.byte1()
        formats = tuple(r.int16() for _ in range(r.count(2)))
        r.finish()
        return cls(fmt, formats)


@dataclass(frozen=True)
class CopyInResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"G"


@dataclass(frozen=True)
class CopyOutResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"H"


@dataclass(frozen=True)
class CopyBothResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"W"


@dataclass(frozen=True)
class NotificationResponse:
    TYPE: ClassVar[bytes] = b"A"
    process_id: int
    channel: str
    payload: str

    def body(self) -> bytes:
        return i32(self.process_id) + cstr(self.channel) + cstr(self.payload)

    @classmethod
    def decode(cls, r: Reader) -> NotificationResponse:
        msg = cls(r.int32(), r.cstring(), r.cstring())
        r.finish()
        return msg


@dataclass(frozen=True)
class FunctionCallResponse:
    TYPE: ClassVar[bytes] = b"V"
    value: bytes | None

    def body(self) -> bytes:
        return values_body((self.value,))[2:]

    @classmethod
    def decode(cls, r: Reader) -> FunctionCallResponse:
        size = r.int32()
        value = None if size == -1 else r.raw(size)
        if size < -1:
            raise RemoteProtocolError("invalid value length")
        r.finish()
        return cls(value)


@dataclass(frozen=True)
class ParseComplete:
    TYPE: ClassVar[bytes] = b"1"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> ParseComplete:
        r.finish()
        return cls()


@dataclass(frozen=True)
class BindComplete:
    TYPE: ClassVar[bytes] = b"2"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> BindComplete:
        r.finish()
        return cls()


@dataclass(frozen=True)
class CloseComplete:
    TYPE: ClassVar[bytes] = b"3"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> CloseComplete:
        r.finish()
        return cls()


@dataclass(frozen=True)
class NoData:
    TYPE: ClassVar[bytes] = b"n"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> NoData:
        r.finish()
        return cls()


@dataclass(frozen=True)
class PortalSuspended:
    TYPE: ClassVar[bytes] = b"s"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> PortalSuspended:
        r.finish()
        return cls()


@dataclass(frozen=True)
class EmptyQueryResponse:
    TYPE: ClassVar[bytes] = b"I"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> EmptyQueryResponse:
        r.finish()
        return cls()


BackendMessage = (
    ErrorResponse | NoticeResponse | ParameterStatus | BackendKeyData | ReadyForQuery | RowDescription | DataRow
    | CommandComplete | ParameterDescription | NegotiateProtocolVersion | CopyInResponse | CopyOutResponse
    | CopyBothResponse | NotificationResponse | FunctionCallResponse | ParseComplete | BindComplete
    | CloseComplete | NoData | PortalSuspended | EmptyQueryResponse | CopyData | CopyDone
    | AuthenticationOk | AuthenticationCleartextPassword | AuthenticationMD5Password | AuthenticationSASL
    | AuthenticationSASLContinue | AuthenticationSASLFinal | AuthenticationOther
)


class _Auth:
    @staticmethod
    def decode(r: Reader) -> object:
        return decode_auth(r)


#: type byte -> decoder (a class with ``decode``).
BACKEND_TYPES: dict[int, object] = {
    cls.TYPE[0]: cls  # type: ignore[attr-defined]
    for cls in (ErrorResponse, NoticeResponse, ParameterStatus, BackendKeyData, ReadyForQuery,
                RowDescription, DataRow, CommandComplete, ParameterDescription, NegotiateProtocolVersion,
                CopyInResponse, CopyOutResponse, CopyBothResponse, NotificationResponse,
                FunctionCallResponse, ParseComplete, BindComplete, CloseComplete, NoData,
                PortalSuspended, EmptyQueryResponse, CopyData, CopyDone)
}
BACKEND_TYPES[ord("R")] = _Auth
