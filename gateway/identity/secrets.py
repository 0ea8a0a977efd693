"""Stored secrets: SCRAM-SHA-256 verifiers (PostgreSQL's format) and hashed HTTP bearer tokens.

No plaintext password or token is ever stored. A verifier reads and prints exactly like
``pg_authid.rolpassword``::

    SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>

and :meth:`ScramVerifier.auth_info` gives the tuple that ``scramp``'s server ``auth_fn`` returns.
A token is stored as ``sha256:<hex>``.

>>> v = ScramVerifier.create("secret", salt=bytes(16))
>>> ScramVerifier.parse(str(v)) == v, v.verify_password("secret"), v.verify_password("guess")
(True, True, False)
>>> hash_token("abc")
'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from scramp import ScramMechanism

MECHANISM = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096  # PostgreSQL's scram_iterations default
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
TOKEN_PREFIX = "sha256:"
MIN_ITERATIONS, MAX_ITERATIONS = 4096, 10_000_000  # what scramp's server accepts
MIN_SALT_BYTES = 12  # scramp's minimum
_VERIFIER = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")
_TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class SecretFormatError(ValueError):
    """A stored verifier or token hash is malformed."""


@dataclass(frozen=True)
class ScramVerifier:
    """A SCRAM-SHA-256 verifier: salt, iteration count, StoredKey and ServerKey."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def create(cls, password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> ScramVerifier:
        """A new verifier for ``password`` (SASLprep applied, as PostgreSQL does)."""
        salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
        salt_out, stored_key, server_key, count = ScramMechanism(MECHANISM).make_auth_info(
            password, iteration_count=iterations, salt=salt
        )
        return cls(iterations=count, salt=salt_out, stored_key=stored_key, server_key=server_key)

    @classmethod
    def parse(cls, text: str) -> ScramVerifier:
        """Read PostgreSQL's text form; raises SecretFormatError."""
        match = _VERIFIER.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise SecretFormatError(
                "not a SCRAM-SHA-256 verifier (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>; "
                "make one with `gateway passwd NAME`)"
            )
        iterations = int(match.group(1))
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise SecretFormatError(f"iteration count {iterations} is outside {MIN_ITERATIONS}-{MAX_ITERATIONS}")
        try:
            salt, stored, server = (base64.b64decode(match.group(i), validate=True) for i in (2, 3, 4))
        except (binascii.Error, ValueError):
            raise SecretFormatError("verifier holds invalid base64") from None
        if len(stored) != 32 or len(server) != 32:
            raise SecretFormatError("StoredKey and ServerKey must be 32 bytes each (SHA-256)")
        if len(salt) < MIN_SALT_BYTES:
            raise SecretFormatError(f"salt is shorter than {MIN_SALT_BYTES} bytes")
        return cls(iterations=iterations, salt=salt, stored_key=stored, server_key=server)

    def __str__(self) -> str:
        b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
        return f"{MECHANISM}${self.iterations}:{b64(self.salt)}${b64(self.stored_key)}:{b64(self.server_key)}"

    def __repr__(self) -> str:  # keys are secrets-equivalent: keep them out of logs
        return f"ScramVerifier(iterations={self.iterations}, salt=<{len(self.salt)} bytes>)"

    def auth_info(self) -> tuple[bytes, bytes, bytes, int]:
        """``(salt, stored_key, server_key, iterations)``, what a scramp server's ``auth_fn`` returns."""
        return self.salt, self.stored_key, self.server_key, self.iterations

    def verify_password(self, password: str) -> bool:
        """Whether ``password`` produces this verifier (constant-time compare; costs one PBKDF2)."""
        try:
            other = ScramVerifier.create(password, iterations=self.iterations, salt=self.salt)
        except Exception:  # scramp refuses the salt/iterations or the password's SASLprep
            return False
        return hmac.compare_digest(other.stored_key, self.stored_key) and hmac.compare_digest(
            other.server_key, self.server_key
        )


def dummy_verifier(name: str, secret: bytes, *, iterations: int = DEFAULT_ITERATIONS) -> ScramVerifier:
    """A verifier no password matches, stable per ``name`` for one ``secret``.

    Served for unknown users (and users with no verifier) so that the SCRAM exchange looks the
    same, with the same salt on every attempt, and costs the same as for a real user.
    """
    salt = hmac.new(secret, b"salt\0" + name.encode("utf-8"), hashlib.sha256).digest()[:SALT_BYTES]
    keys = hmac.new(secret, b"keys\0" + name.encode("utf-8"), hashlib.sha512).digest()
    return ScramVerifier(iterations=iterations, salt=salt, stored_key=keys[:32], server_key=keys[32:])


def hash_token(token: str) -> str:
    """``sha256:<hex>`` of a bearer token."""
    return TOKEN_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_hash(text: str) -> str:
    """Validate a stored token hash; raises SecretFormatError."""
    if not isinstance(text, str) or not _TOKEN_HASH.match(text.strip()):
        raise SecretFormatError("not a token hash (expected sha256:<64 hex digits>; make one with `gateway passwd NAME --new-token`)")
    return text.strip()


def token_matches(token: str, token_hash: str) -> bool:
    """Constant-time check of ``token`` against a stored ``sha256:<hex>``."""
    return hmac.compare_digest(hash_token(token).encode(), token_hash.encode())


def new_token() -> str:
    """A fresh random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)
