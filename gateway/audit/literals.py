"""Keyed hashes of literal values, so the request log is not a second copy of the database.

Every literal inside a statement (strings, numbers, dollar-quoted and escape strings) and every
parameter value is replaced by ``'h:<16 hex>'``: the first 64 bits of HMAC-SHA256 over the value's
text with a key derived from the log key. An auditor who holds the key can still find every request
that named a license number by hashing it the same way (:meth:`LiteralHasher.hash_literal`), but the
log itself holds no value. Comments are hashed too (they can carry values). Pure: no I/O.

>>> h = LiteralHasher(b"k" * 32)
>>> h.hash_sql("SELECT * FROM dmv.licenses WHERE license_number = 'CO123' LIMIT $1").count("'h:")
1
>>> h.hash_literal("CO123") in h.hash_sql("select 1 where x = 'CO123'")
True
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from gateway.audit.canonical import Signer

from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

#: Prefix of every hashed value; searchable as is.
HASH_PREFIX = "h:"
HASH_HEX_CHARS = 16

_LITERAL_TYPES = frozenset(
    getattr(TokenType, name)
    for name in (
        "STRING",
        "NUMBER",
        "BYTE_STRING",
        "NATIONAL_STRING",
        "HEREDOC_STRING",
        "BIT_STRING",
        "HEX_STRING",
        "RAW_STRING",
        "UNICODE_STRING",
    )
    if hasattr(TokenType, name)
)

#: the token types whose text the hasher replaces (the skeleton cache checks a text has no others)
LITERAL_TYPES = _LITERAL_TYPES

_POSTGRES = Dialect.get_or_raise("postgres")
_TOKENIZER = _POSTGRES.tokenizer()  # one instance: Dialect.tokenize builds a new one per call


def derive_key(log_key: bytes, purpose: str) -> bytes:
    """A sub-key of the log key for one use (``"chain"``, ``"literal"``), so the uses never mix."""
    return hmac.new(log_key, b"gateway-audit/" + purpose.encode(), hashlib.sha256).digest()


class LiteralHasher:
    """Replaces literal values by keyed hashes (see the module docstring)."""

    def __init__(self, log_key: bytes, *, enabled: bool = True) -> None:
        self._key = derive_key(log_key, "literal")
        # the key's HMAC pads hashed once (canonical.Signer, as the chain signs): each literal costs two
        # hash-object copies, not a new HMAC context (~1.5 µs against ~3.7 µs for ``hmac.digest``)
        self._signer = Signer(self._key)
        self.enabled = enabled
        self._sql_cache: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to the analysis workers) without the signer's hash objects: made again from the key."""
        return {"_key": self._key, "enabled": self.enabled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._key = state["_key"]
        self._signer = Signer(self._key)
        self.enabled = state["enabled"]
        self._sql_cache = {}

    def hash_literal(self, value: Any) -> str:
        """``'h:'`` + 16 hex digits for ``value`` (its text form; ``None`` stays ``None``-like)."""
        if value.__class__ is str:  # literals and text parameters: the hot path
            text = value
        elif value is None:
            return "null"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (bytes, bytearray, memoryview)):
            text = bytes(value).hex()
        else:
            text = str(value)
        return HASH_PREFIX + self._signer.hexdigest(text.encode("utf-8", "surrogatepass"))[:HASH_HEX_CHARS]

    def hash_params(self, params: tuple[Any, ...] | list[Any] | None) -> list[Any]:
        """Parameter values as hashes (or, when hashing is off, as their text)."""
        if not params:
            return []
        if not self.enabled:
            return [None if p is None else _plain(p) for p in params]
        return [self.hash_literal(p) for p in params]

    def hash_sql(self, sql: str | None, tokens: list[Any] | None = None) -> str | None:
        """``sql`` with every literal and comment replaced by its keyed hash (cached per text:
        prepared statements send the same text again and again). ``tokens``: the text's tokens, when
        the caller has them already (the analyzer does), so that it is not tokenized twice."""
        if sql is None or not self.enabled:
            return sql
        cache = self._sql_cache
        hit = cache.get(sql)
        if hit is not None:
            return hit
        hashed = self._hash_sql(sql, tokens)
        if len(sql) <= 4096:
            if len(cache) >= 4096:
                cache.clear()
            cache[sql] = hashed
        return hashed

    def _hash_sql(self, sql: str, tokens: list[Any] | None = None) -> str:
        if tokens is None:
            try:
                tokens = _TOKENIZER.tokenize(sql)
            except SqlglotError:
                return f"{self.hash_literal(sql)} /* untokenizable statement, {len(sql)} chars */"
        out: list[str] = []
        pos = 0
        prev = None
        for tok in tokens:
            out.append(self._gap(sql[pos : tok.start]))
            raw = sql[tok.start : tok.end + 1]
            is_placeholder = (
                prev is not None and prev.token_type == TokenType.PARAMETER and prev.end + 1 == tok.start
            )
            if tok.token_type in _LITERAL_TYPES and not is_placeholder:
                out.append(f"'{self.hash_literal(tok.text)}'")
            else:
                out.append(raw)
            pos = tok.end + 1
            prev = tok
        out.append(self._gap(sql[pos:]))
        return "".join(out)

    def _gap(self, text: str) -> str:
        """Text between tokens: whitespace stays, anything else (comments) is hashed."""
        if not text or text.isspace():
            return text
        return f" /* {self.hash_literal(text.strip())} */ "


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    return str(value)


def hash_literal(value: Any, log_key: bytes) -> str:
    """The keyed hash the log uses for ``value`` (what ``audit search --license`` looks for)."""
    return LiteralHasher(log_key).hash_literal(value)
