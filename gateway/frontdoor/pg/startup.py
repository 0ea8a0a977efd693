"""The startup phase: TLS negotiation, GSS refusal, cancel requests, protocol version and parameters.

:func:`read_startup` returns the StartupMessage (or ``None`` after a CancelRequest);
:func:`session_settings` turns its parameters and ``options`` into gateway settings (``gateway.*``)
and backend settings, refusing pinned ones and replication.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from gateway.errors import BadRequest, FeatureNotSupported, InvalidSetting, PolicyDenied, UnknownSetting
from gateway.frontdoor.pg.channel import ClientChannel
from gateway.frontdoor.pg.options import OptionsError, parse_options
from gateway.wire import (
    CancelRequest, GSSENCRequest, NegotiateProtocolVersion, RemoteProtocolError, SSLRequest, StartupMessage,
    encode,
)

GATEWAY_FIELDS = ("purpose", "case_number", "legal_citation", "order_reference", "authorization_id")

#: Backend settings a client may choose for its session (applied with SET after the backend login).
HARMLESS = frozenset({
    "datestyle", "timezone", "extra_float_digits", "intervalstyle", "bytea_output", "lc_monetary", "lc_numeric",
    "lc_time", "application_name", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
    "jit", "geqo", "work_mem", "enable_seqscan", "enable_indexscan", "enable_bitmapscan", "timezone_abbreviations",
})
#: Startup parameters that are not settings.
NOT_SETTINGS = frozenset({"user", "database", "options", "replication"})
UTF8_NAMES = frozenset({"utf8", "utf-8", "unicode", "sql_ascii", "auto"})


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


def session_settings(msg: StartupMessage, pinned: Mapping[str, str | None],
                     validate: Callable[[str, str], str | None]) -> StartupSettings:
    """Validate the startup parameters; raises a GatewayError (FATAL for the client) if one is refused.

    ``pinned`` maps a setting to the only value accepted (``None``: no value may be asked for).
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
    pinned_lower = {k.lower(): v for k, v in pinned.items()}
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
        elif lname in pinned_lower:
            pinned_value = pinned_lower[lname]
            if pinned_value is None or _norm(value) != _norm(pinned_value):
                raise PolicyDenied(f"gateway: setting {name} is pinned by the gateway and cannot be changed")
        elif lname in HARMLESS:
            backend[lname] = value
        # anything else is ignored: it cannot change what the gateway lets through
    return StartupSettings(user, params.get("database", user), params.get("application_name", ""), gateway, backend)
