"""End to end through a real gateway and a real PostgreSQL with real clients (SPEC sections 3-5)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import textwrap

import pytest

from frontdoor_pg_support import WireGateway, wire_gw  # noqa: F401 - fixture

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")

CLERK_SQL = ("SELECT p.person_id, p.first_name, lp.immigration_status FROM dmv.persons p "
             "JOIN dmv.lawful_presence lp USING (person_id) ORDER BY p.person_id LIMIT 3")
#: the same for individuals it names (requesters outside the agency must name them, SPEC 9)
NAMED_SQL = ("SELECT p.person_id, p.first_name, lp.immigration_status FROM dmv.persons p "
             "JOIN dmv.lawful_presence lp USING (person_id) WHERE p.person_id IN (1, 2, 3) ORDER BY p.person_id")


def connect(gw: WireGateway, user: str, purpose: str | None = None, **claims: str):  # type: ignore[no-untyped-def]
    notices: list[str] = []
    conn = psycopg.connect(host=gw.host, port=gw.port, user=user, password=f"{user}-demo-password", dbname="dmv",
                           options=gw.options(purpose, **claims), sslmode="disable", autocommit=True)
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    conn.notices = notices  # type: ignore[attr-defined]
    return conn


# ---- psql ---------------------------------------------------------------------------------
def test_psql_clerk_sees_redacted_status_with_notice(wire_gw: WireGateway) -> None:
    done = wire_gw.psql("dmv_clerk", CLERK_SQL, purpose="service_delivery")
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()]
    assert len(rows) == 3 and all(r[2] == "" for r in rows) and all(r[1] for r in rows)
    assert "gateway: redacted columns: immigration_status" in done.stderr


def test_psql_cbi_with_case_number_sees_status(wire_gw: WireGateway) -> None:
    done = wire_gw.psql("cbi_analyst", NAMED_SQL, purpose="criminal_law_enforcement", case_number="CR-2026-0042")
    assert done.returncode == 0, done.stderr
    assert all(line.split("|")[2] for line in done.stdout.splitlines())
    assert "redacted" not in done.stderr


def test_psql_ice_denied_pii_and_disallowed_purpose(wire_gw: WireGateway) -> None:
    done = wire_gw.psql("ice_ero", "SELECT first_name FROM dmv.persons LIMIT 1", purpose="civil_immigration_enforcement")
    assert done.returncode != 0 and "gateway:" in done.stderr and "(request " in done.stderr
    done = wire_gw.psql("dmv_clerk", "SELECT 1", purpose="court_order", order_reference="2026CV001234")
    assert done.returncode != 0 and "gateway:" in done.stderr


def test_psql_wrong_password_and_unknown_user(wire_gw: WireGateway) -> None:
    for user, password in (("dmv_clerk", "guess"), ("nobody", "guess")):
        done = wire_gw.psql(user, "SELECT 1", password=password)
        assert done.returncode != 0
        assert f'password authentication failed for user "{user}"' in done.stderr
    text = wire_gw.audit_path.read_text()
    assert '"login_failed"' in text


def test_psql_pinned_and_invalid_settings_refused(wire_gw: WireGateway) -> None:
    done = wire_gw.psql("dmv_clerk", "SELECT 1", extra_env={"PGOPTIONS": "-c standard_conforming_strings=off"})
    assert done.returncode != 0 and "pinned" in done.stderr
    done = wire_gw.psql("dmv_clerk", "SELECT 1", extra_env={"PGOPTIONS": "-c gateway.purpose=spying"})
    assert done.returncode != 0 and "purpose" in done.stderr
    done = wire_gw.psql("dmv_clerk", "SELECT 1", extra_env={"PGOPTIONS": "--gateway.purpose=service_delivery"})
    assert done.returncode == 0, done.stderr


# ---- psycopg 3 ------------------------------------------------------------------------------
def test_psycopg_simple_extended_and_set_purpose(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "ag_counsel") as conn:
        cur = conn.cursor()
        cur.execute("SET gateway.order_reference = '2026CV001234'")
        cur.execute("SET gateway.purpose = 'court_order'")
        cur.execute("SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = %s", (5,))
        assert cur.fetchone()[0] is not None
        cur.execute("SET gateway.purpose = 'service_delivery'")  # not allowed for ag_counsel
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may not use purpose"):
            cur.execute("SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = %s", (5,))
    with connect(wire_gw, "dmv_clerk") as conn:
        cur = conn.cursor()
        cur.execute("SET gateway.purpose = 'service_delivery'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("SELECT person_id FROM dmv.lawful_presence WHERE immigration_status = %s", ("TPS",))
        cur.execute("SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = %s", (5,))
        assert cur.fetchone() == (5, None)
        assert any("redacted columns: immigration_status" in n for n in conn.notices)  # type: ignore[attr-defined]
        cur.execute("SELECT count(*) FROM dmv.persons WHERE person_id < %s", (100,), prepare=True)
        cur.execute("SELECT count(*) FROM dmv.persons WHERE person_id < %s", (100,), prepare=True)
        assert cur.fetchone()[0] == 99


def test_reset_after_refused_purpose(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "ag_counsel") as conn:
        conn.execute("SET gateway.purpose = 'service_delivery'")
        conn.execute("RESET gateway.purpose")
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_show_gateway_setting(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "dmv_clerk", "service_delivery") as conn:
        assert conn.execute("SHOW gateway.purpose").fetchone() == ("service_delivery",)
        with conn.pipeline():
            cur = conn.execute("SHOW gateway.purpose")
        assert cur.fetchone() == ("service_delivery",)


def test_psycopg_denial_keeps_connection_and_transaction_state(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "dmv_clerk", "service_delivery") as conn:
        conn.autocommit = False
        cur = conn.cursor()
        cur.execute("SELECT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            cur.execute("SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = %s", ("DACA",))
        assert str(info.value).startswith("gateway:") and info.value.sqlstate == "42501"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        cur.execute("SELECT count(*) FROM dmv.persons")
        assert cur.fetchone()[0] > 0


def test_psycopg_pipeline_mode_with_denial_in_the_middle(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "dmv_clerk", "service_delivery") as conn:
        results: list[object] = []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.pipeline():
                c1 = conn.execute("SELECT %s::int + 1", (1,))
                c2 = conn.execute("SELECT first_name FROM dmv.persons WHERE person_id = %s", (1,))
                conn.execute("SELECT 1 FROM dmv.lawful_presence WHERE immigration_status = %s", ("TPS",))
                results = [c1.fetchone(), c2.fetchone()]
        with conn.pipeline():
            c = conn.execute("SELECT %s::text", ("after",))
            c3 = conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        assert c.fetchone() == ("after",)
        assert results == [] or results[0] == (2,)
        assert c3.statusmessage == "SET"


# ---- asyncpg --------------------------------------------------------------------------------
def test_asyncpg_prepared_binary_types(wire_gw: WireGateway) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(host=wire_gw.host, port=wire_gw.port, user="dmv_clerk",
                                     password="dmv_clerk-demo-password", database="dmv", ssl=False,
                                     server_settings={"options": "-c gateway.purpose=service_delivery"})
        try:
            stmt = await conn.prepare("SELECT person_id, date_of_birth, first_name FROM dmv.persons WHERE person_id = $1")
            for pid in (1, 2, 3):
                row = await stmt.fetchrow(pid)
                assert row["person_id"] == pid and row["date_of_birth"] is not None
            rows = await conn.fetch("SELECT v.model_year, v.owner_person_id FROM dmv.vehicles v WHERE v.vehicle_id < $1", 20)
            assert rows and isinstance(rows[0]["model_year"], int)
            row = await conn.fetchrow("SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $1", 7)
            assert row["immigration_status"] is None
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.fetch("SELECT person_id FROM dmv.lawful_presence ORDER BY immigration_status")
            assert await conn.fetchval("SELECT 40 + $1::int", 2) == 42
        finally:
            await conn.close()

    asyncio.run(main())


# ---- pgbench --------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("pgbench") is None, reason="pgbench is not installed")
@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_point_lookups(wire_gw: WireGateway, mode: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "lookup.sql"
    script.write_text("\\set pid random(1, 1000)\nSELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = :pid;\n")
    env = {"PGPASSWORD": "dmv_clerk-demo-password", "PGOPTIONS": "-c gateway.purpose=service_delivery",
           "PGSSLMODE": "disable", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["pgbench", "-n", "-h", wire_gw.host, "-p", str(wire_gw.port), "-U", "dmv_clerk",
                           "-M", mode, "-c", "2", "-t", "50", "-f", str(script), "dmv"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "number of transactions actually processed: 100/100" in done.stdout
    assert "number of failed transactions: 0" in done.stdout or "failed" not in done.stdout


# ---- protocol robustness ---------------------------------------------------------------------
def _raw(gw: WireGateway, payload: bytes) -> bytes:
    with socket.create_connection((gw.host, gw.port), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
        return data


def test_malformed_bytes_get_fatal_08p01_and_server_survives(wire_gw: WireGateway) -> None:
    for payload in (b"\x00\x00\x00\x03", b"\x00\x00\x00\x08\x00\x02\x00\x00", b"\xff" * 64,
                    struct.pack("!I", 100000) + b"x" * 10):
        answer = _raw(wire_gw, payload)
        assert answer.startswith(b"E") and b"08P01" in answer and b"FATAL" in answer
    assert wire_gw.psql("dmv_clerk", "SELECT 1").stdout.strip() == "1"


def test_garbage_after_login_closes_only_that_session(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "dmv_clerk") as good:
        sock = socket.create_connection((wire_gw.host, wire_gw.port), timeout=10)
        sock.close()
        assert good.execute("SELECT 2").fetchone() == (2,)


def _declined_then_startup(gw: WireGateway, request_code: int) -> None:
    """A TLS or GSS encryption request is declined with the one byte ``N`` and nothing after it; the
    same connection then goes on in the clear (what a client with sslmode=prefer does): a startup
    message gets the SCRAM challenge."""
    from gateway import wire as w

    with socket.create_connection((gw.host, gw.port), timeout=10) as sock:
        sock.sendall(struct.pack("!II", 8, request_code))
        assert sock.recv(1) == b"N"
        sock.sendall(w.encode(w.StartupMessage((("user", "dmv_clerk"), ("database", "dmv")))))
        parser = w.BackendParser()
        while (msg := parser.next_event()) is None:
            data = sock.recv(65536)
            assert data, "the gateway closed the connection after declining"
            parser.feed(data)
        assert isinstance(msg, w.AuthenticationSASL), msg  # the first thing after N is the login's answer


def test_function_call_and_ssl_refusals(wire_gw: WireGateway) -> None:
    _declined_then_startup(wire_gw, 80877103)  # no certificate configured: TLS declined
    _declined_then_startup(wire_gw, 80877104)  # GSS encryption declined


def test_cancel_running_query(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "dmv_clerk") as conn:
        import threading

        timer = threading.Timer(1.0, conn.cancel)
        timer.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT count(*) FROM dmv.persons a CROSS JOIN dmv.persons b CROSS JOIN dmv.persons c")
        assert conn.execute("SELECT 3").fetchone() == (3,)


# ---- node-postgres ----------------------------------------------------------------------------
NODE_TEST = textwrap.dedent("""
    const { Client } = require('pg');
    (async () => {
      const c = new Client({ host: process.argv[2], port: +process.argv[3], user: 'dmv_clerk',
        password: 'dmv_clerk-demo-password', database: 'dmv', options: '-c gateway.purpose=service_delivery' });
      const notices = [];
      c.on('notice', (n) => notices.push(n.message));
      await c.connect();
      const r = await c.query('SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $1', [3]);
      let denied = '';
      try { await c.query('SELECT 1 FROM dmv.lawful_presence WHERE immigration_status = $1', ['TPS']); }
      catch (e) { denied = e.code; }
      const again = await c.query('SELECT 5 AS five');
      console.log(JSON.stringify({ row: r.rows[0], denied, five: again.rows[0].five, notices }));
      await c.end();
    })().catch((e) => { console.error(e); process.exit(1); });
""")


def _node_pg_dir() -> str | None:
    for base in ("/work/main/tests/clients/node", "/tmp/gw-node"):
        if shutil.which("node") and __import__("os").path.isdir(f"{base}/node_modules/pg"):
            return base
    return None


@pytest.mark.skipif(_node_pg_dir() is None, reason="node-postgres not installed (npm install pg@8 in tests/clients/node)")
def test_node_postgres(wire_gw: WireGateway) -> None:
    base = _node_pg_dir()
    script = f"{base}/gw_test.js"
    with open(script, "w") as fh:
        fh.write(NODE_TEST)
    done = subprocess.run(["node", script, wire_gw.host, str(wire_gw.port)], capture_output=True, text=True,
                          timeout=60, check=False, cwd=base)
    assert done.returncode == 0, done.stderr
    import json

    out = json.loads(done.stdout)
    assert out["row"] == {"person_id": "3", "immigration_status": None}
    assert out["denied"] == "42501" and out["five"] == 5
    assert any("redacted columns" in n for n in out["notices"])


# ---- JDBC -------------------------------------------------------------------------------------
def _jdbc_jar() -> str | None:
    import glob

    jars = sorted(glob.glob("/usr/share/java/postgresql*.jar"))
    return jars[0] if jars and shutil.which("java") else None


@pytest.mark.skipif(_jdbc_jar() is None, reason="JDBC driver not installed (apt-get install libpostgresql-jdbc-java)")
def test_jdbc(wire_gw: WireGateway) -> None:
    from frontdoor_pg_support import ROOT

    source = ROOT / "tests/clients/jdbc/GatewayJdbcTest.java"
    done = subprocess.run(["java", "-cp", str(_jdbc_jar()), str(source), wire_gw.host, str(wire_gw.port)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "status=null denied=42501 five=5" in done.stdout
    assert "redacted columns: immigration_status" in done.stdout


def test_purpose_change_applies_to_an_already_prepared_statement(wire_gw: WireGateway) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(
            host=wire_gw.host, port=wire_gw.port, user="cbi_analyst", password="cbi_analyst-demo-password",
            database="dmv", ssl=False, server_settings={"options": "-c gateway.case_number=CR-2026-0042"})
        notices: list[str] = []
        conn.add_log_listener(lambda _c, m: notices.append(str(m)))
        try:  # set after startup: RESET goes back to the startup value (none), as in PostgreSQL
            await conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
            stmt = await conn.prepare("SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $1")
            assert (await stmt.fetchrow(4))["immigration_status"] is not None
            await conn.execute("RESET gateway.purpose")
            # re-planned for the new claim: outside the agency and without a purpose, no personal data (SPEC 9)
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="no stated purpose"):
                await stmt.fetchrow(4)
            await conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
            assert (await stmt.fetchrow(4))["immigration_status"] is not None
        finally:
            await conn.close()

    asyncio.run(main())
