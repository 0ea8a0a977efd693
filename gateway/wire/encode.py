"""``encode(message) -> bytes`` for any message of either direction."""

from __future__ import annotations

import struct

from gateway.wire.buffer import frame
from gateway.wire.errors import LocalProtocolError

_U32 = struct.Struct("!I")


def encode(msg: object) -> bytes:
    """Serialize one message; raises :class:`LocalProtocolError` if it cannot be sent."""
    try:
        type_code = msg.TYPE  # type: ignore[attr-defined]
        body = msg.body()  # type: ignore[attr-defined]
    except AttributeError:
        raise LocalProtocolError(f"not a protocol message: {msg!r}") from None
    if not type_code:
        return _U32.pack(len(body) + 4) + body
    return frame(type_code, body)


def encode_all(*msgs: object) -> bytes:
    return b"".join(encode(m) for m in msgs)
