"""The PostgreSQL sink: two gateway processes write concurrently, each its own chain, and verify."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable

import asyncpg
import pytest

from gateway.audit.pg_sink import PgAuditLog, iter_pg_records, verify_pg
from gateway.errors import AuditUnavailable, ConfigError

KEY = bytes(range(32))

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from gateway.audit.pg_sink import PgAuditLog

    async def main(dsn, instance, n):
        log = PgAuditLog(dsn, instance=instance, key=bytes(range(32)))
        await log.start()
        for start in range(0, n, 25):
            await asyncio.gather(*(log.append({"type": "request", "request_id": f"{instance}-{i}",
                                               "requester": "u", "decision": "allow"})
                                   for i in range(start, min(n, start + 25))))
        await log.close()
        print(log.batches, flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_two_processes_write_concurrently_and_verify(fresh_db: Callable[[str], str]) -> None:
    dsn = fresh_db("audit_two")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, dsn, name, "400"], stdout=subprocess.PIPE, text=True)
        for name in ("gw-a", "gw-b")
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    result = asyncio.run(verify_pg(dsn, KEY))
    assert result.ok, result.findings
    assert result.chains == {"gw-a": (1, 402), "gw-b": (1, 402)}  # start + 400 + close each

    async def ids() -> list[str]:
        return [r["request_id"] for r in [x async for x in iter_pg_records(dsn)] if r["type"] == "request"]

    found = asyncio.run(ids())
    assert len(found) == 800 and len(set(found)) == 800


def test_edited_or_deleted_row_is_found(fresh_db: Callable[[str], str]) -> None:
    dsn = fresh_db("audit_tamper")

    async def go() -> None:
        log = PgAuditLog(dsn, instance="gw1", key=KEY)
        await log.start()
        for i in range(10):
            await log.append({"type": "request", "request_id": f"r{i}", "decision": "deny"})
        await log.close()
        assert (await verify_pg(dsn, KEY)).ok
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "UPDATE gateway_request_log SET line = replace(line, '\"deny\"', '\"allow\"') WHERE seq = 5"
            )
            result = await verify_pg(dsn, KEY)
            assert not result.ok and "seq 5" in str(result.first_break) and "edited" in str(result.first_break)
            await conn.execute("UPDATE gateway_request_log SET line = replace(line, '\"allow\"', '\"deny\"') WHERE seq = 5")
            assert (await verify_pg(dsn, KEY)).ok
            await conn.execute("DELETE FROM gateway_request_log WHERE seq = 7")
            result = await verify_pg(dsn, KEY)
            assert not result.ok and "seq 7..7 missing" in str(result.first_break)
        finally:
            await conn.close()

    asyncio.run(go())


def test_same_instance_twice_is_refused_and_restart_resumes(fresh_db: Callable[[str], str]) -> None:
    dsn = fresh_db("audit_same")

    async def go() -> None:
        first = PgAuditLog(dsn, instance="gw1", key=KEY)
        await first.start()
        await first.append({"type": "request", "request_id": "r1", "decision": "allow"})
        second = PgAuditLog(dsn, instance="gw1", key=KEY)
        await second.start()
        with pytest.raises(AuditUnavailable) as info:
            await second.append({"type": "request", "request_id": "r2", "decision": "allow"})
        assert "another gateway process" in (info.value.detail or "")
        await second.close()
        await first.close()
        again = PgAuditLog(dsn, instance="gw1", key=KEY)
        await again.start()
        await again.append({"type": "request", "request_id": "r3", "decision": "allow"})
        await again.close()
        result = await verify_pg(dsn, KEY)
        assert result.ok, result.findings

    asyncio.run(go())


def test_audit_database_down_refuses() -> None:
    async def go() -> None:
        log = PgAuditLog("postgresql://nobody:x@127.0.0.1:1/none", instance="gw1", key=KEY, connect_timeout=1)
        await log.start()
        with pytest.raises(AuditUnavailable) as info:
            await log.append({"type": "request", "request_id": "r1", "decision": "allow"})
        assert info.value.sqlstate == "58030"
        await log.close()

    asyncio.run(go())
    with pytest.raises(ConfigError):
        PgAuditLog("postgresql://x@127.0.0.1/x", instance="gw1")  # no key configured


def test_retention_deletes_old_rows_and_says_so(fresh_db: Callable[[str], str]) -> None:
    dsn = fresh_db("audit_retention")

    async def run(retention: float | None) -> None:
        log = PgAuditLog(dsn, instance="gw1", key=KEY, retention_days=retention)
        await log.start()
        for i in range(5):
            await log.append({"type": "request", "request_id": f"r{i}", "decision": "allow"})
        await log.close()

    async def go() -> None:
        await run(None)
        await run(1e-9)  # everything written before this start is past retention
        result = await verify_pg(dsn, KEY)
        assert result.ok, result.findings
        assert result.chains["gw1"] == (8, 15)
        assert any("removed by retention" in f.message for f in result.findings)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DELETE FROM gateway_request_log WHERE seq = 8")  # not retention: tampering
        finally:
            await conn.close()
        assert not (await verify_pg(dsn, KEY)).ok

    asyncio.run(go())
