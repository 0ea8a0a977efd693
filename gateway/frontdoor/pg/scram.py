"""The server side of SCRAM-SHA-256 (RFC 5802/7677) with optional tls-server-end-point binding.

Written here rather than taken from ``scramp``'s server, which rejects the empty user name
(``n=,``) that libpq always sends (PostgreSQL takes the name from the startup packet).

>>> import base64, hashlib, hmac
>>> from gateway.identity.secrets import ScramVerifier
>>> v = ScramVerifier.create("pw", salt=b"0123456789abcdef")
>>> ex = ScramExchange(v, nonce="SNONCE")
>>> ex.client_first("n,,n=,r=CNONCE")
'r=CNONCESNONCE,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import ssl
from typing import Any


class ScramFailure(Exception):
    """The exchange failed: wrong proof, malformed message, or a channel-binding mismatch."""


def _attrs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramFailure("malformed SCRAM attribute")
        out.setdefault(part[0], part[2:])
    return out


def end_point_binding(cert_pem: str) -> bytes:
    """tls-server-end-point data: the certificate's hash (SHA-256 for MD5/SHA-1/SHA-256 signatures)."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem)
    algo = "sha256"
    try:
        from asn1crypto.x509 import Certificate

        algo = Certificate.load(der).hash_algo
    except Exception:  # noqa: BLE001 - asn1crypto missing or odd certificate: SHA-256 as the RFC default
        algo = "sha256"
    if algo in ("md5", "sha1"):
        algo = "sha256"
    return hashlib.new(algo, der).digest()


class ScramExchange:
    """One SCRAM-SHA-256[-PLUS] exchange against a stored verifier.

    ``binding`` is the tls-server-end-point data when the server offered -PLUS, else ``None``.
    """

    def __init__(self, verifier: Any, *, plus: bool = False, binding: bytes | None = None,
                 offered_plus: bool = False, nonce: str | None = None) -> None:
        self.verifier = verifier
        self.plus = plus
        self.binding = binding
        self.offered_plus = offered_plus
        self.server_nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self._gs2 = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""

    def client_first(self, message: str) -> str:
        parts = message.split(",", 2)
        if len(parts) != 3:
            raise ScramFailure("malformed client-first message")
        flag, authzid, bare = parts
        if authzid:
            raise ScramFailure("authorization identities are not supported")
        if self.plus:
            if flag != "p=tls-server-end-point":
                raise ScramFailure("SCRAM-SHA-256-PLUS needs tls-server-end-point channel binding")
        elif flag == "y" and self.offered_plus:
            raise ScramFailure("channel binding downgrade detected")
        elif flag not in ("n", "y"):
            raise ScramFailure("channel binding requested without SCRAM-SHA-256-PLUS")
        attrs = _attrs(bare)
        if "m" in attrs or not attrs.get("r"):
            raise ScramFailure("malformed client-first message")
        self._gs2 = f"{flag},{authzid},"
        self._client_first_bare = bare
        self._nonce = attrs["r"] + self.server_nonce
        salt = base64.b64encode(self.verifier.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={self.verifier.iterations}"
        return self._server_first

    def client_final(self, message: str) -> str:
        """Check the proof; return the server-final message (``v=...``) or raise ScramFailure."""
        head, sep, proof_b64 = message.rpartition(",p=")
        if not sep:
            raise ScramFailure("client-final message without proof")
        attrs = _attrs(head)
        expected_cb = self._gs2.encode() + ((self.binding or b"") if self.plus else b"")
        try:
            cb = base64.b64decode(attrs.get("c", ""), validate=True)
            proof = base64.b64decode(proof_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ScramFailure("malformed base64 in client-final message") from None
        if not hmac.compare_digest(cb, expected_cb):
            raise ScramFailure("channel binding mismatch")
        if attrs.get("r") != self._nonce:
            raise ScramFailure("nonce mismatch")
        auth_message = f"{self._client_first_bare},{self._server_first},{head}".encode()
        signature = hmac.new(self.verifier.stored_key, auth_message, hashlib.sha256).digest()
        if len(proof) != len(signature):
            raise ScramFailure("wrong proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.verifier.stored_key):
            raise ScramFailure("wrong proof")
        server_sig = hmac.new(self.verifier.server_key, auth_message, hashlib.sha256).digest()
        return "v=" + base64.b64encode(server_sig).decode()
