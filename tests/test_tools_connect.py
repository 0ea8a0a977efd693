"""The queries DBeaver, DataGrip, Metabase and pgcli send when they connect (as logged by
log_statement=all against PostgreSQL), sent the same way through a real gateway: each answers, and
the catalog answers are the database's own."""

from __future__ import annotations

import pytest

from frontdoor_pg_support import WireGateway, wire_gw  # noqa: F401 - fixture

psycopg = pytest.importorskip("psycopg")

USER = "dmv_clerk"

#: Settings and identity: answered for the requester, compared with what the requester is.
SESSION = [
    "SET extra_float_digits = 3",
    "SET application_name = 'PostgreSQL JDBC Driver'",
    "SET application_name = 'DBeaver 25.1.5 - Main <dmv_clerk>'",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
    "SET extra_float_digits = 2",
    "SHOW TRANSACTION ISOLATION LEVEL",
    "SHOW search_path",
    "show time zone",
    'set time zone "UTC"',
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
]

#: Catalog structure: the answer through the gateway must equal the database's.
CATALOG = [
    # DBeaver
    "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d "
    "ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname",
    "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid FROM pg_catalog.pg_type "
    "LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r from pg_namespace as ns join ( select s.r, "
    "(current_schemas(false))[s.r] as nspname from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) "
    "as r using ( nspname ) ) as sp ON sp.nspoid = typnamespace WHERE pg_type.oid = 1034 ORDER BY sp.r, pg_type.oid DESC",
    "SELECT name, setting FROM pg_catalog.pg_settings where name='standard_conforming_strings'",
    "SELECT string_agg(word, ',' ) from pg_catalog.pg_get_keywords() where word <> ALL ('{a,abs,absolute,action}'::text[])",
    "SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1",
    "SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1",
    "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description "
    "FROM pg_catalog.pg_type t LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem LEFT OUTER JOIN "
    "pg_catalog.pg_class c ON c.oid=t.typrelid LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid "
    "WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C') "
    "ORDER BY t.oid",
    "SELECT c.oid,c.relname,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr, "
    "pg_catalog.pg_get_partkeydef(c.oid) as partition_key FROM pg_catalog.pg_class c LEFT OUTER JOIN "
    "pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass "
    "WHERE c.relnamespace='dmv'::regnamespace AND c.relkind not in ('i','I','c') ORDER BY c.oid",
    "SELECT c.oid,c.conname,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when "
    "c.contype='c' then \"substring\"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy FROM "
    "pg_catalog.pg_constraint c INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid LEFT OUTER JOIN "
    "pg_catalog.pg_class rt ON rt.oid=c.confrelid LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid "
    "AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass WHERE c.conrelid='dmv.persons'::regclass ORDER BY c.oid",
    "SELECT c.relname,a.attname,a.attnum,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description "
    "FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid) LEFT OUTER JOIN "
    "pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum) LEFT OUTER JOIN pg_catalog.pg_description dsc "
    "ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND "
    "dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid WHERE NOT a.attisdropped AND "
    "c.relkind not in ('i','I','c') AND c.oid='dmv.licenses'::regclass ORDER BY a.attnum",
    # DataGrip
    "select version()",
    "select current_database() as a, current_schemas(false) as b",
    "SELECT N.oid::bigint as id, datname as name, D.description, datistemplate as is_template, datallowconn as "
    "allow_connections, pg_catalog.pg_get_userbyid(N.datdba) as \"owner\" from pg_catalog.pg_database N left join "
    "pg_catalog.pg_shdescription D on N.oid = D.objoid order by case when datname = pg_catalog.current_database() "
    "then -1::bigint else N.oid::bigint end",
    # Metabase
    "SELECT nspname AS \"TABLE_SCHEM\", current_database() AS \"TABLE_CATALOG\" FROM pg_catalog.pg_namespace "
    "WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_' OR nspname = (pg_catalog.current_schemas(true))[1]) "
    "AND (nspname !~ '^pg_toast_temp_' OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', "
    "'pg_toast_temp_')) ORDER BY \"TABLE_SCHEM\"",
    "select t.schemaname as schema, t.tablename as table, pg_catalog.has_table_privilege(current_user, "
    "'\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.tablename, '\"', '\"\"') || '\"', "
    "'select') as \"select\" from pg_catalog.pg_tables t where t.schemaname = 'dmv' order by 1, 2",
    # psql's tab completion of a bare table name (psql 15, "SELECT * FROM per<TAB>")
    "SELECT pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
    "AND substring(pg_catalog.quote_ident(c.relname),1,3)='per' AND pg_catalog.pg_table_is_visible(c.oid) AND "
    "c.relnamespace <> (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pg_catalog') UNION SELECT "
    "pg_catalog.quote_ident(n.nspname) || '.' FROM pg_catalog.pg_namespace n WHERE "
    "substring(pg_catalog.quote_ident(n.nspname) || '.',1,3)='per' AND (SELECT pg_catalog.count(*) FROM "
    "pg_catalog.pg_namespace WHERE substring(pg_catalog.quote_ident(nspname) || '.',1,3) = "
    "substring('per',1,pg_catalog.length(pg_catalog.quote_ident(nspname))+1)) > 1 ORDER BY 1 LIMIT 1000",
    "SELECT c.relname, pg_catalog.pg_table_is_visible(c.oid), pg_catalog.pg_type_is_visible(c.reltype) FROM "
    "pg_catalog.pg_class c WHERE c.relname IN ('persons', 'pg_class', 'driver_summary') ORDER BY 1",
    # pgcli
    "SELECT nspname FROM pg_catalog.pg_namespace ORDER BY 1",
    "SELECT n.nspname schema_name, c.relname table_name FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE c.relkind = ANY('{r,p,f}') AND n.nspname = 'dmv' ORDER BY 1,2",
    "SELECT nsp.nspname schema_name, cls.relname table_name, att.attname column_name, att.atttypid::regtype::text "
    "type_name, att.atthasdef AS has_default FROM pg_catalog.pg_attribute att INNER JOIN pg_catalog.pg_class cls "
    "ON att.attrelid = cls.oid INNER JOIN pg_catalog.pg_namespace nsp ON cls.relnamespace = nsp.oid WHERE "
    "cls.relkind = ANY('{r,p,f}') AND NOT att.attisdropped AND att.attnum > 0 AND nsp.nspname = 'dmv' ORDER BY 1, 2, att.attnum",
]

#: What describes the data: refused (DBeaver shows sizes and scan counts; they stay out).
REFUSED = [
    "select c.oid,pg_catalog.pg_total_relation_size(c.oid) as total_rel_size,pg_catalog.pg_relation_size(c.oid) as "
    "rel_size FROM pg_class c WHERE c.relnamespace='dmv'::regnamespace",
    "SELECT i.indexrelid, pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size, "
    "pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans FROM pg_catalog.pg_index i",
]


def _gw(gw: WireGateway):  # type: ignore[no-untyped-def]
    return psycopg.connect(host=gw.host, port=gw.port, user=USER, password=f"{USER}-demo-password", dbname="dmv",
                           sslmode="disable", options="-c gateway.purpose=service_delivery", autocommit=True)


def _rows(conn, sql: str) -> list[tuple]:  # type: ignore[no-untyped-def, type-arg]
    cur = conn.execute(sql)
    return [tuple(r) for r in cur.fetchall()] if cur.description else []


def test_session_statements_answer(wire_gw: WireGateway) -> None:
    with _gw(wire_gw) as conn:
        for sql in SESSION:
            _rows(conn, sql)
        assert _rows(conn, "SHOW TRANSACTION ISOLATION LEVEL") == [("read committed",)]
        assert _rows(conn, "SELECT current_schema(),session_user") == [("dmv", USER)]
        assert _rows(conn, "select current_database(), current_schema(), current_user")[0][1:] == ("dmv", USER)
        assert _rows(conn, "SELECT * FROM unnest(current_schemas(true))") == [("pg_catalog",), ("dmv",), ("public",)]


@pytest.mark.parametrize("sql", CATALOG)
def test_catalog_queries_answer_as_the_database(wire_gw: WireGateway, dmv_dsn: str, sql: str) -> None:
    with _gw(wire_gw) as conn, psycopg.connect(dmv_dsn, autocommit=True, options="-c search_path=dmv,public") as direct:
        assert _rows(conn, sql) == _rows(direct, sql)


@pytest.mark.parametrize("sql", REFUSED)
def test_data_describing_queries_stay_refused(wire_gw: WireGateway, sql: str) -> None:
    with _gw(wire_gw) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="gateway: function pg_"):
            conn.execute(sql)
        assert _rows(conn, "SELECT 1") == [(1,)]
