"""Authentication requests (type ``R``) the server sends, one class per request code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gateway.wire.buffer import Reader, cstr, i32
from gateway.wire.errors import LocalProtocolError


@dataclass(frozen=True)
class AuthenticationOk:
    TYPE: ClassVar[bytes] = b"R"

    def body(self) -> bytes:
        return i32(0)


@dataclass(frozen=True)
class AuthenticationCleartextPassword:
    TYPE: ClassVar[bytes] = b"R"

    def body(self) -> bytes:
        return i32(3)


@dataclass(frozen=True)
class AuthenticationMD5Password:
    TYPE: ClassVar[bytes] = b"R"
    salt: bytes

    def body(self) -> bytes:
        if len(self.salt) != 4:
            raise LocalProtocolError("the MD5 salt is 4 bytes")
        return i32(5) + bytes(self.salt)


@dataclass(frozen=True)
class AuthenticationSASL:
    TYPE: ClassVar[bytes] = b"R"
    mechanisms: tuple[str, ...]

    def body(self) -> bytes:
        if any(not m for m in self.mechanisms):
            raise LocalProtocolError("a SASL mechanism name cannot be empty")
        return i32(10) + b"".join(cstr(m) for m in self.mechanisms) + b"\0"


@dataclass(frozen=True)
class AuthenticationSASLContinue:
    TYPE: ClassVar[bytes] = b"R"
    data: bytes

    def body(self) -> bytes:
        return i32(11) + bytes(self.data)


@dataclass(frozen=True)
class AuthenticationSASLFinal:
    TYPE: ClassVar[bytes] = b"R"
    data: bytes

    def body(self) -> bytes:
        return i32(12) + bytes(self.data)


@dataclass(frozen=True)
class AuthenticationOther:
    """An authentication request the gateway does not implement (Kerberos, GSS, SSPI)."""

    TYPE: ClassVar[bytes] = b"R"
    code: int
    data: bytes = b""

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
