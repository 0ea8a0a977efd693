"""Authentication requests (type ``R``) the server sends, one class per request code."""

from __future__ import annotations

from typing import ClassVar

from gateway.wire.message import Message
from gateway.wire.buffer import Reader, cstr, i32
from gateway.wire.errors import LocalProtocolError


class AuthenticationOk(Message):
    TYPE: ClassVar[bytes] = b"R"

    def body(self) -> bytes:
        return i32(0)


class AuthenticationCleartextPassword(Message):
    TYPE: ClassVar[bytes] = b"R"

    def body(self) -> bytes:
        return i32(3)


class AuthenticationMD5Password(Message):
    TYPE: ClassVar[bytes] = b"R"
    salt: bytes

    _fields: ClassVar[tuple[str, ...]] = ("salt",)

    def __init__(self, salt: bytes) -> None:
        self.salt = salt

    def body(self) -> bytes:
        if len(self.salt) != 4:
            raise LocalProtocolError("the MD5 salt is 4 bytes")
        return i32(5) + bytes(self.salt)


class AuthenticationSASL(Message):
    TYPE: ClassVar[bytes] = b"R"
    mechanisms: tuple[str, ...]

    _fields: ClassVar[tuple[str, ...]] = ("mechanisms",)

    def __init__(self, mechanisms: tuple[str, ...]) -> None:
        self.mechanisms = mechanisms

    def body(self) -> bytes:
        if any(not m for m in self.mechanisms):
            raise LocalProtocolError("a SASL mechanism name cannot be empty")
        return i32(10) + b"".join(cstr(m) for m in self.mechanisms) + b"\0"


class AuthenticationSASLContinue(Message):
    TYPE: ClassVar[bytes] = b"R"
    data: bytes

    _fields: ClassVar[tuple[str, ...]] = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def body(self) -> bytes:
        return i32(11) + bytes(self.data)


class AuthenticationSASLFinal(Message):
    TYPE: ClassVar[bytes] = b"R"
    data: bytes

    _fields: ClassVar[tuple[str, ...]] = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def body(self) -> bytes:
        return i32(12) + bytes(self.data)


class AuthenticationOther(Message):
    """An authentication request the gateway does not implement (Kerberos, GSS, SSPI)."""

    TYPE: ClassVar[bytes] = b"R"
    code: int
    data: bytes

    _fields: ClassVar[tuple[str, ...]] = ("code", "data")

    def __init__(self, code: int, data: bytes = b"") -> None:
        self.code = code
        self.data = data

    def body(self) -> bytes:
        if self.code in (0, 3, 5, 10, 11, 12):
            raise LocalProtocolError(f"use the dedicated class for authentication code {self.code}")
        return i32(self.code) + bytes(self.data)


def decode_auth(r: Reader) -> object:
    code = r.int32()
    if code == 0:
        r.finish()
        return AuthenticationOk()
    if code == 3:
        r.finish()
        return AuthenticationCleartextPassword()
    if code == 5:
        salt = r.raw(4)
        r.finish()
        return AuthenticationMD5Password(salt)
    if code == 10:
        mechs: list[str] = []
        while True:
            name = r.cstring()
            if not name:
                break
            mechs.append(name)
        r.finish()
        return AuthenticationSASL(tuple(mechs))
    if code == 11:
        return AuthenticationSASLContinue(r.rest())
    if code == 12:
        return AuthenticationSASLFinal(r.rest())
    return AuthenticationOther(code, r.rest())
