"""Messages a client (frontend) sends, as frozen dataclasses, with their encoders and decoders.

Each typed message has ``TYPE`` (its type byte), ``body()`` and ``decode(reader)``. Startup-phase
packets (:class:`StartupMessage`, :class:`SSLRequest`, :class:`GSSENCRequest`,
:class:`CancelRequest`) have no type byte and ``TYPE = b""``.

>>> from gateway.wire import encode
>>> encode(Query("select 1"))
b'Q\\x00\\x00\\x00\\rselect 1\\x00'
"""

from __future__ import annotations

from typing import ClassVar

from gateway.wire.message import Message
from gateway.wire.buffer import Reader, cstr, i16, i32, read_values, u32, values_body
from gateway.wire.errors import RemoteProtocolError

PROTOCOL_3_0 = 3 << 16
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102


class StartupMessage(Message):
    """The first packet of a session: protocol version and ``name=value`` parameters."""

    TYPE: ClassVar[bytes] = b""
    parameters: tuple[tuple[str, str], ...]
    protocol_version: int

    _fields: ClassVar[tuple[str, ...]] = ("parameters", "protocol_version")

    def __init__(self, parameters: tuple[tuple[str, str], ...] = (), protocol_version: int = PROTOCOL_3_0) -> None:
        self.parameters = parameters
        self.protocol_version = protocol_version

    @property
    def params(self) -> dict[str, str]:
        return dict(self.parameters)

    @property
    def minor_version(self) -> int:
        return self.protocol_version & 0xFFFF

    def body(self) -> bytes:
        parts = [u32(self.protocol_version)]
        for name, value in self.parameters:
            parts.append(cstr(name))
            parts.append(cstr(value))
        parts.append(b"\0")
        return b"".join(parts)

    @classmethod
    def decode_after_version(cls, version: int, r: Reader) -> StartupMessage:
        params: list[tuple[str, str]] = []
        while True:
            name = r.cstring()
            if not name:
                break
            params.append((name, r.cstring()))
        r.finish()
        return cls(tuple(params), version)


class SSLRequest(Message):
    TYPE: ClassVar[bytes] = b""

    def body(self) -> bytes:
        return i32(SSL_REQUEST_CODE)


class GSSENCRequest(Message):
    TYPE: ClassVar[bytes] = b""

    def body(self) -> bytes:
        return i32(GSSENC_REQUEST_CODE)


class CancelRequest(Message):
    """Sent on a new connection: cancel the query of the session holding this key."""

    TYPE: ClassVar[bytes] = b""
    process_id: int
    secret_key: bytes

    _fields: ClassVar[tuple[str, ...]] = ("process_id", "secret_key")

    def __init__(self, process_id: int, secret_key: bytes) -> None:
        self.process_id = process_id
        self.secret_key = secret_key

    def body(self) -> bytes:
        return i32(CANCEL_REQUEST_CODE) + i32(self.process_id) + bytes(self.secret_key)


class Query(Message):
    TYPE: ClassVar[bytes] = b"Q"
    sql: str

    _fields: ClassVar[tuple[str, ...]] = ("sql",)

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def body(self) -> bytes:
        return cstr(self.sql)

    @classmethod
    def decode(cls, r: Reader) -> Query:
        return cls(r.cstring())


class Parse(Message):
    TYPE: ClassVar[bytes] = b"P"
    name: str
    sql: str
    param_types: tuple[int, ...]

    _fields: ClassVar[tuple[str, ...]] = ("name", "sql", "param_types")

    def __init__(self, name: str, sql: str, param_types: tuple[int, ...] = ()) -> None:
        self.name = name
        self.sql = sql
        self.param_types = param_types

    def body(self) -> bytes:
        return cstr(self.name) + cstr(self.sql) + i16(len(self.param_types)) + b"".join(
            u32(oid) for oid in self.param_types
        )

    @classmethod
    def decode(cls, r: Reader) -> Parse:
        name, sql = r.cstring(), r.cstring()
        n = r.count(4)
        return cls(name, sql, tuple(r.uint32() for _ in range(n)))


class Bind(Message):
    TYPE: ClassVar[bytes] = b"B"
    portal: str
    statement: str
    param_formats: tuple[int, ...]
    params: tuple[bytes | None, ...]
    result_formats: tuple[int, ...]

    _fields: ClassVar[tuple[str, ...]] = ("portal", "statement", "param_formats", "params", "result_formats")

    def __init__(self, portal: str, statement: str, param_formats: tuple[int, ...] = (), params: tuple[bytes | None, ...] = (), result_formats: tuple[int, ...] = ()) -> None:
        self.portal = portal
        self.statement = statement
        self.param_formats = param_formats
        self.params = params
        self.result_formats = result_formats

    def body(self) -> bytes:
        return (
            cstr(self.portal)
            + cstr(self.statement)
            + i16(len(self.param_formats))
            + b"".join(i16(f) for f in self.param_formats)
            + values_body(self.params)
            + i16(len(self.result_formats))
            + b"".join(i16(f) for f in self.result_formats)
        )

    @classmethod
    def decode(cls, r: Reader) -> Bind:
        portal, statement = r.cstring(), r.cstring()
        formats = tuple(r.int16() for _ in range(r.count(2)))
        params = read_values(r)
        results = tuple(r.int16() for _ in range(r.count(2)))
        return cls(portal, statement, formats, params, results)


class Describe(Message):
    """Describe a prepared statement (``kind="S"``) or a portal (``kind="P"``)."""

    TYPE: ClassVar[bytes] = b"D"
    kind: str
    name: str

    _fields: ClassVar[tuple[str, ...]] = ("kind", "name")

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind = kind
        self.name = name

    def body(self) -> bytes:
        return self.kind.encode("ascii") + cstr(self.name)

    @classmethod
    def decode(cls, r: Reader) -> Describe:
        kind = chr(r.byte1())
        if kind not in ("S", "P"):
            raise RemoteProtocolError(f"Describe of unknown kind {kind!r}")
        return cls(kind, r.cstring())


class Close(Message):
    TYPE: ClassVar[bytes] = b"C"
    kind: str
    name: str

    _fields: ClassVar[tuple[str, ...]] = ("kind", "name")

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind = kind
        self.name = name

    def body(self) -> bytes:
        return self.kind.encode("ascii") + cstr(self.name)

    @classmethod
    def decode(cls, r: Reader) -> Close:
        kind = chr(r.byte1())
        if kind not in ("S", "P"):
            raise RemoteProtocolError(f"Close of unknown kind {kind!r}")
        return cls(kind, r.cstring())


class Execute(Message):
    TYPE: ClassVar[bytes] = b"E"
    portal: str
    max_rows: int

    _fields: ClassVar[tuple[str, ...]] = ("portal", "max_rows")

    def __init__(self, portal: str = "", max_rows: int = 0) -> None:
        self.portal = portal
        self.max_rows = max_rows

    def body(self) -> bytes:
        return cstr(self.portal) + i32(self.max_rows)

    @classmethod
    def decode(cls, r: Reader) -> Execute:
        return cls(r.cstring(), r.int32())


class Sync(Message):
    TYPE: ClassVar[bytes] = b"S"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> Sync:
        return cls()


class Flush(Message):
    TYPE: ClassVar[bytes] = b"H"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> Flush:
        return cls()


class Terminate(Message):
    TYPE: ClassVar[bytes] = b"X"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> Terminate:
        return cls()


class PasswordMessage(Message):
    """Type ``p``: a password, or a SASL message; which one depends on the authentication request.

    Use :meth:`SASLInitialResponse.from_password` / :meth:`SASLResponse.from_password` to read it.
    """

    TYPE: ClassVar[bytes] = b"p"
    data: bytes

    _fields: ClassVar[tuple[str, ...]] = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def body(self) -> bytes:
        return bytes(self.data)

    @classmethod
    def decode(cls, r: Reader) -> PasswordMessage:
        return cls(r.rest())

    def password(self) -> str:
        return Reader(self.data).cstring()


class SASLInitialResponse(Message):
    TYPE: ClassVar[bytes] = b"p"
    mechanism: str
    data: bytes | None

    _fields: ClassVar[tuple[str, ...]] = ("mechanism", "data")

    def __init__(self, mechanism: str, data: bytes | None = None) -> None:
        self.mechanism = mechanism
        self.data = data

    def body(self) -> bytes:
        if self.data is None:
            return cstr(self.mechanism) + b"\xff\xff\xff\xff"
        return cstr(self.mechanism) + i32(len(self.data)) + bytes(self.data)

    @classmethod
    def from_password(cls, msg: PasswordMessage) -> SASLInitialResponse:
        r = Reader(msg.data)
        mechanism = r.cstring()
        size = r.int32()
        data = None if size == -1 else r.raw(size)
        r.finish()
        return cls(mechanism, data)


class SASLResponse(Message):
    TYPE: ClassVar[bytes] = b"p"
    data: bytes

    _fields: ClassVar[tuple[str, ...]] = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def body(self) -> bytes:
        return bytes(self.data)

    @classmethod
    def from_password(cls, msg: PasswordMessage) -> SASLResponse:
        return cls(msg.data)


class FunctionCall(Message):
    TYPE: ClassVar[bytes] = b"F"
    function_oid: int
    arg_formats: tuple[int, ...]
    args: tuple[bytes | None, ...]
    result_format: int

    _fields: ClassVar[tuple[str, ...]] = ("function_oid", "arg_formats", "args", "result_format")

    def __init__(self, function_oid: int, arg_formats: tuple[int, ...] = (), args: tuple[bytes | None, ...] = (), result_format: int = 0) -> None:
        self.function_oid = function_oid
        self.arg_formats = arg_formats
        self.args = args
        self.result_format = result_format

    def body(self) -> bytes:
        return (
            u32(self.function_oid)
            + i16(len(self.arg_formats))
            + b"".join(i16(f) for f in self.arg_formats)
            + values_body(self.args)
            + i16(self.result_format)
        )

    @classmethod
    def decode(cls, r: Reader) -> FunctionCall:
        oid = r.uint32()
        formats = tuple(r.int16() for _ in range(r.count(2)))
        return cls(oid, formats, read_values(r), r.int16())


class CopyData(Message):
    """Both directions."""

    TYPE: ClassVar[bytes] = b"d"
    data: bytes

    _fields: ClassVar[tuple[str, ...]] = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def body(self) -> bytes:
        return bytes(self.data)

    @classmethod
    def decode(cls, r: Reader) -> CopyData:
        return cls(r.rest())


class CopyDone(Message):
    """Both directions."""

    TYPE: ClassVar[bytes] = b"c"

    def body(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> CopyDone:
        return cls()


class CopyFail(Message):
    TYPE: ClassVar[bytes] = b"f"
    message: str

    _fields: ClassVar[tuple[str, ...]] = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def body(self) -> bytes:
        return cstr(self.message)

    @classmethod
    def decode(cls, r: Reader) -> CopyFail:
        return cls(r.cstring())


FrontendMessage = (
    StartupMessage | SSLRequest | GSSENCRequest | CancelRequest | Query | Parse | Bind | Describe
    | Close | Execute | Sync | Flush | Terminate | PasswordMessage | SASLInitialResponse
    | SASLResponse | FunctionCall | CopyData | CopyDone | CopyFail
)

#: type byte -> class, for typed messages after the startup phase.
FRONTEND_TYPES: dict[int, type] = {
    cls.TYPE[0]: cls
    for cls in (Query, Parse, Bind, Describe, Close, Execute, Sync, Flush, Terminate,
                PasswordMessage, FunctionCall, CopyData, CopyDone, CopyFail)
}


def decode_startup(body: bytes) -> StartupMessage | SSLRequest | GSSENCRequest | CancelRequest:
    """Decode a startup-phase packet body (after its Int32 length)."""
    r = Reader(body)
    code = r.uint32()
    if code == SSL_REQUEST_CODE:
        r.finish()
        return SSLRequest()
    if code == GSSENC_REQUEST_CODE:
        r.finish()
        return GSSENCRequest()
    if code == CANCEL_REQUEST_CODE:
        pid = r.int32()
        key = r.rest()
        if not 4 <= len(key) <= 256:
            raise RemoteProtocolError("CancelRequest secret key must be 4 to 256 bytes")
        return CancelRequest(pid, key)
    if code >> 16 == 3:
        return StartupMessage.decode_after_version(code, r)
    raise RemoteProtocolError(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
