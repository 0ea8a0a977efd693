"""SPEC 8: the ordinary tools work through the gateway for what a requester may see, and answer as
the database does; what describes the data (sizes, statistics, estimates) stays refused.

Each tool runs twice, through a real gateway and straight against the same PostgreSQL (with the
requester's search_path), and the answers are compared."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from urllib.parse import urlparse

import pytest

from frontdoor_pg_support import WireGateway, wire_gw  # noqa: F401 - fixture

psycopg = pytest.importorskip("psycopg")
asyncpg = pytest.importorskip("asyncpg")

USER = "dmv_clerk"


def _psql(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", "-X", "-P", "pager=off", *args], env=dict(os.environ, PGCONNECT_TIMEOUT="10", **env),
                          capture_output=True, text=True, timeout=60, check=False)


def psql_gateway(gw: WireGateway, command: str) -> subprocess.CompletedProcess[str]:
    return _psql(["-h", gw.host, "-p", str(gw.port), "-U", USER, "-d", "dmv", "-c", command],
                 {"PGPASSWORD": f"{USER}-demo-password", "PGSSLMODE": "disable",
                  "PGOPTIONS": "-c gateway.purpose=service_delivery"})


def psql_direct(dsn: str, command: str) -> subprocess.CompletedProcess[str]:
    u = urlparse(dsn)
    return _psql(["-h", u.hostname or "", "-p", str(u.port), "-U", u.username or "", "-d", u.path.lstrip("/"), "-c", command],
                 {"PGPASSWORD": u.password or "", "PGOPTIONS": "-c search_path=dmv,public"})


def _same_display(text: str) -> str:
    """Direct PostgreSQL prints names on the requester's search_path unqualified; the gateway's backend
    session has search_path pg_catalog, so pg_get_constraintdef() and ::regclass print ``dmv.x``."""
    return re.sub(r"\bdmv\.(?=\w)", "", text)


@pytest.mark.parametrize("command", [
    r"\d", r"\dt", r"\dv", r"\di", r"\d persons", r"\d dmv.persons", r"\d dmv.licenses", r"\d+ dmv.driver_summary", r"\dt dmv.*", r"\dv dmv.*", r"\di dmv.*",
    r"\dn", r"\df dmv.*", r"\dT dmv.*", r"\d dmv.persons_pkey", r"\dd dmv.*",  # \du: test_identity_roles.py
])
def test_psql_describe_commands_answer_as_the_database(wire_gw: WireGateway, dmv_dsn: str, command: str) -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    through, direct = psql_gateway(wire_gw, command), psql_direct(dmv_dsn, command)
    assert direct.returncode == 0, direct.stderr
    assert through.returncode == 0, through.stderr
    assert "gateway:" not in through.stderr, through.stderr
    assert _same_display(through.stdout) == _same_display(direct.stdout)


def test_psql_sizes_stay_refused(wire_gw: WireGateway) -> None:
    """\\dt+ asks pg_table_size(): a table's size depends on the widths of classified values."""
    out = psql_gateway(wire_gw, r"\dt+ dmv.*")
    assert out.returncode != 0
    assert "gateway:" in out.stderr and "pg_table_size" in out.stderr, out.stderr


def _gw_conninfo(gw: WireGateway) -> dict[str, object]:
    return {"host": gw.host, "port": gw.port, "user": USER, "password": f"{USER}-demo-password", "dbname": "dmv",
            "sslmode": "disable", "options": "-c gateway.purpose=service_delivery"}


def test_psycopg_typeinfo_fetch(wire_gw: WireGateway, dmv_dsn: str) -> None:
    from psycopg.types import TypeInfo
    from psycopg.types.composite import CompositeInfo

    with psycopg.connect(**_gw_conninfo(wire_gw), autocommit=True) as conn, psycopg.connect(dmv_dsn) as direct:
        for name in ("int4", "text", "numeric", "date"):
            got, want = TypeInfo.fetch(conn, name), TypeInfo.fetch(direct, name)
            assert got is not None and (got.oid, got.array_oid, got.name) == (want.oid, want.array_oid, want.name)
        assert TypeInfo.fetch(conn, "no_such_type") is None
        assert CompositeInfo.fetch(conn, "pg_catalog.pg_type") is not None  # a composite: its fields come back


def test_asyncpg_int_array_and_text_array_parameters(wire_gw: WireGateway) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(host=wire_gw.host, port=wire_gw.port, user=USER, password=f"{USER}-demo-password",
                                     database="dmv", ssl=False,
                                     server_settings={"options": "-c gateway.purpose=service_delivery"})
        try:
            rows = await conn.fetch("SELECT person_id FROM dmv.persons WHERE person_id = any($1::int[]) ORDER BY 1",
                                    [1, 2, 3])
            assert [r[0] for r in rows] == [1, 2, 3]
            rows = await conn.fetch("SELECT count(*) FROM dmv.persons WHERE county = any($1::text[])", ["Denver", "Adams"])
            assert rows[0][0] >= 0
        finally:
            await conn.close()

    asyncio.run(main())


def _sqlalchemy_url(gw: WireGateway) -> str:
    return f"postgresql+psycopg://{USER}:{USER}-demo-password@{gw.host}:{gw.port}/dmv?sslmode=disable"


def test_sqlalchemy_connect_inspect_and_automap(wire_gw: WireGateway, dmv_dsn: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.ext.automap import automap_base

    engine = sqlalchemy.create_engine(_sqlalchemy_url(wire_gw),
                                      connect_args={"options": "-c gateway.purpose=service_delivery"})
    direct = sqlalchemy.create_engine(dmv_dsn.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:  # SQLAlchemy's first queries: show transaction isolation level...
            assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
        got, want = sqlalchemy.inspect(engine), sqlalchemy.inspect(direct)
        assert got.get_schema_names() == want.get_schema_names()
        assert got.get_table_names(schema="dmv") == want.get_table_names(schema="dmv")
        assert got.get_view_names(schema="dmv") == want.get_view_names(schema="dmv")
        for table in want.get_table_names(schema="dmv"):
            assert [(c["name"], str(c["type"]), c["nullable"]) for c in got.get_columns(table, schema="dmv")] == \
                [(c["name"], str(c["type"]), c["nullable"]) for c in want.get_columns(table, schema="dmv")]
            assert got.get_pk_constraint(table, schema="dmv") == want.get_pk_constraint(table, schema="dmv")
            assert got.get_foreign_keys(table, schema="dmv") == want.get_foreign_keys(table, schema="dmv")
            assert got.get_indexes(table, schema="dmv") == want.get_indexes(table, schema="dmv")
            assert got.get_unique_constraints(table, schema="dmv") == want.get_unique_constraints(table, schema="dmv")
        base = automap_base()
        base.prepare(autoload_with=engine, schema="dmv")
        assert {"persons", "licenses", "vehicles", "violations", "lawful_presence"} <= set(base.classes.keys())
    finally:
        engine.dispose()
        direct.dispose()


def test_pandas_read_sql_table(wire_gw: WireGateway, dmv_dsn: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pandas = pytest.importorskip("pandas")
    engine = sqlalchemy.create_engine(_sqlalchemy_url(wire_gw),
                                      connect_args={"options": "-c gateway.purpose=service_delivery"})
    direct = sqlalchemy.create_engine(dmv_dsn.replace("postgresql://", "postgresql+psycopg://"))
    try:
        got = pandas.read_sql_table("vehicles", engine, schema="dmv").sort_values("vehicle_id").reset_index(drop=True)
        want = pandas.read_sql_table("vehicles", direct, schema="dmv").sort_values("vehicle_id").reset_index(drop=True)
        assert got.equals(want)
        status = pandas.read_sql_table("lawful_presence", engine, schema="dmv")
        assert status["immigration_status"].isna().all()  # redacted for the clerk, as NULLs
    finally:
        engine.dispose()
        direct.dispose()


def _jdbc_jar() -> str | None:
    import glob

    found = sorted(glob.glob("/usr/share/java/postgresql*.jar"))
    return found[-1] if found else None


def test_jdbc_database_metadata_answers_as_the_database(wire_gw: WireGateway, dmv_dsn: str) -> None:
    from frontdoor_pg_support import ROOT

    jar = _jdbc_jar()
    if jar is None or shutil.which("java") is None:
        pytest.skip("JDBC driver not installed (apt-get install libpostgresql-jdbc-java)")
    source = str(ROOT / "tests/clients/jdbc/JdbcMetadata.java")
    u = urlparse(dmv_dsn)

    def run(url: str, user: str, password: str, options: str) -> str:
        done = subprocess.run(["java", "-cp", jar, source, url, user, password, options],
                              capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    through = run(f"jdbc:postgresql://{wire_gw.host}:{wire_gw.port}/dmv?sslmode=disable", USER,
                  f"{USER}-demo-password", "-c gateway.purpose=service_delivery")
    direct = run(f"jdbc:postgresql://{u.hostname}:{u.port}/{u.path.lstrip('/')}", u.username or "",
                 u.password or "", "-c search_path=dmv,public")
    assert "schema|dmv|" in through and "isolation|8" in through
    assert through.replace("catalog|dmv", "catalog|X") == direct.replace(f"catalog|{u.path.lstrip('/')}", "catalog|X")
