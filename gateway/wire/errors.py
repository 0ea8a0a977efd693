"""Protocol errors of the sans-IO codec, kept apart as h11 does.

:class:`RemoteProtocolError` means the peer sent bytes that are not a valid message (close the
connection with a FATAL ``08P01``); :class:`LocalProtocolError` means our own code tried to encode
something that cannot be sent (a bug, never the peer's fault).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of both codec errors."""


class RemoteProtocolError(ProtocolError):
    """The peer violated the PostgreSQL protocol (bad length, unknown type, truncated body...)."""


class LocalProtocolError(ProtocolError):
    """We asked the codec to encode something the protocol cannot carry (NUL in a string...)."""
