"""Fuzz target: the startup and authentication path, as the wire front door runs it.

The bytes are what a client sends before it is logged in: startup-phase packets (SSLRequest,
GSSENCRequest, CancelRequest, StartupMessage), then SASL messages. They go through the door's own
code: the frontend parser, ``session_settings`` (parameters and ``options``), ``from_password`` and
the SCRAM server (``ScramExchange``). Anything but a ProtocolError or a GatewayError (the FATAL the
client gets) is a crash.

Half of the inputs (first byte odd) run a whole SCRAM exchange with a fuzzed nonce, gs2 header and
user attribute and the correct proof, optionally spoiled at one place: an untouched exchange must
authenticate with a server signature the client can check; a spoiled one must be refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _atheris import Draw  # noqa: E402
from gateway import wire as w  # noqa: E402
from gateway.errors import AuthenticationFailed, GatewayError  # noqa: E402
from gateway.frontdoor.pg.startup import session_settings  # noqa: E402
from gateway.identity.scram_server import MECHANISM, ScramExchange  # noqa: E402
from gateway.identity.secrets import ScramVerifier  # noqa: E402
from gateway.pipeline import Gateway  # noqa: E402
from gateway.wire.errors import ProtocolError  # noqa: E402

PASSWORD = "fuzz-password"
VERIFIER = ScramVerifier.create(PASSWORD, iterations=4096, salt=b"0123456789abcdef")  # scramp's minimum
#: The client's SaltedPassword, computed once (4096 rounds of PBKDF2 per input would slow the fuzzer 100x).
SALTED = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), VERIFIER.salt, VERIFIER.iterations)


def _validate(name: str, value: str | None) -> str | None:
    return Gateway.validate_setting(None, name, value)  # type: ignore[arg-type] - it reads no state


def _raw_session(data: bytes) -> None:
    """The client's bytes, as the door reads them: startup packets, then SASL messages."""
    parser = w.FrontendParser(max_message=16 * 1024)  # the door's max_message_bytes_before_login
    parser.feed(data)
    exchange: ScramExchange | None = None
    started = False
    try:
        while (msg := parser.next_event()) is not None:
            if isinstance(msg, (w.SSLRequest, w.GSSENCRequest)):
                continue
            if isinstance(msg, w.CancelRequest):
                return
            if isinstance(msg, w.StartupMessage):
                session_settings(msg, _validate)
                started = True
                continue
            assert started, msg  # the parser gives typed messages only after the startup packet
            if not isinstance(msg, w.PasswordMessage):
                return  # the door refuses it: "expected a password message"
            if exchange is None:
                initial = w.SASLInitialResponse.from_password(msg)
                if initial.mechanism != MECHANISM or initial.data is None:
                    return
                exchange = ScramExchange(VERIFIER)
                first = exchange.server_first(initial.data)
                assert first.startswith(b"r="), first
            else:
                final = w.SASLResponse.from_password(msg)
                exchange.server_final(final.data or b"")
                raise AssertionError("a fuzzed proof authenticated")
    except (ProtocolError, GatewayError):
        return


_SPOIL = ("none", "none", "nonce", "proof", "channel", "gs2", "order")


def _whole_exchange(d: Draw) -> None:
    """A correct SCRAM exchange with fuzzed parts; spoiled at most at one place."""
    flag = d.pick(("n", "y", "n", "p=tls-server-end-point"))
    nonce = d.rest_text(d.below(40)).replace(",", "")
    user = d.rest_text(d.below(20)).replace(",", "=2C")  # RFC 5802 escapes a comma in saslname
    spoil = d.pick(_SPOIL)
    gs2 = f"{flag},,"
    bare = f"n={user},r={nonce}"
    exchange = ScramExchange(VERIFIER, server_nonce="srvNONCE")
    try:
        first = exchange.server_first((gs2 + bare).encode()).decode()
    except AuthenticationFailed:
        # refused exactly when the nonce is not printable ASCII or the flag binds to nothing offered
        ok_nonce = bool(nonce) and all(0x21 <= ord(c) <= 0x7E for c in nonce)
        assert not ok_nonce or flag.startswith("p="), (flag, user, nonce)
        return
    assert first.startswith(f"r={nonce}srvNONCE,s="), first
    server_nonce = first.split(",")[0][2:]
    channel = base64.b64encode(gs2.encode()).decode()
    if spoil == "nonce":
        server_nonce += "x"
    if spoil == "channel":
        channel = base64.b64encode(b"y,,").decode() if flag != "y" else base64.b64encode(b"n,,").decode()
    without_proof = f"c={channel},r={server_nonce}"
    if spoil == "order":
        without_proof = f"r={server_nonce},c={channel}"
    auth_message = f"{bare},{first},{without_proof}".encode()
    client_key = hmac.new(SALTED, b"Client Key", hashlib.sha256).digest()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    if spoil == "proof":
        proof = bytes([proof[0] ^ (1 + d.below(255))]) + proof[1:]
    if spoil == "gs2":
        exchange._gs2_header = b"n,a=x,"  # noqa: SLF001 - what a client that changed its header would bind
    final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
    try:
        server_final = exchange.server_final(final)
    except AuthenticationFailed:
        assert spoil != "none", (flag, user, nonce)
        return
    assert spoil == "none", spoil
    assert exchange.authenticated
    server_key = hmac.new(SALTED, b"Server Key", hashlib.sha256).digest()
    expected = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    assert server_final == b"v=" + base64.b64encode(expected), server_final


def one_input(data: bytes) -> None:
    if data[:1] and data[0] & 1:
        _whole_exchange(Draw(data[1:]))
    else:
        _raw_session(data[1:])


def seeds() -> list[bytes]:
    startup = w.encode(w.StartupMessage((("user", "dmv_clerk"), ("database", "dmv"),
                                         ("options", "-c gateway.purpose=court_order --DateStyle=ISO"))))
    sasl = w.encode(w.SASLInitialResponse(MECHANISM, b"n,,n=,r=abcdefgh"))
    final = w.encode(w.SASLResponse(b"c=biws,r=abcdefghXYZ,p=AAAA"))
    return [b"\x00" + w.encode(w.SSLRequest()) + startup + sasl + final,
            b"\x00" + startup + sasl, b"\x00" + w.encode(w.CancelRequest(7, b"abcd")),
            b"\x00" + w.encode(w.StartupMessage((("user", "x"), ("replication", "database"), ("_pq_.y", "1")),
                                                protocol_version=(3 << 16) | 2)),
            b"\x01\x00\x10abcdefghijklmnop\x04user\x00", b"\x01\x01\x08nonce!!!\x00\x03"]


#: Inputs the fuzzer once found (each its own regression; see tests/test_fuzz_atheris.py).
REGRESSIONS: list[bytes] = []
