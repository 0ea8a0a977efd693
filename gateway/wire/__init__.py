"""Sans-IO PostgreSQL protocol 3.0 codec: bytes in, frozen messages out, and back.

No sockets here: :class:`FrontendParser` / :class:`BackendParser` take bytes with ``feed`` and give
messages with ``next_event``; :func:`encode` turns a message into bytes; :mod:`gateway.wire.framing`
splits a relay buffer into whole messages without building objects.
"""

from gateway.wire.auth import (
    AuthenticationCleartextPassword, AuthenticationMD5Password, AuthenticationOk, AuthenticationOther,
    AuthenticationSASL, AuthenticationSASLContinue, AuthenticationSASLFinal,
)
from gateway.wire.backend import (
    BackendKeyData, BackendMessage, BindComplete,
    CloseComplete, CommandComplete, CopyBothResponse, CopyInResponse, CopyOutResponse, DataRow,
    EmptyQueryResponse, ErrorResponse, FieldDescription, FunctionCallResponse, NegotiateProtocolVersion,
    NoData, NoticeResponse, NotificationResponse, ParameterDescription, ParameterStatus, ParseComplete,
    PortalSuspended, ReadyForQuery, RowDescription,
)
from gateway.wire.encode import encode, encode_all
from gateway.wire.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from gateway.wire.framing import DEFAULT_MAX_MESSAGE, complete_prefix, frame_end, iter_frames
from gateway.wire.frontend import (
    PROTOCOL_3_0, Bind, CancelRequest, FrontendMessage, Close, CopyData, CopyDone, CopyFail, Describe, Execute, Flush,
    FunctionCall, GSSENCRequest, Parse, PasswordMessage, Query, SASLInitialResponse, SASLResponse,
    SSLRequest, StartupMessage, Sync, Terminate,
)
from gateway.wire.parser import BackendParser, FrontendParser

__all__ = [
    "AuthenticationCleartextPassword", "AuthenticationMD5Password", "AuthenticationOk", "AuthenticationOther",
    "AuthenticationSASL", "AuthenticationSASLContinue", "AuthenticationSASLFinal", "BackendKeyData",
    "BackendParser", "Bind", "BindComplete", "CancelRequest", "Close", "CloseComplete", "CommandComplete",
    "CopyBothResponse", "CopyData", "CopyDone", "CopyFail", "CopyInResponse", "CopyOutResponse", "DataRow",
    "DEFAULT_MAX_MESSAGE", "Describe", "EmptyQueryResponse", "ErrorResponse", "Execute", "FieldDescription",
    "Flush", "FrontendParser", "FunctionCall", "FunctionCallResponse", "GSSENCRequest", "LocalProtocolError",
    "NegotiateProtocolVersion", "NoData", "NoticeResponse", "NotificationResponse", "PROTOCOL_3_0",
    "ParameterDescription", "ParameterStatus", "Parse", "ParseComplete", "PasswordMessage",
    "PortalSuspended", "ProtocolError", "Query", "ReadyForQuery", "RemoteProtocolError", "RowDescription",
    "SASLInitialResponse", "SASLResponse", "SSLRequest", "StartupMessage", "Sync", "Terminate",
    "complete_prefix", "encode", "encode_all", "frame_end", "iter_frames", "BackendMessage", "FrontendMessage",
]
