"""Settings: defaults, then a YAML file (``--config``), then ``GATEWAY_*`` environment variables.

Every field can be set in the file under its own name, or by ``GATEWAY_<FIELD>`` (upper case) in
the environment, which wins. Empty environment values are ignored. Relative paths in the file are
taken from the file's folder; relative paths from the environment or the defaults, from the current
folder. Errors name the file line or the variable and raise :class:`~gateway.errors.ConfigError`.

>>> load_settings(None, env={"GATEWAY_PG_LISTEN": "0.0.0.0:7000"}).pg_listen
'0.0.0.0:7000'
>>> split_listen("127.0.0.1:6432")
('127.0.0.1', 6432)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.errors import ConfigError
from gateway.policy.yaml_lines import read_yaml

ENV_PREFIX = "GATEWAY_"
#: Fields holding file paths: resolved against the config file's folder when set there.
PATH_FIELDS = ("policy", "requesters", "audit_path", "tls_cert", "tls_key", "audit_key")


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) -> ``(host, port)``; raises ValueError."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected host:port, got {value!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host.strip("[]"), port


class Settings(BaseModel):
    """Everything ``gateway serve`` needs. Immutable; build it with :func:`load_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    backend_dsn: str | None = None  # the one PostgreSQL role the gateway uses for everyone
    pg_listen: str = "127.0.0.1:6432"
    http_listen: str = "127.0.0.1:8080"
    policy: str = "policies/colorado-dmv.yaml"
    requesters: str = "policies/requesters.example.yaml"
    audit_path: str = "./gateway-audit/requests.jsonl"
    tls_cert: str | None = None
    tls_key: str | None = None
    require_tls: bool = False
    pool_size: int = Field(10, ge=1, le=1000)
    statement_timeout_ms: int = Field(30_000, ge=0)  # 0: no timeout
    max_rows_http: int = Field(10_000, ge=1)
    audit_fsync_interval_ms: float = Field(2.0, ge=0)  # how long a batch may gather records already arriving
    audit_dsn: str | None = None  # write the request log to this PostgreSQL database instead of the file
    audit_table: str = "gateway_request_log"
    audit_key: str | None = None  # the chain's HMAC key file (default: audit.key beside the log)
    audit_retention_days: float | None = Field(None, gt=0)
    audit_rotate_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    audit_hash_literals: bool = True  # keep literal values and parameters as keyed hashes only
    audit_sync: bool = True  # False: write records without fdatasync. Benchmarks only: NOT durable
    # batches made durable in a preallocated journal of this size beside the log (gateway/audit/journal.py:
    # an overwrite changes no file metadata, so it is faster than a durable append); 0: append O_DSYNC
    audit_journal_mb: int = Field(8, ge=0, le=4096)
    # outcome (and alert) records kept in memory while the log cannot be written, written once it is back;
    # past this many bytes the rest are lost, and a records_lost checkpoint says how many and which requests
    audit_outage_buffer_bytes: int = Field(8 * 1024 * 1024, ge=0)
    http_rate_per_second: float = Field(50.0, gt=0)  # per bearer token
    http_rate_burst: int = Field(200, ge=1)
    instance_name: str = Field("gateway", min_length=1)
    # -- one request must never stop the service (issue 12) --
    analysis_workers: int = Field(2, ge=0, le=64)  # processes for cold analyses; 0: on the event loop (tests)
    analysis_timeout_ms: int = Field(5_000, ge=10)  # a cold analysis past this is killed and refused
    max_statement_chars: int = Field(1_000_000, ge=1_000)  # longer statements are refused unparsed
    max_nesting_depth: int = Field(256, ge=8, le=4_000)  # brackets, CASE and prefix operators
    # how often the catalog's fingerprint, the requesters file and certifications are checked for changes
    refresh_interval_ms: int = Field(5_000, ge=10)
    analysis_cache_mb: int = Field(32, ge=1)  # statement-shape and exact-text caches, by bytes as well as entries (bench/memory.py)
    # -- limits at the wire door (0: no limit / no timeout where it says so) --
    max_message_bytes_before_login: int = Field(16 * 1024, ge=1024)  # startup, SASL messages
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)  # after login
    startup_timeout_ms: int = Field(10_000, ge=100)  # connect -> StartupMessage (TLS included)
    auth_timeout_ms: int = Field(15_000, ge=100)  # StartupMessage -> logged in
    idle_session_timeout_ms: int = Field(3_600_000, ge=0)  # idle outside a transaction; 0: never
    idle_in_transaction_timeout_ms: int = Field(300_000, ge=0)  # idle inside a transaction; 0: never
    max_connections: int = Field(2_000, ge=1)  # wire clients in all (logging in or logged in)
    max_connections_per_address: int = Field(500, ge=1)
    max_connections_per_requester: int = Field(500, ge=1)
    # -- wire backend pool --
    pool_mode: Literal["transaction", "session"] = "transaction"  # transaction: sessions share connections
    wire_pool_size: int | None = Field(None, ge=1, le=10_000)  # backend connections (default max(20, 4 x pool_size))
    wire_pool_wait_ms: int = Field(10_000, ge=0)  # how long a statement waits for a free connection (then 53400)
    wire_pool_queue: int = Field(1_000, ge=0)  # statements waiting for a connection; more are refused at once (53400)
    wire_max_prepared_statements: int = Field(200, ge=1, le=100_000)  # per backend connection (LRU closed first)
    # named prepared statements one client session may hold, and named portals (each): one more is refused (54000)
    wire_max_session_statements: int = Field(1_000, ge=1, le=1_000_000)
    shutdown_timeout_ms: int = Field(30_000, ge=0)  # SIGTERM: how long in-flight requests may finish
    fd_headroom: int = Field(64, ge=8)  # file descriptors kept free for the log, backends, workers
    # -- more than one core (gateway serve --workers N) --
    workers: int = Field(1, ge=1, le=256)  # serving processes; 1: one process, as always (no supervisor)

    @field_validator("pg_listen", "http_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("backend_dsn")
    @classmethod
    def _dsn(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a postgresql://user:password@host:port/database URL")
        return value or None

    @model_validator(mode="after")
    def _tls(self) -> Settings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.require_tls and not self.tls_cert:
            raise ValueError("require_tls needs tls_cert and tls_key")
        return self

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert)

    @property
    def pg_address(self) -> tuple[str, int]:
        return split_listen(self.pg_listen)

    @property
    def http_address(self) -> tuple[str, int]:
        return split_listen(self.http_listen)


FIELDS = tuple(Settings.model_fields)


def load_settings(config_path: str | None, env: Mapping[str, str] = os.environ) -> Settings:
    """Defaults < YAML file at ``config_path`` (or ``$GATEWAY_CONFIG``) < ``GATEWAY_<FIELD>`` variables."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    config_path = config_path or env.get("GATEWAY_CONFIG") or None
    if config_path:
        doc = read_yaml(config_path)
        if not isinstance(doc.data, dict):
            raise ConfigError(f"{doc.where(())}: a settings file is a mapping of setting: value")
        base = Path(config_path).resolve().parent
        for key, value in doc.data.items():
            where = doc.where((key,))
            if key not in FIELDS:
                raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(FIELDS)})")
            if key in PATH_FIELDS and isinstance(value, str) and value and not os.path.isabs(value):
                value = str(base / value)
            values[key], origin[key] = value, where
    for key in FIELDS:
        name = ENV_PREFIX + key.upper()
        raw = env.get(name)
        if raw is not None and raw.strip():
            values[key], origin[key] = raw.strip(), f"environment {name}"
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin, config_path)) from None


def _explain(exc: ValidationError, origin: Mapping[str, str], config_path: str | None) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        key = str(err["loc"][0]) if err["loc"] else ""
        where = origin.get(key) or config_path or "settings"
        message = str(err["msg"]).removeprefix("Value error, ")
        secret = key == "backend_dsn"  # may hold a password: never echo it
        shown = f" (got {err['input']!r})" if key and not secret and not isinstance(err.get("input"), dict) else ""
        lines.append(f"{where}: {key + ': ' if key else ''}{message}{shown}")
    return "\n".join(lines)
