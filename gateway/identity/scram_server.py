"""The server side of one SCRAM-SHA-256 login, sans-IO, the way PostgreSQL runs it.

Why not scramp's server: libpq, asyncpg and most drivers send an empty SCRAM user name
(``n,,n=,r=...``) because PostgreSQL takes the user from the startup packet, and scramp's server
refuses an empty ``n=``. Here the caller picks the verifier from the startup user
(:meth:`gateway.identity.requesters.Requesters.verifier_for`, a dummy for unknown users) and the
SCRAM ``n=`` attribute is ignored, as PostgreSQL does.

    exchange = ScramExchange(registry.verifier_for(startup_user))
    server_first = exchange.server_first(sasl_initial_response_data)   # AuthenticationSASLContinue
    server_final = exchange.server_final(sasl_response_data)           # AuthenticationSASLFinal
    # raises AuthenticationFailed (28P01) on a wrong password or a malformed message

Channel binding: pass ``channel_binding=(b"tls-server-end-point", cert_hash)`` when the connection
uses TLS and ``SCRAM-SHA-256-PLUS`` was offered; a client that says ``y`` (it could bind but thinks
the server cannot) is then refused as a downgrade, as in RFC 5802.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from gateway.errors import AuthenticationFailed
from gateway.identity.secrets import ScramVerifier

MECHANISM = "SCRAM-SHA-256"
MECHANISM_PLUS = "SCRAM-SHA-256-PLUS"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _fail(detail: str) -> AuthenticationFailed:
    # The requester sees one message whatever went wrong; `detail` is for the operator's log.
    return AuthenticationFailed("gateway: password authentication failed", detail=detail)


class ScramExchange:
    """One SCRAM-SHA-256 exchange: :meth:`server_first`, then :meth:`server_final`."""

    def __init__(
        self,
        verifier: ScramVerifier,
        *,
        channel_binding: tuple[bytes, bytes] | None = None,
        server_nonce: str | None = None,
    ) -> None:
        self._verifier = verifier
        self._binding = channel_binding  # (name, data) when -PLUS is offered
        self._server_nonce = server_nonce or _b64(secrets.token_bytes(18))
        self._gs2_header = b""
        self._cb_data = b""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self.authenticated = False

    def server_first(self, client_first: bytes) -> bytes:
        """Answer the client-first message (the SASLInitialResponse data)."""
        if self._server_first:
            raise _fail("client-first message sent twice")
        text = _decode(client_first)
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise _fail("malformed client-first message")
        flag, authzid, bare = parts
        if authzid:
            raise _fail("authorization identity (a=) is not supported")
        self._check_binding_flag(flag)
        self._gs2_header = f"{flag},{authzid},".encode()
        attrs = bare.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            raise _fail("client-first message must start with n= and r=")
        client_nonce = attrs[1][2:]
        if not client_nonce or not all(0x21 <= ord(c) <= 0x7E for c in client_nonce):
            raise _fail("invalid client nonce")
        self._client_first_bare = bare
        self._nonce = client_nonce + self._server_nonce
        v = self._verifier
        self._server_first = f"r={self._nonce},s={_b64(v.salt)},i={v.iterations}"
        return self._server_first.encode("ascii")

    def server_final(self, client_final: bytes) -> bytes:
        """Check the client's proof; return the server-final message or raise AuthenticationFailed."""
        if not self._server_first or self.authenticated:
            raise _fail("client-final message out of order")
        text = _decode(client_final)
        without_proof, sep, proof_text = text.rpartition(",p=")
        if not sep:
            raise _fail("client-final message has no proof")
        attrs = without_proof.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("c=") or not attrs[1].startswith("r="):
            raise _fail("client-final message must start with c= and r=")
        expected_c = _b64(self._gs2_header + self._cb_data)
        if not hmac.compare_digest(attrs[0][2:].encode(), expected_c.encode()):
            raise _fail("channel binding does not match")
        if not hmac.compare_digest(attrs[1][2:].encode(), self._nonce.encode()):
            raise _fail("nonce does not match")
        try:
            proof = base64.b64decode(proof_text, validate=True)
        except (binascii.Error, ValueError):
            raise _fail("proof is not base64") from None
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        v = self._verifier
        signature = hmac.new(v.stored_key, auth_message, hashlib.sha256).digest()
        if len(proof) != len(signature):
            raise _fail("proof has the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), v.stored_key):
            raise _fail("wrong password")
        self.authenticated = True
        server_signature = hmac.new(v.server_key, auth_message, hashlib.sha256).digest()
        return f"v={_b64(server_signature)}".encode("ascii")

    def _check_binding_flag(self, flag: str) -> None:
        if flag == "n":
            return
        if flag == "y":
            if self._binding is not None:
                raise _fail("client did not use channel binding that the server offered (downgrade)")
            return
        if flag.startswith("p="):
            if self._binding is None or flag[2:].encode() != self._binding[0]:
                raise _fail(f"channel binding {flag[2:]!r} is not offered")
            self._cb_data = self._binding[1]
            return
        raise _fail("malformed channel binding flag")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("SCRAM message is not UTF-8") from None


def end_point_binding(cert_pem: str) -> bytes:
    """tls-server-end-point channel-binding data (RFC 5929): the hash of the server certificate,
    with the certificate's own signature hash, SHA-256 for MD5/SHA-1 or when it cannot be read."""
    import ssl

    der = ssl.PEM_cert_to_DER_cert(cert_pem)
    try:
        from asn1crypto.x509 import Certificate

        algo = Certificate.load(der).hash_algo
    except Exception:  # noqa: BLE001 - asn1crypto missing or an odd certificate: the RFC default
        algo = "sha256"
    if algo in ("md5", "sha1"):
        algo = "sha256"
    return hashlib.new(algo, der).digest()
