"""Utility statements read from tokens: SET/RESET/SHOW, transaction control.

sqlglot parses few of these faithfully (``SHOW`` and ``RESET`` become opaque commands, ``SAVEPOINT a``
parses as a column alias), so the gateway reads them from tokens with a strict grammar and prints
its own normalised text for the backend. Anything outside the grammar is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from gateway.analyzer.errors import refused

GATEWAY_SETTINGS = ("gateway.purpose", "gateway.case_number", "gateway.legal_citation",
                    "gateway.order_reference", "gateway.authorization_id")

#: Settings that change how SQL text is read or who runs it: the gateway pins them.
PINNED = {
    "client_encoding": "UTF8",
    "standard_conforming_strings": "on",
    "backslash_quote": "safe_encoding",
    "search_path": None,
    "default_transaction_read_only": "on",
    "transaction_read_only": "on",
    "role": None,
    "session_authorization": None,
    "escape_string_warning": "on",
    "session_replication_role": None,
    "default_transaction_isolation": None,
}

#: Harmless settings a requester may change on the backend.
SETTABLE = frozenset({
    "application_name", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
    "extra_float_digits", "datestyle", "intervalstyle", "timezone", "client_min_messages",
    "bytea_output", "work_mem", "jit", "lc_messages", "lc_monetary", "lc_numeric", "lc_time",
    "geqo", "enable_seqscan", "enable_indexscan", "enable_bitmapscan", "enable_hashjoin",
    "enable_mergejoin", "enable_nestloop", "random_page_cost", "max_parallel_workers_per_gather",
    "plan_cache_mode", "intervalstyle",
})

#: Settings SHOW may read from the backend.
SHOWABLE = SETTABLE | frozenset({
    "server_version", "server_version_num", "server_encoding", "transaction_isolation",
    "integer_datetimes", "max_identifier_length", "is_superuser", "lc_collate", "lc_ctype",
    "transaction_deferrable", "max_connections", "block_size",
})


@dataclass(frozen=True)
class Utility:
    kind: str  # "transaction" | "set" | "show" | "gateway_set" | "gateway_show" | "noop"
    sql: str  # normalised text for the backend ("" when the gateway answers itself)
    command_tag: str
    setting: tuple[str, str | None] | None = None


def _words(tokens: list[Token]) -> list[str]:
    return [t.text for t in tokens]


def _setting_name(tokens: list[Token]) -> tuple[str, list[Token]]:
    """Read ``name`` or ``a.b``; returns the lower-cased name and the tokens after it."""
    if not tokens:
        raise refused("a setting name is missing", "statement.utility")
    parts = [tokens[0].text]
    rest = tokens[1:]
    while len(rest) >= 2 and rest[0].token_type == TokenType.DOT:
        parts.append(rest[1].text)
        rest = rest[2:]
    for part in parts:
        if not part.replace("_", "").isalnum():
            raise refused("a setting name must be a plain identifier", "statement.utility")
    return ".".join(parts).lower(), rest


def _command_argument(tokens: list[Token]) -> tuple[str, list[Token]]:
    """sqlglot reads the argument of SHOW and RESET as one text token; accept both forms."""
    if len(tokens) == 1 and tokens[0].token_type == TokenType.STRING:
        name = tokens[0].text.strip().lower()
        if not name or not name.replace("_", "").replace(".", "").isalnum():
            raise refused("expected one setting name", "statement.utility")
        return name, []
    return _setting_name(tokens)


def _value(tokens: list[Token]) -> str:
    if len(tokens) == 1 and tokens[0].token_type in (TokenType.STRING, TokenType.NUMBER, TokenType.VAR) or (
        len(tokens) == 1 and tokens[0].text.replace("_", "").isalnum()
    ):
        return tokens[0].text
    if len(tokens) == 2 and tokens[0].token_type == TokenType.DASH and tokens[1].token_type == TokenType.NUMBER:
        return "-" + tokens[1].text
    raise refused("a setting value must be a single literal", "statement.utility")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_utility(tokens: list[Token]) -> Utility | None:
    """The utility statement ``tokens`` spell, or None when they are not one (parse them as SQL)."""
    head = tokens[0].text.upper()
    words = [w.upper() for w in _words(tokens)]
    if head in ("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE"):
        return _transaction(tokens, words)
    if head == "SET":
        return _set(tokens[1:])
    if head == "RESET":
        name, rest = _command_argument(tokens[1:])
        if name == "all":
            raise refused("RESET ALL is not allowed; reset settings one by one", "statement.utility")
        if rest:
            raise refused("RESET takes one setting name", "statement.utility")
        if name in GATEWAY_SETTINGS:
            return Utility("gateway_set", "", "RESET", (name, None))
        if name in SETTABLE:
            return Utility("set", f"RESET {name}", "RESET")
        raise refused(f"setting {name} may not be changed through the gateway", "statement.pinned_setting")
    if head == "SHOW":
        name, rest = _command_argument(tokens[1:])
        if rest:
            raise refused("SHOW takes one setting name", "statement.utility")
        if name in GATEWAY_SETTINGS or name in PINNED:
            return Utility("gateway_show", "", "SHOW", (name, None))
        if name in SHOWABLE:
            return Utility("show", f"SHOW {name}", "SHOW")
        raise refused(f"SHOW {name} is not available through the gateway", "statement.utility")
    if head in ("DISCARD", "LISTEN", "UNLISTEN", "NOTIFY", "LOAD", "CHECKPOINT", "VACUUM", "ANALYZE",
                "CLUSTER", "REINDEX", "LOCK", "DEALLOCATE", "PREPARE", "EXECUTE", "DECLARE", "FETCH",
                "MOVE", "CLOSE", "COPY", "DO", "CALL", "EXPLAIN", "GRANT", "REVOKE", "SECURITY",
                "COMMENT", "REFRESH", "IMPORT", "TRUNCATE", "CREATE", "ALTER", "DROP", "INSERT", "UPDATE",
                "DELETE", "MERGE", "REASSIGN"):
        raise refused(f"{head} statements are not allowed through the gateway; only reads are", f"statement.{head.lower()}")
    return None


_TXN_WORDS = frozenset({"ISOLATION", "LEVEL", "SERIALIZABLE", "REPEATABLE", "READ", "COMMITTED",
                        "UNCOMMITTED", "ONLY", "DEFERRABLE", "NOT", "WORK", "TRANSACTION", ","})


def _transaction(tokens: list[Token], words: list[str]) -> Utility:
    head = words[0]
    if head in ("SAVEPOINT", "RELEASE") or (head == "ROLLBACK" and "TO" in words):
        name = tokens[-1]
        body = [w for w in words[1:-1] if w not in ("SAVEPOINT", "TO", "WORK", "TRANSACTION")]
        if body or not name.text.replace("_", "").isalnum():
            raise refused("a savepoint statement names one plain savepoint", "statement.transaction")
        verb = {"SAVEPOINT": "SAVEPOINT", "RELEASE": "RELEASE SAVEPOINT"}.get(head, "ROLLBACK TO SAVEPOINT")
        return Utility("transaction", f'{verb} "{name.text}"', "SAVEPOINT" if head == "SAVEPOINT" else ("RELEASE" if head == "RELEASE" else "ROLLBACK"))
    rest = words[1:]
    if head == "START":
        if not rest or rest[0] != "TRANSACTION":
            raise refused("unknown transaction statement", "statement.transaction")
        rest = rest[1:]
    if "WRITE" in rest:
        raise refused("READ WRITE transactions are not allowed; only reads are", "statement.read_write")
    if any(w not in _TXN_WORDS for w in rest) or "AND" in rest:
        raise refused("unsupported transaction options", "statement.transaction")
    if head in ("COMMIT", "END"):
        return Utility("transaction", "COMMIT", "COMMIT")
    if head in ("ROLLBACK", "ABORT"):
        return Utility("transaction", "ROLLBACK", "ROLLBACK")
    options = " ".join(w for w in rest if w not in ("WORK", "TRANSACTION")).replace(" ,", ",")
    return Utility("transaction", f"BEGIN {options}".strip(), "BEGIN")


def _set(tokens: list[Token]) -> Utility:
    words = [t.text.upper() for t in tokens]
    local = False
    if words and words[0] in ("SESSION", "LOCAL"):
        local = words[0] == "LOCAL"
        tokens, words = tokens[1:], words[1:]
    if words[:1] == ["TRANSACTION"] or words[:3] == ["SESSION", "CHARACTERISTICS", "AS"]:
        if "WRITE" in words:
            raise refused("READ WRITE transactions are not allowed; only reads are", "statement.read_write")
        if any(w not in _TXN_WORDS for w in words[1:]):
            raise refused("unsupported transaction options", "statement.transaction")
        return Utility("set", "SET TRANSACTION " + " ".join(words[1:]), "SET")
    name, rest = _setting_name(tokens)
    if not rest or rest[0].token_type not in (TokenType.EQ,) and rest[0].text.upper() != "TO":
        raise refused("SET needs a value (SET name = value)", "statement.utility")
    rest = rest[1:]
    if name in GATEWAY_SETTINGS:
        if local:
            raise refused("gateway settings are per session; SET LOCAL is not supported for them", "statement.utility")
        value = None if rest and rest[0].text.upper() == "DEFAULT" and len(rest) == 1 else _value(rest)
        return Utility("gateway_set", "", "SET", (name, value))
    if name in PINNED:
        pinned = PINNED[name]
        value = _value(rest)
        if pinned is not None and value.lower().replace("-", "") == pinned.lower().replace("-", ""):
            return Utility("noop", "", "SET")  # setting the pinned value changes nothing
        raise refused(f"setting {name} is pinned by the gateway and may not be changed", "statement.pinned_setting")
    if name not in SETTABLE:
        raise refused(f"setting {name} may not be changed through the gateway", "statement.pinned_setting")
    value = _value(rest)
    scope = "LOCAL " if local else ""
    return Utility("set", f"SET {scope}{name} = {_literal(value)}", "SET")
