"""Utility statements read from tokens: SET/RESET/SHOW, transaction control.

sqlglot parses few of these faithfully (``SHOW`` and ``RESET`` become opaque commands, ``SAVEPOINT a``
parses as a column alias), so the gateway reads them from tokens with a strict grammar and prints
its own normalised text for the backend. Anything outside the grammar is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from gateway.analyzer.errors import refused
from gateway.analyzer.settings import is_gateway_setting, same_value, setting

#: What SHOW's multi-word forms name.
SHOW_ALIASES = {"transaction isolation level": "transaction_isolation", "time zone": "timezone",
                "session authorization": "session_authorization"}


@dataclass(frozen=True)
class Utility:
    kind: str  # "transaction" | "set" | "show" | "gateway_set" | "gateway_show" | "noop"
    # normalised text for the backend; for gateway_set (never forwarded) "SET", "SET LOCAL" or "RESET"
    sql: str
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
        name = " ".join(tokens[0].text.split()).lower()
        name = SHOW_ALIASES.get(name, name)
        if not name or not name.replace("_", "").replace(".", "").isalnum():
            raise refused("expected one setting name", "statement.utility")
        return name, []
    return _setting_name(tokens)


def _one_value(tokens: list[Token]) -> str:
    if len(tokens) == 1 and (tokens[0].token_type in (TokenType.STRING, TokenType.NUMBER, TokenType.VAR,
                                                       TokenType.HEREDOC_STRING, TokenType.IDENTIFIER)
                             or tokens[0].text.replace("_", "").isalnum()):
        return tokens[0].text
    if len(tokens) == 2 and tokens[0].token_type == TokenType.DASH and tokens[1].token_type == TokenType.NUMBER:
        return "-" + tokens[1].text
    raise refused("a setting value must be a literal or a list of literals", "statement.utility")


def _values(tokens: list[Token]) -> list[str]:
    """``v`` or ``v1, v2, ...`` (each a literal, a number or a word)."""
    out: list[str] = []
    current: list[Token] = []
    for token in [*tokens, None]:
        if token is None or token.token_type == TokenType.COMMA:
            out.append(_one_value(current))
            current = []
        else:
            current.append(token)
    return out


def _value(tokens: list[Token]) -> str:
    values = _values(tokens)
    if len(values) != 1:
        raise refused("this setting takes a single value", "statement.utility")
    return values[0]


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
        if rest:
            raise refused("RESET takes one setting name", "statement.utility")
        if name == "all":
            return Utility("set", "RESET ALL", "RESET")  # the session's gateway.* settings go too
        if is_gateway_setting(name):
            return Utility("gateway_set", "RESET", "RESET", (name, None))
        if name in ("role", "session_authorization"):
            return Utility("noop", "", "RESET")  # never changed: resetting it changes nothing
        known = setting(name)
        if known is not None and known.kind == "client":
            return Utility("set", f"RESET {known.name}", "RESET")
        if known is not None and known.kind == "pinned":
            return Utility("noop", "", "RESET")  # the pinned value is the session's default
        raise refused(f"setting {name} may not be changed through the gateway", "statement.pinned_setting")
    if head == "SHOW":
        name, rest = _command_argument(tokens[1:])
        if rest:
            raise refused("SHOW takes one setting name", "statement.utility")
        if is_gateway_setting(name):
            return Utility("gateway_show", "", "SHOW", (name, None))
        known = setting(name)
        if known is not None and known.gateway_answers:
            return Utility("gateway_show", "", "SHOW", (known.name, None))
        if known is not None:
            return Utility("show", f"SHOW {known.name}", "SHOW")
        raise refused(f"SHOW {name} is not available through the gateway", "statement.utility")
    if head == "DISCARD":
        what = words[1:]
        if what in (["ALL"], ["PLANS"], ["SEQUENCES"], ["TEMP"], ["TEMPORARY"]):
            return Utility("set", f"DISCARD {what[0]}", "DISCARD " + ("TEMP" if what[0] == "TEMPORARY" else what[0]))
        raise refused("DISCARD takes ALL, PLANS, SEQUENCES or TEMP", "statement.utility")
    if head == "DEALLOCATE":  # the client's own prepared statements (psycopg sends it)
        rest = [t for t in tokens[1:] if t.text.upper() != "PREPARE"]
        if len(rest) == 1 and rest[0].text.upper() == "ALL":
            return Utility("set", "DEALLOCATE ALL", "DEALLOCATE ALL")
        if len(rest) == 1 and rest[0].text.replace("_", "").isalnum():
            name = rest[0].text if rest[0].token_type == TokenType.IDENTIFIER else rest[0].text.lower()
            return Utility("set", f'DEALLOCATE "{name}"', "DEALLOCATE")
        raise refused("DEALLOCATE names one prepared statement or ALL", "statement.utility")
    if head in ("LISTEN", "UNLISTEN", "NOTIFY", "LOAD", "CHECKPOINT", "VACUUM", "ANALYZE",
                "CLUSTER", "REINDEX", "LOCK", "PREPARE", "EXECUTE", "DECLARE", "FETCH",
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


def _transaction_modes(words: list[str]) -> str:
    if "WRITE" in words:
        raise refused("READ WRITE transactions are not allowed; only reads are", "statement.read_write")
    if any(w not in _TXN_WORDS for w in words) or not words:
        raise refused("unsupported transaction options", "statement.transaction")
    return " ".join(words).replace(" ,", ",")


def _set(tokens: list[Token]) -> Utility:
    words = [t.text.upper() for t in tokens]
    local = False
    if words and words[0] in ("SESSION", "LOCAL") and words[1:2] != ["CHARACTERISTICS"] \
            and words[1:2] != ["AUTHORIZATION"]:
        local = words[0] == "LOCAL"
        tokens, words = tokens[1:], words[1:]
    scope = "LOCAL " if local else ""
    if words[:1] == ["TRANSACTION"]:
        if words[1:2] == ["SNAPSHOT"]:
            raise refused("SET TRANSACTION SNAPSHOT is not supported through the gateway", "statement.transaction")
        return Utility("set", "SET TRANSACTION " + _transaction_modes(words[1:]), "SET")
    if words[:4] == ["SESSION", "CHARACTERISTICS", "AS", "TRANSACTION"]:
        return Utility("set", "SET SESSION CHARACTERISTICS AS TRANSACTION " + _transaction_modes(words[4:]), "SET")
    if words[:2] in (["SESSION", "AUTHORIZATION"],) or words[:1] == ["ROLE"]:
        raise refused("setting role is pinned by the gateway and may not be changed", "statement.pinned_setting")
    if words[:2] == ["TIME", "ZONE"]:
        rest = tokens[2:]
        if [w.upper() for w in _words(rest)] in (["LOCAL"], ["DEFAULT"]):
            return Utility("set", f"SET {scope}TimeZone TO DEFAULT", "SET")
        return Utility("set", f"SET {scope}TimeZone = {_literal(_value(rest))}", "SET")
    if words[:1] in (["NAMES"], ["SCHEMA"]) or words[:2] == ["XML", "OPTION"]:
        name = {"NAMES": "client_encoding", "SCHEMA": "search_path", "XML": "xmloption"}[words[0]]
        rest = tokens[2:] if words[0] == "XML" else tokens[1:]
        return _assign(name, rest, local, scope)
    name, rest = _setting_name(tokens)
    if not rest or rest[0].token_type not in (TokenType.EQ,) and rest[0].text.upper() != "TO":
        raise refused("SET needs a value (SET name = value)", "statement.utility")
    return _assign(name, rest[1:], local, scope)


def _assign(name: str, rest: list[Token], local: bool, scope: str) -> Utility:
    default = len(rest) == 1 and rest[0].text.upper() == "DEFAULT"
    if is_gateway_setting(name):
        value = None if default else _value(rest)
        return Utility("gateway_set", "SET LOCAL" if local else "SET", "SET", (name, value))
    known = setting(name)
    if known is None:
        raise refused(f"setting {name} may not be changed through the gateway", "statement.pinned_setting")
    if known.kind == "pinned":
        values = None if default else _values(rest)
        if values is None or (known.value is not None and same_value(", ".join(values), known.value)):
            return Utility("noop", "", "SET")  # setting the pinned value changes nothing
        raise refused(f"setting {name} is pinned by the gateway and may not be changed", "statement.pinned_setting")
    if known.kind != "client":
        raise refused(f"setting {name} may not be changed through the gateway", "statement.pinned_setting")
    if default:
        return Utility("set", f"SET {scope}{known.name} TO DEFAULT", "SET")
    value = ", ".join(_literal(v) for v in _values(rest))
    return Utility("set", f"SET {scope}{known.name} = {value}", "SET")
