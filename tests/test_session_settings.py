"""SPEC 8: gateway.* settings scope like PostgreSQL's own (RESET ALL, DISCARD ALL, SET LOCAL, rollback,
ROLLBACK TO SAVEPOINT), every purpose change is logged, and the SET/SHOW forms drivers send work."""

from __future__ import annotations

import json

import pytest

from frontdoor_pg_support import WireGateway, wire_gw  # noqa: F401 - fixture

psycopg = pytest.importorskip("psycopg")

# no personal identifying information in it: outside the agency, without a purpose, a statement that
# names a person is refused (SPEC 9); this one shows the purpose as a status redacted or not
STATUS_SQL = "SELECT immigration_status FROM dmv.lawful_presence LIMIT 1"
CBI = {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"}


def connect(gw: WireGateway, user: str, autocommit: bool = True, **claims: str):  # type: ignore[no-untyped-def]
    return psycopg.connect(host=gw.host, port=gw.port, user=user, password=f"{user}-demo-password", dbname="dmv",
                           options=gw.options(claims.pop("purpose", None), **claims), sslmode="disable",
                           autocommit=autocommit)


def status(conn) -> str | None:  # type: ignore[no-untyped-def]
    return conn.execute(STATUS_SQL).fetchone()[0]


def set_cbi(conn) -> None:  # type: ignore[no-untyped-def]
    conn.execute("SET gateway.case_number = 'CR-2026-0042'")
    conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")


def test_reset_all_and_discard_all_clear_the_purpose(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "cbi_analyst") as conn:
        for clear in ("RESET ALL", "DISCARD ALL"):
            set_cbi(conn)
            assert status(conn) is not None
            conn.execute(clear)
            assert conn.execute("SHOW gateway.purpose").fetchone() == ("",)
            assert conn.execute("SHOW gateway.case_number").fetchone() == ("",)
            assert status(conn) is None  # redacted again: no exception purpose


def test_pooled_connection_handed_on_after_discard_all(wire_gw: WireGateway) -> None:
    """A pool (PgBouncer, SQLAlchemy's reset) sends DISCARD ALL between users: the next one starts clean."""
    with connect(wire_gw, "cbi_analyst") as conn:
        set_cbi(conn)
        conn.execute("BEGIN")
        assert status(conn) is not None
        conn.execute("COMMIT")
        conn.execute("DISCARD ALL")  # the pool's reset query; the next user of this connection:
        assert status(conn) is None
        assert conn.execute("SHOW gateway.purpose").fetchone() == ("",)


def test_startup_purpose_is_the_session_default(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "cbi_analyst", **CBI) as conn:
        conn.execute("SET gateway.purpose = DEFAULT")
        assert conn.execute("SHOW gateway.purpose").fetchone() == ("criminal_law_enforcement",)
        conn.execute("RESET gateway.purpose")
        assert status(conn) is not None  # RESET goes back to the startup value, as in PostgreSQL


def test_rollback_undoes_set(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "cbi_analyst") as conn:
        conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        conn.execute("BEGIN")
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        assert status(conn) is not None
        conn.execute("ROLLBACK")
        assert conn.execute("SHOW gateway.purpose").fetchone() == ("",)
        assert status(conn) is None
        conn.execute("BEGIN")
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        conn.execute("COMMIT")  # committed: it stays
        assert status(conn) is not None


def test_failed_transaction_commit_undoes_set_and_aborted_set_is_refused(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "cbi_analyst") as conn:
        conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        conn.execute("BEGIN")
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SET gateway.purpose = 'required_by_law'")
        conn.execute("COMMIT")  # of a failed transaction: a rollback
        assert conn.execute("SHOW gateway.purpose").fetchone() == ("",)


def test_rollback_to_savepoint_undoes_set_after_it(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "cbi_analyst") as conn:
        conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        conn.execute("BEGIN")
        conn.execute("SAVEPOINT a")
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        assert status(conn) is not None
        conn.execute("ROLLBACK TO SAVEPOINT a")
        assert status(conn) is None
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")
        conn.execute("RELEASE SAVEPOINT a")
        conn.execute("COMMIT")
        assert status(conn) is not None


def test_set_local_lasts_until_the_transaction_ends(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "cbi_analyst") as conn:
        conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        conn.execute("SET LOCAL gateway.purpose = 'criminal_law_enforcement'")  # outside a block: no effect
        assert conn.execute("SHOW gateway.purpose").fetchone() == ("",)
        conn.execute("BEGIN")
        conn.execute("SET LOCAL gateway.purpose = 'criminal_law_enforcement'")
        assert status(conn) is not None
        conn.execute("COMMIT")
        assert status(conn) is None
    with connect(wire_gw, "cbi_analyst", autocommit=False) as conn:  # psycopg's own BEGIN, extended protocol
        conn.execute("SET LOCAL gateway.case_number = 'CR-2026-0042'")
        conn.execute("SET LOCAL gateway.purpose = 'criminal_law_enforcement'")
        assert status(conn) is not None
        conn.commit()
        assert status(conn) is None
        conn.rollback()


def test_every_purpose_change_is_logged(wire_gw: WireGateway) -> None:
    def changes() -> list[dict]:  # type: ignore[type-arg]
        out = []
        for line in wire_gw.audit_path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("type") == "purpose_change" and rec.get("requester") == "cbi_analyst":
                out.append(rec)
        return out

    before = len(changes())
    with connect(wire_gw, "cbi_analyst") as conn:
        conn.execute("SET gateway.case_number = 'CR-2026-0042'")
        conn.execute("BEGIN")
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")  # 1
        conn.execute("ROLLBACK")  # 2: back to none
        conn.execute("SET gateway.purpose = 'criminal_law_enforcement'")  # 3
        conn.execute("RESET ALL")  # 4
        conn.execute("RESET ALL")  # no change: no record
    new = changes()[before:]
    assert [(r.get("previous_purpose"), (r.get("claim") or {}).get("purpose", r.get("purpose"))) for r in new] == [
        (None, "criminal_law_enforcement"), ("criminal_law_enforcement", None),
        (None, "criminal_law_enforcement"), ("criminal_law_enforcement", None)], new


@pytest.mark.parametrize("sql,expected", [
    ("SHOW TRANSACTION ISOLATION LEVEL", "read committed"),
    ("show transaction isolation level", "read committed"),
    ("SHOW transaction_read_only", "on"),
    ("SHOW search_path", "dmv, public"),
    ("SHOW is_superuser", "off"),
    ("SHOW session authorization", "cbi_analyst"),
    ("SHOW standard_conforming_strings", "on"),
    ("SHOW client_encoding", "UTF8"),
])
def test_show_forms(wire_gw: WireGateway, sql: str, expected: str) -> None:
    with connect(wire_gw, "cbi_analyst") as conn:
        assert conn.execute(sql).fetchone() == (expected,)


def test_set_forms_drivers_send(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "dmv_clerk") as conn:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert conn.execute("SHOW default_transaction_isolation").fetchone() == ("repeatable read",)
        conn.execute("BEGIN")
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        assert conn.execute("SHOW TRANSACTION ISOLATION LEVEL").fetchone() == ("serializable",)
        conn.execute("COMMIT")
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
        conn.execute("SET extra_float_digits = 3")
        conn.execute("SET TIME ZONE 'UTC'")
        assert conn.execute("SHOW TIME ZONE").fetchone() == ("UTC",)
        conn.execute("SET DateStyle = ISO, DMY")
        assert conn.execute("SHOW DateStyle").fetchone() == ("ISO, DMY",)
        conn.execute("SET application_name TO 'DBeaver 23.0.0 - Main'")
        conn.execute("SET NAMES 'UTF8'")
        conn.execute("SET SESSION statement_timeout = 0")
        conn.execute("RESET statement_timeout")
        conn.execute("RESET ALL")
        assert conn.execute("SHOW DateStyle").fetchone() == ("ISO, MDY",)
        conn.execute("DEALLOCATE ALL")
        for refused in ("SET search_path = public", "SET ROLE postgres", "SET SESSION AUTHORIZATION postgres",
                        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "SET client_encoding = 'LATIN1'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(refused)


def test_session_identity_is_the_requesters_and_agrees(wire_gw: WireGateway) -> None:
    with connect(wire_gw, "cbi_analyst") as conn:
        row = conn.execute("SELECT current_user, session_user, user, current_role, current_schema(), "
                           "current_schemas(false), pg_catalog.current_schemas(true)").fetchone()
        assert row == ("cbi_analyst", "cbi_analyst", "cbi_analyst", "cbi_analyst", "dmv", ["dmv", "public"],
                       ["pg_catalog", "dmv", "public"])
        assert conn.execute("SHOW search_path").fetchone() == ("dmv, public",)
        assert conn.execute("SHOW session_authorization").fetchone() == ("cbi_analyst",)
        assert conn.execute("SELECT current_user = %s", ("cbi_analyst",)).fetchone() == (True,)
    with connect(wire_gw, "dmv_clerk") as conn:  # another requester, the same statement: its own answer
        assert conn.execute("SELECT current_user").fetchone() == ("dmv_clerk",)
