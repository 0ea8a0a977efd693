"""Where the backend is and how to log in: parsed once from a ``postgresql://`` DSN.

>>> t = BackendTarget.from_dsn("postgresql://gw:s%40cret@db.example:5433/dmv?sslmode=require")
>>> (t.host, t.port, t.user, t.password, t.database, t.sslmode)
('db.example', 5433, 'gw', 's@cret', 'dmv', 'require')
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from gateway.errors import ConfigError

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class BackendTarget:
    host: str
    port: int
    user: str
    password: str | None
    database: str
    sslmode: str = "prefer"
    sslrootcert: str | None = None
    connect_timeout: float = 10.0

    @classmethod
    def from_dsn(cls, dsn: str) -> BackendTarget:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError("the backend DSN must start with postgresql://")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        host = query.get("host") or unquote(parts.hostname or "") or "127.0.0.1"
        try:
            port = int(query.get("port") or parts.port or 5432)
        except ValueError:
            raise ConfigError("the backend DSN has an invalid port") from None
        user = unquote(parts.username or "") or query.get("user") or "postgres"
        password = unquote(parts.password) if parts.password is not None else query.get("password")
        database = unquote(parts.path.lstrip("/")) or query.get("dbname") or user
        sslmode = query.get("sslmode", "prefer")
        if sslmode not in SSLMODES:
            raise ConfigError(f"unknown sslmode {sslmode!r} in the backend DSN")
        timeout = float(query.get("connect_timeout", 10) or 10)
        return cls(host, port, user, password, database, sslmode, query.get("sslrootcert"), timeout)

    @property
    def is_unix_socket(self) -> bool:
        return self.host.startswith("/")

    @property
    def socket_path(self) -> str:
        return f"{self.host.rstrip('/')}/.s.PGSQL.{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context sslmode asks for, or ``None`` for ``disable``."""
        if self.sslmode == "disable" or self.is_unix_socket:
            return None
        if self.sslmode in ("verify-ca", "verify-full"):
            ctx = ssl.create_default_context(cafile=self.sslrootcert)
            ctx.check_hostname = self.sslmode == "verify-full"
            return ctx
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def __repr__(self) -> str:  # never print the password
        return f"BackendTarget({self.user}@{self.host}:{self.port}/{self.database}, sslmode={self.sslmode})"
