"""The admin console over the wire, as PgBouncer has: connect to database ``gateway`` as a requester
with the ``auditor`` role (``psql -d gateway -U auditor``) and send

    SHOW POOLS;   SHOW CLIENTS;   SHOW STATS;   RELOAD;   SHOW HELP;

Simple protocol only; every command is a record in the request log (type ``admin``). Nothing here
reads the database: it shows the gateway's own state.
"""

from __future__ import annotations

import re
import time
from typing import Any

from gateway.frontdoor.pg import responses
from gateway.wire import CommandComplete, DataRow, FieldDescription, Query, RowDescription, encode
from gateway.wire.buffer import Reader

ADMIN_DATABASE = "gateway"
ADMIN_ROLES = frozenset({"auditor", "dba"})
COMMANDS = ("SHOW POOLS", "SHOW CLIENTS", "SHOW STATS", "SHOW HELP", "RELOAD")
_WORDS = re.compile(r"\s+")


def may_administer(requester: Any) -> bool:
    return bool(ADMIN_ROLES & set(getattr(requester, "roles", ())))


def _table(columns: tuple[str, ...], rows: list[tuple[object, ...]], tag: str) -> bytes:
    out = [encode(RowDescription(tuple(FieldDescription(c, type_oid=responses.TEXT_OID) for c in columns)))]
    for row in rows:
        out.append(encode(DataRow(tuple(None if v is None else str(v).encode("utf-8") for v in row))))
    out.append(encode(CommandComplete(f"{tag} {len(rows)}" if tag == "SELECT" else tag)))
    return b"".join(out)


async def run_admin(channel: Any, server: Any, ctx: Any) -> None:
    """Answer admin commands until the client says Terminate (or goes)."""
    gw = server.gw
    channel.write(responses.ready("I"))
    while True:
        kind, body = await channel.next_raw()
        if kind == ord("X"):
            return
        if kind != ord("Q"):
            channel.write(responses.error("0A000", "gateway: the admin console speaks the simple query protocol only")
                          + responses.ready("I"))
            continue
        text = Query.decode(Reader(body)).sql
        command = _WORDS.sub(" ", text.strip().rstrip(";").strip()).upper()
        try:
            await gw.log_event(ctx, kind="admin", command=command[:200], client_addr=ctx.client_addr)
        except Exception:  # noqa: BLE001 - no record, no answer
            channel.write(responses.error("58030", "gateway: the request log is unavailable") + responses.ready("I"))
            continue
        channel.write(await _answer(command, server) + responses.ready("I"))


async def _answer(command: str, server: Any) -> bytes:
    gw = server.gw
    if command == "SHOW POOLS":
        pool = server.pool.stats
        workers = gw.analysis_pool.state if gw.analysis_pool is not None else {}
        row = ("wire", pool.get("size"), pool.get("in_use"), pool.get("idle"), pool.get("opening"), server.door.total,
               len(server.sessions), pool.get("waiting"), pool.get("queue_max"), pool.get("waits_total"),
               f"{pool.get('wait_seconds_total', 0):.3f}", pool.get("wait_timeouts_total"), pool.get("queue_full_total"),
               pool.get("prepared_parses_total"), pool.get("prepared_shared_total"),
               workers.get("workers", 0), workers.get("busy", 0), workers.get("waiting", 0))
        return _table(("pool", "size", "in_use", "idle", "opening", "clients", "sessions", "waiting", "queue_max",
                       "waits", "wait_seconds", "wait_timeouts", "queue_full", "prepared_parses", "prepared_shared",
                       "analysis_workers", "analysis_busy", "analysis_waiting"), [row], "SELECT")
    if command == "SHOW CLIENTS":
        now = time.monotonic()
        rows = []
        for _secret, session in list(server.sessions.values()):
            c = session.ctx
            state = "active" if session.relay.busy else ("idle in transaction" if session.relay.status != "I" else "idle")
            idle = f"{now - session.idle_since:.1f}" if session.idle_since else "0"
            rows.append((c.session_id, c.requester.name, c.client_addr, c.tls, c.claim.purpose, state,
                         c.application_name, idle))
        return _table(("session", "requester", "client_addr", "tls", "purpose", "state", "application_name",
                       "idle_seconds"), rows, "SELECT")
    if command == "SHOW STATS":
        gauges = gw.gauges()
        gauges.update(server.gauges())
        return _table(("name", "value"), sorted(gauges.items()), "SELECT")
    if command == "RELOAD":
        reloaded = await gw.reload()
        refused = await server.reload_other_workers() if server.worker is not None else []
        if reloaded and refused:
            return responses.error("F0000", f"gateway: this worker reloaded, but worker(s) {', '.join(refused)} did "
                                   "not (refused, or restarting) - see the gateway log")
        if reloaded:
            return responses.command_complete("RELOAD")
        return responses.error("F0000", "gateway: the reload was refused (the files do not load or break the law); "
                               "the loaded policy stays in force - see the gateway log")
    if command == "SHOW HELP":
        return _table(("command",), [(c,) for c in COMMANDS], "SELECT")
    return responses.error("42601", f"gateway: the admin console understands {', '.join(COMMANDS)}")
