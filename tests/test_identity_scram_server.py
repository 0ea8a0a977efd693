"""The sans-IO SCRAM-SHA-256 server: scramp and a libpq-style client (empty user name) log in."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scramp import ScramClient

from gateway.errors import AuthenticationFailed
from gateway.identity.scram_server import ScramExchange
from gateway.identity.secrets import ScramVerifier

PASSWORD = "cbi_analyst-demo-password"
VERIFIER = ScramVerifier.create(PASSWORD)


def _scramp_login(password: str, exchange: ScramExchange, mechanism: str = "SCRAM-SHA-256", binding=None) -> None:
    client = ScramClient([mechanism], "cbi_analyst", password, channel_binding=binding)
    client.set_server_first(exchange.server_first(client.get_client_first().encode()).decode())
    final = exchange.server_final(client.get_client_final().encode())
    client.set_server_final(final.decode())  # the client checks the server signature


def _libpq_login(password: str, exchange: ScramExchange, gs2: str = "n,,") -> bytes:
    """What libpq does: an empty SCRAM user name, the server's salt and count, then the proof."""
    bare = "n=,r=fyko+d2lbbFgONRv9qkxdawL"
    first = exchange.server_first((gs2 + bare).encode()).decode()
    attrs = dict(item.split("=", 1) for item in first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    without_proof = f"c={base64.b64encode(gs2.encode()).decode()},r={attrs['r']}"
    auth = f"{bare},{first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return exchange.server_final(f"{without_proof},p={base64.b64encode(proof).decode()}".encode())


def test_scramp_client_logs_in():
    exchange = ScramExchange(VERIFIER)
    _scramp_login(PASSWORD, exchange)
    assert exchange.authenticated


def test_wrong_password_refused_with_one_message():
    exchange = ScramExchange(VERIFIER)
    with pytest.raises(AuthenticationFailed) as info:
        _scramp_login("guess", exchange)
    assert info.value.message == "gateway: password authentication failed" and info.value.detail == "wrong password"
    assert info.value.sqlstate == "28P01" and not exchange.authenticated


def test_libpq_style_empty_user_name():
    exchange = ScramExchange(VERIFIER)
    final = _libpq_login(PASSWORD, exchange)
    assert final.startswith(b"v=") and exchange.authenticated
    assert ScramExchange(VERIFIER).server_first(b"y,,n=,r=abc").startswith(b"r=abc")
    with pytest.raises(AuthenticationFailed):
        _libpq_login("nope", ScramExchange(VERIFIER))


def test_channel_binding_plus():
    binding = (b"tls-server-end-point", b"\x01" * 32)
    exchange = ScramExchange(VERIFIER, channel_binding=binding)
    _scramp_login(PASSWORD, exchange, "SCRAM-SHA-256-PLUS", ("tls-server-end-point", b"\x01" * 32))
    assert exchange.authenticated
    with pytest.raises(AuthenticationFailed, match="password authentication failed"):
        _scramp_login(PASSWORD, ScramExchange(VERIFIER, channel_binding=binding), "SCRAM-SHA-256-PLUS",
                      ("tls-server-end-point", b"\x02" * 32))  # fmt: skip
    with pytest.raises(AuthenticationFailed) as info:  # the client could bind but was told it cannot
        _libpq_login(PASSWORD, ScramExchange(VERIFIER, channel_binding=binding), gs2="y,,")
    assert "downgrade" in info.value.detail
    with pytest.raises(AuthenticationFailed):  # binding asked for but not offered
        ScramExchange(VERIFIER).server_first(b"p=tls-server-end-point,,n=,r=abc")


@pytest.mark.parametrize(
    "first",
    [b"", b"n,,", b"n,a=bob,n=,r=x", b"x,,n=,r=x", b"n,,r=x", b"n,,n=,r=", b"n,,n=,r=a b", b"\xff\xfe", b"m=1,n=,r=x"],
)
def test_malformed_client_first(first):
    with pytest.raises(AuthenticationFailed):
        ScramExchange(VERIFIER).server_first(first)


def test_out_of_order():
    with pytest.raises(AuthenticationFailed):
        ScramExchange(VERIFIER).server_final(b"c=biws,r=x,p=AAAA")
    exchange = ScramExchange(VERIFIER)
    exchange.server_first(b"n,,n=,r=abc")
    with pytest.raises(AuthenticationFailed):
        exchange.server_first(b"n,,n=,r=abc")


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_arbitrary_bytes_only_fail_cleanly(first, final):
    exchange = ScramExchange(VERIFIER, server_nonce="srv")
    try:
        exchange.server_first(first)
        exchange.server_final(final)
    except AuthenticationFailed:
        pass
    assert not exchange.authenticated
