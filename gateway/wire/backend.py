"""Messages the server (backend) sends, as frozen dataclasses, with their encoders and decoders.

>>> from gateway.wire import encode
>>> encode(ReadyForQuery("I"))
b'Z\\x00\\x00\\x00\\x05I'
"""

from __future__ import annotations

from typing import ClassVar

from gateway.wire.message import Message
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


class _FieldsMixin(Message):
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


class ErrorResponse(_FieldsMixin):
    TYPE: ClassVar[bytes] = b"E"

    _fields: ClassVar[tuple[str, ...]] = ("fields",)

    def __init__(self, fields: tuple[tuple[str, str], ...]) -> None:
        self.fields = fields

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


class NoticeResponse(_FieldsMixin):
    TYPE: ClassVar[bytes] = b"N"

    _fields: ClassVar[tuple[str, ...]] = ("fields",)

    def __init__(self, fields: tuple[tuple[str, str], ...]) -> None:
        self.fields = fields

    @classmethod
    def make(cls, sqlstate: str, message: str, *, severity: str = "NOTICE") -> NoticeResponse:
        return cls((("S", severity), ("V", severity), ("C", sqlstate), ("M", message)))

    def body(self) -> bytes:
        return _fields_body(self.fields)

    @classmethod
    def decode(cls, r: Reader) -> NoticeResponse:
        return cls(_decode_fields(r))


class ParameterStatus(Message):
    TYPE: ClassVar[bytes] = b"S"
    name: str
    value: str

    _fields: ClassVar[tuple[str, ...]] = ("name", "value")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value

    def body(self) -> bytes:
        return cstr(self.name) + cstr(self.value)

    @classmethod
    def decode(cls, r: Reader) -> ParameterStatus:
        msg = cls(r.cstring(), r.cstring())
        r.finish()
        return msg


class BackendKeyData(Message):
    TYPE: ClassVar[bytes] = b"K"
    process_id: int
    secret_key: bytes

    _fields: ClassVar[tuple[str, ...]] = ("process_id", "secret_key")

    def __init__(self, process_id: int, secret_key: bytes) -> None:
        self.process_id = process_id
        self.secret_key = secret_key

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


class ReadyForQuery(Message):
    TYPE: ClassVar[bytes] = b"Z"
    status: str

    _fields: ClassVar[tuple[str, ...]] = ("status",)

    def __init__(self, status: str = "I") -> None:
        self.status = status

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


class FieldDescription(Message):
    name: str
    table_oid: int
    column_attr: int
    type_oid: int
    type_size: int
    type_modifier: int
    format: int

    _fields: ClassVar[tuple[str, ...]] = ("name", "table_oid", "column_attr", "type_oid", "type_size", "type_modifier", "format")

    def __init__(self, name: str, table_oid: int = 0, column_attr: int = 0, type_oid: int = 25, type_size: int = -1, type_modifier: int = -1, format: int = 0) -> None:
        self.name = name
        self.table_oid = table_oid
        self.column_attr = column_attr
        self.type_oid = type_oid
        self.type_size = type_size
        self.type_modifier = type_modifier
        self.format = format


class RowDescription(Message):
    TYPE: ClassVar[bytes] = b"T"
    fields: tuple[FieldDescription, ...]

    _fields: ClassVar[tuple[str, ...]] = ("fields",)

    def __init__(self, fields: tuple[FieldDescription, ...]) -> None:
        self.fields = fields

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


class DataRow(Message):
    TYPE: ClassVar[bytes] = b"D"
    values: tuple[bytes | None, ...]

    _fields: ClassVar[tuple[str, ...]] = ("values",)

    def __init__(self, values: tuple[bytes | None, ...]) -> None:
        self.values = values

    def body(self) -> bytes:
        return values_body(self.values)

    @classmethod
    def decode(cls, r: Reader) -> DataRow:
        values = read_values(r)
        r.finish()
        return cls(values)


class CommandComplete(Message):
    TYPE: ClassVar[bytes] = b"C"
    tag: str

    _fields: ClassVar[tuple[str, ...]] = ("tag",)

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def body(self) -> bytes:
        return cstr(self.tag)

    @classmethod
    def decode(cls, r: Reader) -> CommandComplete:
        msg = cls(r.cstring())
        r.finish()
        return msg


class ParameterDescription(Message):
    TYPE: ClassVar[bytes] = b"t"
    type_oids: tuple[int, ...]

    _fields: ClassVar[tuple[str, ...]] = ("type_oids",)

    def __init__(self, type_oids: tuple[int, ...]) -> None:
        self.type_oids = type_oids

    def body(self) -> bytes:
        return u16(len(self.type_oids)) + b"".join(u32(o) for o in self.type_oids)

    @classmethod
    def decode(cls, r: Reader) -> ParameterDescription:
        n = r.uint16()
        oids = tuple(r.uint32() for _ in range(n))
        r.finish()
        return cls(oids)


class NegotiateProtocolVersion(Message):
    TYPE: ClassVar[bytes] = b"v"
    newest_minor: int
    unrecognized: tuple[str, ...]

    _fields: ClassVar[tuple[str, ...]] = ("newest_minor", "unrecognized")

    def __init__(self, newest_minor: int, unrecognized: tuple[str, ...] = ()) -> None:
        self.newest_minor = newest_minor
        self.unrecognized = unrecognized

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


class _CopyResponse(Message):
    format: int
    column_formats: tuple[int, ...]

    _fields: ClassVar[tuple[str, ...]] = ("format", "column_formats")

    def __init__(self, format: int = 0, column_formats: tuple[int, ...] = ()) -> None:
        self.format = format
        self.column_formats = column_formats

    def body(self) -> bytes:
        return bytes([self.format]) + i16(len(self.column_formats)) + b"".join(i16(f) for f in self.column_formats)

    @classmethod
    def decode(cls, r: Reader):  # type: ignore[no-untyped-def]
        fmt = r.byte1()
        formats = tuple(r.int16() for _ in range(r.count(2)))
        r.finish()
        return cls(fmt, formats)


class CopyInResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"G"


class CopyOutResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"H"


class CopyBothResponse(_CopyResponse):
    TYPE: ClassVar[bytes] = b"W"


class NotificationResponse(Message):
    TYPE: ClassVar[bytes] = b"A"
    process_id: int
    channel: str
    payload: str

    _fields: ClassVar[tuple[str, ...]] = ("process_id", "channel", "payload")

    def __init__(self, process_id: int, channel: str, payload: str) -> None:
        self.process_id = process_id
        self.channel = channel
        self.payload = payload

    def body(self) -> bytes:
        return i32(self.process_id) + cstr(self.channel) + cstr(self.payload)

    @classmethod
    def decode(cls, r: Reader) -> NotificationResponse:
        msg = cls(r.int32(), r.cstring(), r.cstring())
        r.finish()
        return msg


class FunctionCallResponse(Message):
    TYPE: ClassVar[bytes] = b"V"
    value: bytes | None

    _fields: ClassVar[tuple[str, ...]] = ("value",)

    def __init__(self, value: bytes | None) -> None:
        self.value = value

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


class ParseComplete(Message):
    TYPE: ClassVar[bytes] = b"1"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> ParseComplete:
        r.finish()
        return cls()


class BindComplete(Message):
    TYPE: ClassVar[bytes] = b"2"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> BindComplete:
        r.finish()
        return cls()


class CloseComplete(Message):
    TYPE: ClassVar[bytes] = b"3"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> CloseComplete:
        r.finish()
        return cls()


class NoData(Message):
    TYPE: ClassVar[bytes] = b"n"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> NoData:
        r.finish()
        return cls()


class PortalSuspended(Message):
    TYPE: ClassVar[bytes] = b"s"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> PortalSuspended:
        r.finish()
        return cls()


class EmptyQueryResponse(Message):
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
