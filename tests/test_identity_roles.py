"""SPEC 8: the role catalogs answer for the requester alone. ``pg_roles`` and ``pg_user`` hold one
row, the requester as a plain login role; ``pg_auth_members`` is empty. psql's ``\\du`` through the
gateway is compared with a direct ``\\du`` run as a plain login role named like the requester
(``CREATE ROLE dmv_clerk LOGIN`` on the same server): the same row, and no other role."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from frontdoor_pg_support import WireGateway, wire_gw  # noqa: F401 - fixture

psycopg = pytest.importorskip("psycopg")

USER = "dmv_clerk"
PLAIN_PASSWORD = "plain-role-password"


@pytest.fixture(scope="module")
def plain_role(dmv_dsn: str) -> Iterator[str]:
    """A direct DSN for a plain login role named like the requester (dropped afterwards)."""
    with psycopg.connect(dmv_dsn, autocommit=True) as conn:
        created = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (USER,)).fetchone() is None
        if created:
            conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PLAIN_PASSWORD}'")
    u = urlparse(dmv_dsn)
    yield f"postgresql://{USER}:{PLAIN_PASSWORD}@{u.hostname}:{u.port}{u.path}"
    if created:
        with psycopg.connect(dmv_dsn, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {USER}")


def _psql(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    return subprocess.run(["psql", "-X", "-P", "pager=off", *args], env=dict(os.environ, PGCONNECT_TIMEOUT="10", **env),
                          capture_output=True, text=True, timeout=60, check=False)


def _through(gw: WireGateway, command: str, *flags: str) -> str:
    out = _psql([*flags, "-h", gw.host, "-p", str(gw.port), "-U", USER, "-d", "dmv", "-c", command],
                {"PGPASSWORD": f"{USER}-demo-password", "PGSSLMODE": "disable",
                 "PGOPTIONS": "-c gateway.purpose=service_delivery"})
    assert out.returncode == 0 and "gateway:" not in out.stderr, out.stderr
    return out.stdout


def _direct(dsn: str, command: str, *flags: str) -> str:
    u = urlparse(dsn)
    out = _psql([*flags, "-h", u.hostname or "", "-p", str(u.port), "-U", u.username or "", "-d", u.path.lstrip("/"),
                 "-c", command], {"PGPASSWORD": u.password or ""})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("command", [r"\du", r"\dg"])
def test_du_lists_the_requester_as_a_plain_role_and_no_one_else(wire_gw: WireGateway, plain_role: str,  # noqa: F811
                                                                 dmv_dsn: str, command: str) -> None:
    through = _through(wire_gw, command, "-A").splitlines()
    direct = _direct(plain_role, command, "-A").splitlines()
    everyone = {line.split("|")[0] for line in _direct(dmv_dsn, command, "-A").splitlines()[2:] if "|" in line}
    assert len(everyone) >= 2  # the backend's superuser is there too, directly
    rows = [line for line in direct[2:] if "|" in line]
    assert through[:2] == direct[:2]  # title and column names
    assert [line for line in through[2:] if "|" in line] == [row for row in rows if row.startswith(USER + "|")]
    assert sum("|" in line for line in through[2:]) == 1


def test_du_of_the_requester_matches_direct_psql_exactly(wire_gw: WireGateway, plain_role: str) -> None:  # noqa: F811
    assert _through(wire_gw, rf"\du {USER}") == _direct(plain_role, rf"\du {USER}")


def test_du_of_a_backend_role_finds_nothing(wire_gw: WireGateway, dmv_dsn: str) -> None:  # noqa: F811
    backend_role = urlparse(dmv_dsn).username or "postgres"
    assert backend_role != USER
    assert backend_role not in _through(wire_gw, rf"\du {backend_role}")
    assert backend_role in _direct(dmv_dsn, rf"\du {backend_role}")


def test_role_catalogs_through_the_gateway(wire_gw: WireGateway, plain_role: str, dmv_dsn: str) -> None:  # noqa: F811
    backend_role = urlparse(dmv_dsn).username
    with psycopg.connect(wire_gw.dsn(USER, "service_delivery")) as conn, psycopg.connect(plain_role) as direct:
        def both(sql: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[str]]:
            cur = conn.execute(sql)
            got = cur.fetchall()
            names = [d.name for d in cur.description or []]
            want = [r for r in direct.execute(sql).fetchall() if r[0] == USER]
            return got, want, names

        # the requester's own row, column for column (types included) but the oid, which is a stand-in
        got, want, names = both("SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, "
                                "rolreplication, rolconnlimit, rolpassword, rolvaliduntil, rolbypassrls, rolconfig "
                                "FROM pg_catalog.pg_roles")
        assert got == want and len(got) == 1
        got, want, _ = both("SELECT usename, usecreatedb, usesuper, userepl, usebypassrls, passwd, valuntil, useconfig "
                            "FROM pg_user")
        assert got == want and len(got) == 1
        star = conn.execute("SELECT * FROM pg_roles")
        assert [d.name for d in star.description or []] == [d.name for d in direct.execute("SELECT * FROM pg_roles").description or []]
        assert [d.type_code for d in star.description or []] == [d.type_code for d in direct.execute("SELECT * FROM pg_roles").description or []]
        assert conn.execute("SELECT count(*) FROM pg_catalog.pg_auth_members").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (backend_role,)).fetchone() == (0,)
        assert conn.execute("SELECT rolname FROM pg_roles WHERE rolname = current_user").fetchone() == (USER,)
        # a CTE of the same name is the CTE, not the catalog
        assert conn.execute("WITH pg_roles AS (SELECT 7 AS x) SELECT x FROM pg_roles").fetchone() == (7,)


def test_information_schema_role_views_answer_like_pg_roles(wire_gw: WireGateway, plain_role: str, dmv_dsn: str) -> None:  # noqa: F811
    """information_schema.enabled_roles and applicable_roles listed the backend role's memberships
    (pg_monitor, pg_read_all_data... for a superuser): they answer as a plain role named like the
    requester does directly, columns and types included."""
    backend_role = urlparse(dmv_dsn).username
    with psycopg.connect(wire_gw.dsn(USER, "service_delivery")) as conn, psycopg.connect(plain_role) as direct:
        for sql in ("SELECT * FROM information_schema.enabled_roles",
                    "SELECT * FROM information_schema.applicable_roles",
                    "SELECT e.role_name, a.grantee FROM information_schema.enabled_roles e "
                    "LEFT JOIN information_schema.applicable_roles a USING (role_name)"):
            cur, want = conn.execute(sql), direct.execute(sql)
            got = cur.fetchall()
            assert got == want.fetchall(), sql
            assert [(d.name, d.type_code) for d in cur.description or []] == \
                [(d.name, d.type_code) for d in want.description or []], sql
            assert all(backend_role not in row for row in got), sql
        assert conn.execute("SELECT role_name FROM information_schema.enabled_roles").fetchall() == [(USER,)]
