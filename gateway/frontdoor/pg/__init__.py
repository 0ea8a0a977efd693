"""The PostgreSQL wire-protocol front door (asyncio; uvloop when available)."""

from gateway.frontdoor.pg.server import PgServer, make_ssl_context

__all__ = ["PgServer", "make_ssl_context"]
