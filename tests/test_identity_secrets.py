"""SCRAM-SHA-256 verifiers in PostgreSQL's format, checked with scramp as the client; token hashes."""

from __future__ import annotations

import doctest

import pytest
from scramp import ScramClient, ScramException, ScramMechanism

from gateway.identity import secrets as secrets_module
from gateway.identity.secrets import (
    ScramVerifier,
    SecretFormatError,
    check_token_hash,
    dummy_verifier,
    hash_token,
    new_token,
    token_matches,
)

#: Made by PostgreSQL 15: CREATE ROLE probe PASSWORD 'probe-demo-password' (password_encryption=scram-sha-256).
POSTGRES_VERIFIER = (
    "SCRAM-SHA-256$4096:snvVF+tRGb9cLxGeiWGm8A==$8jLrfhVNPS6jNhOrke2BTzY49cRCSes+teTI6oHXQ0s="
    ":FZs2JKbkCdQ0dO9/oh4TlxacBOK48l8rQPxyDjLygJg="
)


def _login(verifier: ScramVerifier, user: str, password: str) -> bool:
    """A full SCRAM exchange: scramp client <-> scramp server fed by ``verifier.auth_info()``."""
    server = ScramMechanism("SCRAM-SHA-256").make_server(lambda _name: verifier.auth_info())
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    try:
        server.set_client_final(client.get_client_final())
    except ScramException:
        return False
    client.set_server_final(server.get_server_final())  # the client checks the server's signature too
    return True


def test_round_trip_with_scramp_client():
    verifier = ScramVerifier.create("dmv_clerk-demo-password")
    text = str(verifier)
    assert text.startswith("SCRAM-SHA-256$4096:")
    parsed = ScramVerifier.parse(text)
    assert parsed == verifier
    assert _login(parsed, "dmv_clerk", "dmv_clerk-demo-password")
    assert not _login(parsed, "dmv_clerk", "dmv_clerk-demo-passwort")


def test_postgresql_verifier_is_understood():
    verifier = ScramVerifier.parse(POSTGRES_VERIFIER)
    assert str(verifier) == POSTGRES_VERIFIER
    assert verifier.iterations == 4096 and len(verifier.salt) == 16
    assert verifier.verify_password("probe-demo-password")
    assert not verifier.verify_password("probe-demo-passwor")
    assert _login(verifier, "probe", "probe-demo-password")


def test_salt_and_iterations():
    a = ScramVerifier.create("pw")
    b = ScramVerifier.create("pw")
    assert a.salt != b.salt and len(a.salt) == 16
    slow = ScramVerifier.create("pw", iterations=8192)
    assert str(slow).startswith("SCRAM-SHA-256$8192:") and slow.verify_password("pw")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "md5abcdef",
        "SCRAM-SHA-1$4096:c2FsdA==$a:b",
        POSTGRES_VERIFIER.replace("$4096:", "$0:"),
        POSTGRES_VERIFIER.replace("$4096:", "$1000:"),
        POSTGRES_VERIFIER.replace("snvVF+tRGb9cLxGeiWGm8A==", "c2hvcnRzYWx0"),  # 9 bytes
        POSTGRES_VERIFIER.replace("8jLrfhVNPS6jNhOrke2BTzY49cRCSes+teTI6oHXQ0s=", "AAAA"),
        POSTGRES_VERIFIER.replace("snvVF+tRGb9cLxGeiWGm8A==", "sn!vVF"),
        POSTGRES_VERIFIER + "$extra",
    ],
)
def test_malformed_verifiers(text):
    with pytest.raises(SecretFormatError):
        ScramVerifier.parse(text)


def test_repr_hides_keys():
    verifier = ScramVerifier.parse(POSTGRES_VERIFIER)
    assert "8jLr" not in repr(verifier) and "snvV" not in repr(verifier)


def test_dummy_verifier_is_stable_and_unusable():
    secret = b"k" * 32
    one, again, other = dummy_verifier("nobody", secret), dummy_verifier("nobody", secret), dummy_verifier("x", secret)
    assert one == again and one.salt != other.salt
    assert one.iterations == 4096 and len(one.salt) == 16
    assert ScramVerifier.parse(str(one)) == one  # same shape as a real verifier
    assert not _login(one, "nobody", "nobody-demo-password")
    assert dummy_verifier("nobody", b"j" * 32).salt != one.salt


def test_token_hash():
    token = new_token()
    assert len(token) >= 40 and token != new_token()
    stored = hash_token(token)
    assert stored.startswith("sha256:") and len(stored) == 7 + 64
    assert token_matches(token, stored)
    assert not token_matches(token + "x", stored)
    assert check_token_hash(" " + stored + " ") == stored
    for bad in ("sha256:xyz", stored.upper(), "md5:" + "0" * 64, token):
        with pytest.raises(SecretFormatError):
            check_token_hash(bad)


def test_doctests():
    result = doctest.testmod(secrets_module)
    assert result.failed == 0 and result.attempted > 0
