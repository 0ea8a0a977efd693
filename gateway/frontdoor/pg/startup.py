"""The startup phase: TLS negotiation, GSS refusal, cancel requests, protocol version and parameters.

:func:`read_startup` returns the StartupMessage (or ``None`` after a CancelRequest);
:func:`session_settings` turns its parameters and ``options`` into gateway settings (``gateway.*``)
and backend settings, refusing pinned ones and replication.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.analyzer.settings import UTF8_NAMES, same_value, setting
from gateway.errors import BadRequest, FeatureNotSupported, InvalidSetting, PolicyDenied, UnknownSetting
from gateway.frontdoor.pg.channel import ClientChannel
from gateway.frontdoor.pg.options import OptionsError, parse_options
from gateway.policy.types import CLAIM_FIELDS
from gateway.wire import (
    CancelRequest, GSSENCRequest, NegotiateProtocolVersion, RemoteProtocolError, SSLRequest, StartupMessage,
    encode,
)

GATEWAY_FIELDS = CLAIM_FIELDS

#: Startup parameters that are not settings.
NOT_SETTINGS = frozenset({"user", "database", "options", "replication"})


async def read_startup(channel: ClientChannel, ssl_ctx: ssl.SSLContext | None, require_tls: bool,
                       on_cancel: Callable[[CancelRequest], Awaitable[None]]) -> StartupMessage | None:
    """Answer SSLRequest/GSSENCRequest until the StartupMessage comes; ``None`` after a CancelRequest."""
    while True:
        msg = await channel.next_event()
        if isinstance(msg, SSLRequest):
            if channel.tls:
                raise RemoteProtocolError("SSLRequest inside TLS")
            if ssl_ctx is None:
                channel.write(b"N")
            else:
                channel.write(b"S")
                await channel.start_tls(ssl_ctx)
            continue
        if isinstance(msg, GSSENCRequest):
            channel.write(b"N")
            continue
        if isinstance(msg, CancelRequest):
            await on_cancel(msg)
            return None
        assert isinstance(msg, StartupMessage)
        if require_tls and not channel.tls:
            raise PolicyDenied("gateway: this gateway requires TLS (connect with sslmode=require)")
        unrecognized = tuple(name for name, _ in msg.parameters if name.startswith("_pq_."))
        if msg.minor_version > 0 or unrecognized:
            channel.write(encode(NegotiateProtocolVersion(0, unrecognized)))
        return msg


@dataclass(frozen=True)
class StartupSettings:
    user: str
    database: str
    application_name: str
    gateway: dict[str, str]  # purpose, case_number... (validated)
    backend: dict[str, str]  # harmless backend settings to apply


def _norm(value: str) -> str:
    return value.strip().strip("'\"").lower().replace(" ", "")


def session_settings(msg: StartupMessage, validate: Callable[[str, str], str | None]) -> StartupSettings:
    """Validate the startup parameters; raises a GatewayError (FATAL for the client) if one is refused.

    What may be asked for comes from the one settings table (``gateway.analyzer.settings``): a
    pinned setting only at its pinned value, a forbidden one never, the client's own settings freely.
    """
    params = msg.params
    user = params.get("user", "")
    if not user:
        raise BadRequest("gateway: no user name specified in the startup packet")
    replication = params.get("replication", "false").lower()
    if replication not in ("false", "off", "no", "0"):
        raise FeatureNotSupported("gateway: replication connections are not allowed")
    pairs = [(k, v) for k, v in msg.parameters if k not in NOT_SETTINGS and not k.startswith("_pq_.")]
    try:
        pairs += parse_options(params.get("options", ""))
    except OptionsError as exc:
        raise BadRequest(f"gateway: {exc}") from None
    gateway: dict[str, str] = {}
    backend: dict[str, str] = {}
    for name, value in pairs:
        lname = name.lower()
        if lname.startswith("gateway."):
            key = lname.removeprefix("gateway.")
            if key not in GATEWAY_FIELDS:
                raise UnknownSetting(f'gateway: unrecognized configuration parameter "{name}"')
            problem = validate(f"gateway.{key}", value)
            if problem:
                raise InvalidSetting(f"gateway: invalid value for {name}: {problem}")
            gateway[key] = value
        elif lname == "client_encoding":
            if _norm(value) not in UTF8_NAMES:
                raise PolicyDenied(f"gateway: client_encoding is pinned to UTF8 (asked for {value})")
        elif (known := setting(lname)) is None or known.kind == "server":
            continue  # unknown or read-only: it cannot change what the gateway lets through
        elif known.kind == "client":
            backend[known.name] = value
        elif known.kind == "forbidden" or known.value is None or not same_value(value, known.value):
            raise PolicyDenied(f"gateway: setting {name} is pinned by the gateway and cannot be changed")
    return StartupSettings(user, params.get("database", user), params.get("application_name", ""), gateway, backend)
