"""A prepared statement's plan is reused from Bind to Bind (``Gateway.rebind``), never past what it
was decided under: through a real gateway and real clients (asyncpg, psycopg), each generation is
changed between two Binds of one prepared statement and the next Bind is decided afresh - denied or
masked as the new state says. (A new UTC day is in test_plan_rebind.py: no clock to move here.)"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compliance_support import last_request, records, write_files
from tests.frontdoor_pg_support import ROOT, WireGateway, start_gateway

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")

POINT = "SELECT first_name FROM dmv.persons WHERE person_id = $1"
REFRESH_MS = 200  # the gateway's catalog, requesters and certification check (5 s by default)
CLERK_GRANTS = "      pii: allow\n      immigration_status: redact\n"  # service_delivery's, the first such block


@pytest.fixture(scope="module")
def setup(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WireGateway, Path, str]]:
    from gateway.seed import seed

    folder = tmp_path_factory.mktemp("rebind")
    name = f"rebind_{secrets.token_hex(3)}"
    dsn = pg_server.create_database(name)  # its own: the catalog test alters a table
    asyncio.run(seed(dsn, 50, 5))
    policy, requesters = write_files(folder)
    gen = start_gateway(dsn, folder, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters),
                        GATEWAY_REFRESH_INTERVAL_MS=str(REFRESH_MS))
    gw = next(gen)
    try:
        yield gw, folder, dsn
    finally:
        gen.close()
        try:
            pg_server.drop_database(name)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def _until(check: Callable[[], Any], what: str, timeout: float = 25.0) -> Any:
    """Poll ``check`` until it returns something true (the gateway's refresh runs every REFRESH_MS)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def _asyncpg(gw: WireGateway, user: str, **settings: str) -> Any:
    return await asyncpg.connect(host=gw.host, port=gw.port, user=user, password=f"{user}-demo-password",
                                 database="dmv", ssl=False, server_settings=settings or None)


def _bind(loop: asyncio.AbstractEventLoop, stmt: Any, *args: Any) -> Any:
    """One Bind/Execute of a prepared statement: its value, or the error."""
    try:
        return ("ok", loop.run_until_complete(stmt.fetchval(*args)))
    except asyncpg.PostgresError as exc:
        return ("error", exc.sqlstate, str(exc))


def _prepare_when_allowed(loop: asyncio.AbstractEventLoop, conn: Any, what: str) -> Any:
    """The prepared statement, once the gateway has picked up the change that allows it."""
    def prepared() -> Any:
        try:
            return loop.run_until_complete(conn.prepare(POINT))
        except asyncpg.PostgresError:
            return None
    return _until(prepared, what)


def test_set_purpose_between_binds(setup: tuple[WireGateway, Path, str]) -> None:
    gw, _, _ = setup

    async def go() -> None:
        conn = await _asyncpg(gw, "dmv_clerk", **{"gateway.purpose": "service_delivery"})
        try:
            stmt = await conn.prepare(POINT)
            assert isinstance(await stmt.fetchval(7), str)
            assert isinstance(await stmt.fetchval(8), str)  # the held plan, reused
            await conn.execute("SET gateway.purpose = 'civil_immigration_enforcement'")  # not one of its purposes
            with pytest.raises(asyncpg.PostgresError) as refused:
                await stmt.fetchval(7)
            assert refused.value.sqlstate == "42501"
            assert last_request(gw, "dmv_clerk")["decision"] == "deny"
            await conn.execute("RESET gateway.purpose")
            await conn.execute("SET gateway.purpose = 'service_delivery'")
            assert isinstance(await stmt.fetchval(7), str)
        finally:
            await conn.close()

    asyncio.run(go())


def _edit_reload(gw: WireGateway, path: Path, edit: Callable[[str], str]) -> str:
    """Edit the policy file and SIGHUP the gateway; the original text (to put back)."""
    before = path.read_text()
    path.write_text(edit(before))
    accepted = len([r for r in records(gw, "reload") if r.get("accepted")])
    gw.process.send_signal(signal.SIGHUP)
    _until(lambda: len([r for r in records(gw, "reload") if r.get("accepted")]) > accepted, "the reload record")
    return before


def test_policy_reload_between_binds(setup: tuple[WireGateway, Path, str]) -> None:
    gw, folder, _ = setup
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(_asyncpg(gw, "dmv_clerk", **{"gateway.purpose": "service_delivery"}))
    policy = folder / "policy.yaml"
    original = None
    try:
        stmt = loop.run_until_complete(conn.prepare(POINT))
        first = _bind(loop, stmt, 7)
        assert first[0] == "ok" and isinstance(first[1], str)
        original = _edit_reload(gw, policy, lambda text: text.replace(CLERK_GRANTS, CLERK_GRANTS.replace(
            "pii: allow", "pii: redact"), 1))
        second = _bind(loop, stmt, 7)  # the same prepared statement: pii may only be returned redacted now,
        assert second[:2] == ("error", "42501") and "person_id" in second[2], second  # so its WHERE is refused
        assert last_request(gw, "dmv_clerk")["decision"] == "deny"
    finally:
        if original is not None:
            _edit_reload(gw, policy, lambda _: original)  # put back, and wait for its reload record
        loop.run_until_complete(conn.close())
        loop.close()


def test_requesters_reload_between_binds(setup: tuple[WireGateway, Path, str]) -> None:
    """The requesters file changes an open session's certification (write_files lapsed cbi_analyst's):
    renewed in the file, the next Bind of the same statement is allowed; lapsed again, refused."""
    from datetime import date, timedelta

    gw, folder, _ = setup
    requesters = folder / "requesters.yaml"
    lapsed = requesters.read_text()
    assert "      signed_on: 2025-10-01\n" in lapsed
    renewed = lapsed.replace("      signed_on: 2025-10-01\n",
                             f"      signed_on: {(date.today() - timedelta(days=5)).isoformat()}\n", 1)
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(_asyncpg(gw, "cbi_analyst", **{"gateway.purpose": "criminal_law_enforcement",
                                                                   "gateway.case_number": "CR-2026-0042"}))
    try:
        with pytest.raises(asyncpg.PostgresError, match="certification"):  # lapsed: refused at Parse
            loop.run_until_complete(conn.prepare(POINT))
        requesters.write_text(renewed)  # picked up by the gateway's file check (every REFRESH_MS)
        stmt = _prepare_when_allowed(loop, conn, "the renewed certification")
        assert _bind(loop, stmt, 7)[0] == "ok"
        assert last_request(gw, "cbi_analyst")["certification"] == {"status": "current", "id": "CBI_ANALYST-CERT-2026"}
        assert _bind(loop, stmt, 8)[0] == "ok"  # reused
        requesters.write_text(lapsed)
        again = _until(lambda: (r := _bind(loop, stmt, 7))[0] == "error" and r, "the lapsed certification")
        assert again[1] == "42501" and "certification" in again[2], again
        assert last_request(gw, "cbi_analyst")["decision"] == "deny"
    finally:
        requesters.write_text(lapsed)
        loop.run_until_complete(conn.close())
        loop.close()


def _certification(folder: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gateway", "certification", "--requesters", str(folder / "requesters.yaml"),
                           "--policy", str(folder / "policy.yaml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_certification_revoked_between_binds(setup: tuple[WireGateway, Path, str]) -> None:
    from datetime import date, timedelta

    gw, folder, _ = setup
    _certification(folder, "add", "cbi_analyst", "--signer", "J. Doe, Director", "--signed-on",
                   (date.today() - timedelta(days=10)).isoformat(), "--form-version", "CO-105 v2",
                   "--no-immigration-use", "--no-redisclosure", "--id", "CBI-REBIND-1")
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(_asyncpg(gw, "cbi_analyst", **{"gateway.purpose": "criminal_law_enforcement",
                                                                   "gateway.case_number": "CR-2026-0042"}))
    try:
        stmt = _prepare_when_allowed(loop, conn, "the certification picked up")
        assert _bind(loop, stmt, 7)[0] == "ok"
        assert last_request(gw, "cbi_analyst")["certification"] == {"status": "current", "id": "CBI-REBIND-1"}
        assert _bind(loop, stmt, 8)[0] == "ok"
        _certification(folder, "revoke", "CBI-REBIND-1", "--reason", "withdrawn")
        refused = _until(lambda: (r := _bind(loop, stmt, 7))[0] == "error" and r, "the revocation picked up")
        assert refused[1] == "42501" and "certification" in refused[2], refused
        assert last_request(gw, "cbi_analyst")["decision"] == "deny"
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def test_catalog_change_between_binds(setup: tuple[WireGateway, Path, str]) -> None:
    gw, _, dsn = setup
    whole = "SELECT * FROM dmv.persons WHERE person_id = %s"
    with psycopg.connect(gw.dsn("dmv_clerk"), autocommit=True, prepare_threshold=0,
                         options="-c gateway.purpose=service_delivery") as conn, \
            psycopg.connect(dsn, autocommit=True) as direct:
        cur = conn.execute(whole, (7,), prepare=True)
        columns = [c.name for c in cur.description]
        assert "rebind_note" not in columns and cur.fetchone() is not None
        direct.execute("ALTER TABLE dmv.persons ADD COLUMN rebind_note text DEFAULT 'not for the clerk'")
        try:
            def changed() -> Any:
                cur = conn.execute(whole, (7,), prepare=True)  # the same prepared statement
                names = [c.name for c in cur.description]
                return "rebind_note" in names and dict(zip(names, cur.fetchone()))
            row = _until(changed, "the catalog refresh")
            # a column the policy does not classify gets the default action: redacted, never its value
            assert row["rebind_note"] is None
            record = last_request(gw, "dmv_clerk")
            assert "rebind_note" in record["redacted"] and record["decision"] == "redact"
        finally:
            direct.execute("ALTER TABLE dmv.persons DROP COLUMN rebind_note")
