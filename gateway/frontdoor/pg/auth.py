"""Authenticate a requester with SCRAM-SHA-256 (and -PLUS over TLS) against the requesters file.

Unknown users and users without a verifier get a stable dummy verifier, so the exchange looks and
costs the same (no timing or message oracle). Failures are logged, answered after a growing delay
(:class:`LoginThrottle`), and end with FATAL 28P01.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any


from gateway.errors import AuthenticationFailed
from gateway.frontdoor.pg.channel import ClientChannel
from gateway.identity.scram_server import ScramExchange, end_point_binding
from gateway.frontdoor.pg.throttle import LoginThrottle
from gateway.wire import (
    AuthenticationOk, AuthenticationSASL, AuthenticationSASLContinue, AuthenticationSASLFinal, PasswordMessage,
    RemoteProtocolError, SASLInitialResponse, SASLResponse, encode,
)

log = logging.getLogger(__name__)


async def authenticate(channel: ClientChannel, gw: Any, user: str, throttle: LoginThrottle,
                       cert_pem: str | None) -> Any:
    """Run the SASL exchange; return the RequesterEntry or raise AuthenticationFailed."""
    requesters = gw.requesters
    verifier = requesters.verifier_for(user)
    entry = requesters.lookup(user)
    plus = channel.tls and cert_pem is not None
    mechanisms = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256") if plus else ("SCRAM-SHA-256",)
    channel.write(encode(AuthenticationSASL(mechanisms)))
    ok = False
    reason = "wrong password or unknown user"
    try:
        first = await _password_message(channel)
        initial = SASLInitialResponse.from_password(first)
        if initial.mechanism not in mechanisms or initial.data is None:
            raise AuthenticationFailed(f"unsupported SASL mechanism {initial.mechanism!r}")
        if initial.mechanism.endswith("-PLUS") != initial.data.startswith(b"p="):
            raise AuthenticationFailed("the SASL mechanism and the channel-binding flag disagree")
        binding = (b"tls-server-end-point", end_point_binding(cert_pem)) if plus and cert_pem else None
        exchange = ScramExchange(verifier, channel_binding=binding)
        server_first = exchange.server_first(initial.data)
        channel.write(encode(AuthenticationSASLContinue(server_first)))
        final = SASLResponse.from_password(await _password_message(channel))
        server_final = exchange.server_final(final.data or b"")
        ok = entry is not None and entry.scram is not None
    except (UnicodeDecodeError, RemoteProtocolError):
        reason = "malformed SASL message"
    except AuthenticationFailed as exc:
        reason = exc.message
    if not ok:
        log.info("login failed for %r from %s: %s", user, channel.address, reason)
        delay = throttle.delay(user, channel.host)
        throttle.failed(user, channel.host)
        try:
            await gw.log_event(None, kind="login_failed", user=user, client_addr=channel.address,
                               front_door="wire", tls=channel.tls, reason=reason)
        except Exception:  # noqa: BLE001 - the refusal stands even if the log is down
            log.exception("could not log a failed login")
        await asyncio.sleep(delay)
        raise AuthenticationFailed(f'password authentication failed for user "{user}"')
    throttle.succeeded(user, channel.host)
    channel.write(encode(AuthenticationSASLFinal(server_final)) + encode(AuthenticationOk()))
    return entry


async def _password_message(channel: ClientChannel) -> PasswordMessage:
    msg = await channel.next_event()
    if not isinstance(msg, PasswordMessage):
        raise RemoteProtocolError(f"expected a password message, got {type(msg).__name__}")
    return msg
