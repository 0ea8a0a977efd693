"""``gateway check-policy`` and ``gateway self-test`` against a live database, as a DBA runs them."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import asyncio


def _gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=300)


def test_check_policy_is_clean_on_the_reference_schema(dmv_dsn: str) -> None:
    result = _gateway("check-policy", "--dsn", dmv_dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "view dmv.driver_summary" in result.stdout
    assert "credential_type=immigration_status" in result.stdout
    assert "0 problem(s)" in result.stdout


def test_check_policy_reports_uncovered_and_dangling(fresh_db) -> None:  # type: ignore[no-untyped-def]
    dsn = fresh_db("checkpolicy")

    async def setup() -> None:
        conn = await asyncpg.connect(dsn)
        await conn.execute(
            "CREATE SCHEMA dmv; CREATE TABLE dmv.persons (person_id bigint PRIMARY KEY, nickname text);"
            "CREATE VIEW dmv.odd AS SELECT person_id FROM dmv.persons WHERE nickname = 'x'"
        )
        await conn.close()

    asyncio.run(setup())
    result = _gateway("check-policy", "--dsn", dsn)
    assert result.returncode == 1
    assert "column dmv.persons.nickname is not covered" in result.stdout
    assert "policy entry dmv.licenses names no table" in result.stdout
    assert "policy entry dmv.persons.first_name names no column" in result.stdout


def test_check_policy_errors_are_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _gateway("check-policy", "--dsn", "postgresql://nobody:x@127.0.0.1:1/none")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.startswith("gateway check-policy:")


def test_self_test_passes_on_the_reference_schema(dmv_dsn: str) -> None:
    result = _gateway("self-test", "--dsn", dmv_dsn)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 failed" in result.stdout and "over 18 bypass classes" in result.stdout
