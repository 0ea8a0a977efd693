"""The PostgreSQL sink: the request log as rows of a table in a separate audit database.

Several gateway replicas write to one place, each to its own chain (``instance`` column, ``seq`` per
instance; primary key ``(instance, seq)``), and each holds a session advisory lock on its instance so
two processes configured with the same instance name cannot interleave one chain. A batch goes in
with one ``COPY`` inside a transaction that commits before any ``append`` of the batch returns
(``synchronous_commit`` is forced on for the writer's session). The ``line`` column holds the exact
JSON line the file sink would write; the other columns are copies for search and indexes.

Retention: rows of this instance older than ``retention_days`` are deleted at start and then at
most hourly, and a ``retention`` checkpoint records through which ``seq`` they went.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from gateway.audit.chain import ChainState, checkpoint_record
from gateway.audit.group_commit import GroupCommitSink, SinkError, describe
from gateway.audit.keyfile import load_or_create_key
from gateway.audit.literals import LiteralHasher
from gateway.audit.record import parse_time, utc_now
from gateway.audit.tips import Anchor
from gateway.audit.verify import ChainVerifier, VerifyResult
from gateway.errors import ConfigError

log = structlog.get_logger("gateway.audit")

DEFAULT_TABLE = "gateway_request_log"
COLUMNS = ("instance", "seq", "time", "type", "request_id", "requester", "agency", "purpose", "decision", "line")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def check_table_name(table: str) -> tuple[str | None, str]:
    """``[schema.]name`` in lower-case identifiers only (it is put into SQL text)."""
    if not _IDENT.match(table):
        raise ConfigError(f"invalid audit table name {table!r}: use [schema.]name in lower case")
    schema, _, name = table.rpartition(".")
    return (schema or None), name


def ddl(table: str) -> str:
    check_table_name(table)
    return f"""
    CREATE TABLE IF NOT EXISTS {table} (
        instance text NOT NULL,
        seq bigint NOT NULL,
        time timestamptz NOT NULL,
        type text NOT NULL,
        request_id text,
        requester text,
        agency text,
        purpose text,
        decision text,
        line text NOT NULL,
        PRIMARY KEY (instance, seq)
    );
    CREATE INDEX IF NOT EXISTS {table.replace('.', '_')}_time ON {table} (time);
    CREATE TABLE IF NOT EXISTS {table}_tip (
        instance text PRIMARY KEY,
        seq bigint NOT NULL,
        hash text NOT NULL,
        time timestamptz NOT NULL
    );
    """


class PgAuditLog(GroupCommitSink):
    """The request log in PostgreSQL; same interface as :class:`~gateway.audit.file_sink.AuditLog`."""

    unavailable_errors = (OSError, SinkError, asyncpg.PostgresError, asyncpg.InterfaceError)

    def __init__(
        self,
        dsn: str,
        *,
        instance: str,
        key_path: Path | None = None,
        key: bytes | None = None,
        table: str = DEFAULT_TABLE,
        fsync_interval_ms: float = 2.0,
        hash_literals: bool = True,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60.0,
        retention_days: float | None = None,
        max_batch: int = 1024,
        connect_timeout: float = 5.0,
        outage_buffer_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        super().__init__(
            instance=instance,
            fsync_interval_ms=fsync_interval_ms,
            hash_literals=hash_literals,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            max_batch=max_batch,
            outage_buffer_bytes=outage_buffer_bytes,
        )
        if key is None and key_path is None:
            raise ConfigError("the PostgreSQL request log needs a key: set the audit key path")
        self.dsn = dsn
        self.table = table
        self.schema_name, self.table_name = check_table_name(table)
        self.key_path = key_path
        self._key = key
        self.retention_days = retention_days
        self.connect_timeout = connect_timeout
        self._conn: asyncpg.Connection | None = None
        self._last_retention: float | None = None

    async def start(self) -> None:
        """Load the key, connect, create the table if needed, resume the chain, start the writer.
        An audit database that is down is not fatal: requests are refused until it is back."""
        try:
            key = self._key if self._key is not None else load_or_create_key(self.key_path)  # type: ignore[arg-type]
        except OSError as exc:
            raise ConfigError(f"cannot create the request-log key {self.key_path}: {describe(exc)}") from exc
        self.hasher = LiteralHasher(key, enabled=self.hash_literals)
        self._chain = ChainState(key, self.instance)
        self._pending.append(checkpoint_record("start", time=utc_now(), pid=os.getpid()))
        try:
            await self._ensure_connected()
        except self.unavailable_errors as exc:
            self._note_failure(describe(exc))
        self._start_writer()

    async def close(self) -> None:
        await self._stop_writer()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _ensure_connected(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout)
        try:
            await conn.execute("SET synchronous_commit = on")
            async with conn.transaction():  # concurrent CREATE ... IF NOT EXISTS can still collide
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                   f"gateway-audit-ddl:{self.table}")
                await conn.execute(ddl(self.table))
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", f"gateway-audit:{self.table}:{self.instance}"
            )
            if not locked:
                raise SinkError(f"another gateway process writes instance {self.instance!r} to {self.table}")
            row = await conn.fetchrow(
                f"SELECT seq, line FROM {self.table} WHERE instance = $1 ORDER BY seq DESC LIMIT 1", self.instance
            )
        except BaseException:
            await conn.close()
            raise
        assert self._chain is not None
        if row is not None:
            self._chain.seq, self._chain.prev = int(row["seq"]), str(json.loads(row["line"])["hash"])
        self._conn = conn
        return conn

    # -- reading back (RequestLog) ---------------------------------------------------------------

    def log_key(self) -> bytes:
        from gateway.audit.keyfile import read_key

        if self._key:
            return self._key
        if self.key_path is None:
            raise ConfigError("the PostgreSQL request log has no key file configured")
        return read_key(Path(self.key_path))

    async def read_records(self) -> list[dict[str, Any]]:
        return [r async for r in iter_pg_records(self.dsn, self.table)]

    async def verify(self) -> Any:
        return await verify_pg(self.dsn, self.log_key(), self.table)

    async def _flush(self, records: list[dict[str, Any]]) -> list[Exception | None]:
        assert self._chain is not None
        conn = await self._ensure_connected()
        await self._apply_retention(conn)
        mark = self._chain.mark()
        lines, errors = self._seal_batch(records)
        rows = [_row(line) for line in lines]
        try:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    self.table_name, schema_name=self.schema_name, records=rows, columns=COLUMNS
                )
                if self._tip is not None:  # the tail anchor, in its own table (see gateway.audit.tips)
                    await conn.execute(
                        f"INSERT INTO {self.table}_tip (instance, seq, hash, time) VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (instance) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                        "time = excluded.time",
                        self._tip["instance"], self._tip["seq"], self._tip["hash"], parse_time(self._tip["time"]))
        except BaseException:
            self._chain.rewind(mark)
            self._tip = None
            await self._drop_connection()
            raise
        self._tip = None
        self._flushed(len(records))
        return errors

    async def _apply_retention(self, conn: asyncpg.Connection) -> None:
        if not self.retention_days or (
            self._last_retention is not None and time.monotonic() - self._last_retention < 3600
        ):
            return
        through = await conn.fetchval(
            f"WITH gone AS (DELETE FROM {self.table} WHERE instance = $1 AND time < now() - make_interval(secs => $2) "
            "RETURNING seq) SELECT max(seq) FROM gone",
            self.instance,
            float(self.retention_days) * 86400,
        )
        self._last_retention = time.monotonic()
        if through is not None:
            log.info("audit_retention", instance=self.instance, removed_through_seq=through)
            self._pending.append(checkpoint_record("retention", time=utc_now(), removed_through_seq=int(through)))

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close(timeout=1)
            except Exception:  # noqa: BLE001 - the connection is being dropped because it failed
                conn.terminate()


def _row(data: bytes) -> tuple[Any, ...]:
    line = data.decode("utf-8")
    record = json.loads(line)
    return (
        record["instance"],
        record["seq"],
        parse_time(record["time"]),
        record["type"],
        record.get("request_id"),
        record.get("requester"),
        record.get("agency"),
        record.get("purpose"),
        record.get("decision"),
        line.rstrip("\n"),
    )


async def iter_pg_rows(dsn: str, table: str = DEFAULT_TABLE) -> AsyncIterator[tuple[str, int, str]]:
    """``(instance, seq, line)`` of every row, by instance then seq (streamed with a cursor)."""
    check_table_name(table)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(readonly=True):
            async for row in conn.cursor(f"SELECT instance, seq, line FROM {table} ORDER BY instance, seq"):
                yield row["instance"], row["seq"], row["line"]
    finally:
        await conn.close()


async def iter_pg_records(dsn: str, table: str = DEFAULT_TABLE) -> AsyncIterator[dict[str, Any]]:
    """Every readable record of the audit table, by instance then seq."""
    async for _instance, _seq, line in iter_pg_rows(dsn, table):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


async def read_pg_tips(dsn: str, table: str = DEFAULT_TABLE) -> list[Anchor]:
    """The tail anchors in the sink's own ``<table>_tip`` table (none when it does not exist yet)."""
    check_table_name(table)
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT to_regclass($1)", f"{table}_tip") is None:
            return []
        rows = await conn.fetch(f"SELECT instance, seq, hash, time FROM {table}_tip ORDER BY instance")
    finally:
        await conn.close()
    return [Anchor(r["instance"], int(r["seq"]), r["hash"], f"table {table}_tip", r["time"].isoformat()) for r in rows]


async def verify_pg(dsn: str, log_key: bytes, table: str = DEFAULT_TABLE,
                    anchors: list[Anchor] | None = None) -> VerifyResult:
    """Verify every instance's chain in the audit table (see :class:`ChainVerifier`), and its end
    against the sink's tip table and any ``anchors`` given (a previous report's)."""
    verifier = ChainVerifier(log_key, anchors=[*(await read_pg_tips(dsn, table)), *(anchors or [])])
    verifier.sources = 1
    async for instance, seq, line in iter_pg_rows(dsn, table):
        where = f"table {table}, instance {instance!r} seq {seq}"
        try:
            record = json.loads(line)
        except ValueError:
            verifier.unreadable(where, "the line is not a JSON record (edited)", instance)
            continue
        if not isinstance(record, dict) or record.get("instance") != instance or record.get("seq") != seq:
            verifier.unreadable(where, "the row's instance/seq columns do not match its line (edited)", instance)
            continue
        verifier.feed(record, where)
    return verifier.result()
