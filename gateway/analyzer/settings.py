"""The one table of PostgreSQL settings the gateway knows, and what a requester may do with each.

Every other list is derived from :data:`SETTINGS`: the backend session's startup options, the
ParameterStatus values a client is told, what ``SET``/``RESET`` may forward, what a startup packet
may ask for and what ``SHOW`` answers (the gateway itself, or the backend).

* ``pinned``: held at ``value`` on the backend (a startup option); a client may ask only for that
  value (a no-op), and the gateway answers ``SHOW`` itself.
* ``forbidden``: never changed (who runs the SQL); ``SHOW`` answered by the gateway.
* ``client``: the client's to choose, at startup or with ``SET``; forwarded; ``value`` is the
  backend default the gateway starts sessions with (``None``: the server's own default).
* ``server``: read-only facts of the server; ``SHOW`` forwarded (``value``: what the gateway
  answers instead, as for ``is_superuser``).

>>> setting("DATESTYLE").name, setting("datestyle").kind
('DateStyle', 'client')
>>> setting("search_path").kind, setting("role").kind, setting("no_such_thing") is None
('pinned', 'forbidden', True)
>>> sorted(backend_startup_options())[:3]
['DateStyle', 'IntervalStyle', 'application_name']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.policy.types import GATEWAY_SETTINGS

Kind = Literal["pinned", "forbidden", "client", "server"]
#: What the gateway answers for settings it answers itself and that depend on the session.
Answer = Literal["value", "requester", "search_path"]


@dataclass(frozen=True)
class Setting:
    name: str  # PostgreSQL's spelling (ParameterStatus uses it: DateStyle, TimeZone)
    kind: Kind
    value: str | None = None
    report: bool = False  # sent as ParameterStatus at startup
    answer: Answer = "value"  # pinned/forbidden/server-with-value: what SHOW answers

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def gateway_answers(self) -> bool:
        """SHOW is answered by the gateway, not forwarded."""
        return self.kind in ("pinned", "forbidden") or (self.kind == "server" and self.value is not None)


def _client(*names: str) -> tuple[Setting, ...]:
    return tuple(Setting(n, "client") for n in names)


SETTINGS: tuple[Setting, ...] = (
    # how SQL text is read, and the backend's read-only default: pinned
    Setting("client_encoding", "pinned", "UTF8", report=True),
    Setting("standard_conforming_strings", "pinned", "on", report=True),
    Setting("backslash_quote", "pinned", "safe_encoding"),
    Setting("escape_string_warning", "pinned", "on"),
    Setting("default_transaction_read_only", "pinned", "on", report=True),
    Setting("search_path", "pinned", "pg_catalog", answer="search_path"),
    # who runs the SQL: never changed
    Setting("role", "forbidden", "none"),
    Setting("session_authorization", "forbidden", None, report=True, answer="requester"),
    Setting("session_replication_role", "forbidden", "origin"),
    # the client's choice, with the backend defaults the gateway starts sessions with
    Setting("DateStyle", "client", "ISO, MDY", report=True),
    Setting("IntervalStyle", "client", "postgres", report=True),
    Setting("TimeZone", "client", None, report=True),
    Setting("application_name", "client", "gateway", report=True),
    *_client(
        "extra_float_digits", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
        "idle_session_timeout", "client_min_messages", "bytea_output", "work_mem", "jit", "lc_messages",
        "lc_monetary", "lc_numeric", "lc_time", "geqo", "enable_seqscan", "enable_indexscan",
        "enable_indexonlyscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin", "enable_nestloop",
        "enable_sort", "enable_hashagg", "enable_material", "random_page_cost", "seq_page_cost",
        "max_parallel_workers_per_gather", "plan_cache_mode", "timezone_abbreviations", "xmloption",
        "default_transaction_isolation", "default_transaction_deferrable", "transaction_isolation",
        "transaction_deferrable", "cursor_tuple_fraction", "row_security",
    ),
    # facts of the server
    Setting("server_version", "server", report=True),
    Setting("server_encoding", "server", report=True),
    Setting("integer_datetimes", "server", report=True),
    Setting("is_superuser", "server", "off", report=True),
    Setting("transaction_read_only", "server"),
    *(Setting(n, "server") for n in (
        "server_version_num", "max_identifier_length", "block_size", "max_connections", "lc_collate",
        "lc_ctype", "in_hot_standby", "max_index_keys", "max_function_args", "data_checksums",
        "segment_size", "wal_block_size", "ssl", "password_encryption", "default_text_search_config", "default_table_access_method",
    )),
)

_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}


def setting(name: str) -> Setting | None:
    """The table entry for ``name`` (any case), or None when the gateway does not know it."""
    return _BY_KEY.get(name.lower())


def is_gateway_setting(name: str) -> bool:
    return name.lower() in GATEWAY_SETTINGS


def backend_startup_options(statement_timeout_ms: int = 0) -> dict[str, str]:
    """Options every backend session starts with: the pinned values and the client defaults."""
    out = {s.name: s.value for s in SETTINGS if s.kind in ("pinned", "client") and s.value is not None}
    if statement_timeout_ms:
        out["statement_timeout"] = str(statement_timeout_ms)
    return out


def same_value(a: str, b: str) -> bool:
    """Values equal as PostgreSQL reads them for the pinned settings (case, quotes, ``-``, spaces)."""
    def norm(v: str) -> str:
        v = v.strip().strip("'\"").lower().replace(" ", "").replace("-", "")
        return {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}.get(v, v)

    return norm(a) == norm(b)


#: Names a client may give for the one encoding the gateway speaks.
UTF8_NAMES = frozenset({"utf8", "utf-8", "unicode", "sql_ascii", "auto"})


def reported(backend_params: Mapping[str, str], requester: str, application_name: str) -> dict[str, str]:
    """The ParameterStatus values a client is told at startup."""
    out: dict[str, str] = {}
    for s in SETTINGS:
        if not s.report:
            continue
        if s.answer == "requester":
            out[s.name] = requester
        elif s.name == "application_name":
            out[s.name] = application_name
        elif s.gateway_answers and s.value is not None:
            out[s.name] = s.value
        elif s.name in backend_params:
            out[s.name] = backend_params[s.name]
    return out
