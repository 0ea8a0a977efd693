"""``encode(message) -> bytes`` for any message of either direction."""

from __future__ import annotations

import struct
from typing import get_args

from gateway.wire.backend import BackendMessage
from gateway.wire.buffer import frame
from gateway.wire.errors import LocalProtocolError
from gateway.wire.frontend import FrontendMessage
from gateway.wire.message import Message

_U32 = struct.Struct("!I")

#: Every message class of either direction (derived from the two unions: one list to keep).
MESSAGE_CLASSES: frozenset[type] = frozenset(get_args(FrontendMessage)) | frozenset(get_args(BackendMessage))


def encode(msg: object) -> bytes:
    """Serialize one message (a :data:`FrontendMessage` or :data:`BackendMessage`); raises
    :class:`LocalProtocolError` if it is not a protocol message. Typed ``object``: compiled, a narrower
    type would be checked on entry, with a TypeError instead."""
    if not isinstance(msg, Message) or type(msg) not in MESSAGE_CLASSES:
        raise LocalProtocolError(f"not a protocol message: {msg!r}")
    body = msg.body()
    type_code = msg.TYPE
    if not type_code:
        return _U32.pack(len(body) + 4) + body
    return frame(type_code, body)


def encode_all(*msgs: object) -> bytes:
    return b"".join(encode(m) for m in msgs)
