"""The reference schema and its synthetic data: SPEC shape, determinism, twins, correlations."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from gateway.cli import main as cli_main
from gateway.seed import CLASSIFIED_COLUMNS, COLUMNS, SeedError, generate, seed

#: SPEC section 2, as information_schema.columns.data_type names.
SPEC_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "persons": [
        ("person_id", "bigint"), ("first_name", "text"), ("last_name", "text"), ("date_of_birth", "date"),
        ("sex", "text"), ("place_of_birth", "text"), ("country_of_citizenship", "text"), ("ssn", "text"),
        ("itin", "text"), ("email", "text"), ("phone", "text"), ("address_line1", "text"), ("city", "text"),
        ("county", "text"), ("zip", "text"),
    ],
    "licenses": [
        ("license_id", "bigint"), ("person_id", "bigint"), ("license_number", "text"), ("license_class", "text"),
        ("credential_type", "text"), ("federal_limits_apply", "boolean"), ("limited_term", "boolean"),
        ("issue_date", "date"), ("expiry_date", "date"), ("status", "text"),
    ],
    "identity_documents": [
        ("document_id", "bigint"), ("person_id", "bigint"), ("document_type", "text"),
        ("issuing_country", "text"), ("document_number", "text"), ("verified_on", "date"),
    ],
    "lawful_presence": [
        ("person_id", "bigint"), ("immigration_status", "text"), ("verification_method", "text"),
        ("save_case_number", "text"), ("verified_on", "date"),
    ],
    "vehicles": [
        ("vehicle_id", "bigint"), ("owner_person_id", "bigint"), ("vin", "text"), ("plate", "text"),
        ("make", "text"), ("model", "text"), ("model_year", "integer"),
    ],
    "violations": [
        ("violation_id", "bigint"), ("person_id", "bigint"), ("license_id", "bigint"), ("offense_code", "text"),
        ("offense_date", "date"), ("county", "text"), ("fine_cents", "integer"), ("disposition", "text"),
    ],
    "driver_summary": [
        ("person_id", "bigint"), ("full_name", "text"), ("license_number", "text"), ("credential_type", "text"),
        ("license_status", "text"), ("expiry_date", "date"),
    ],
}
PRIMARY_KEYS = {
    "persons": "person_id", "licenses": "license_id", "identity_documents": "document_id",
    "lawful_presence": "person_id", "vehicles": "vehicle_id", "violations": "violation_id",
}
FOREIGN_KEYS = {
    ("licenses", "person_id", "persons", "person_id"),
    ("identity_documents", "person_id", "persons", "person_id"),
    ("lawful_presence", "person_id", "persons", "person_id"),
    ("vehicles", "owner_person_id", "persons", "person_id"),
    ("violations", "person_id", "persons", "person_id"),
    ("violations", "license_id", "licenses", "license_id"),
}
NULLABLE = {("persons", "ssn"), ("persons", "itin"), ("lawful_presence", "save_case_number")}


def _with_conn(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    return _with_conn(dsn, lambda c: c.fetch(sql))  # type: ignore[no-any-return]


def _val(dsn: str, sql: str) -> Any:
    return _with_conn(dsn, lambda c: c.fetchval(sql))


def _digest(dsn: str, table: str, columns: tuple[str, ...] | list[str]) -> tuple[int, str]:
    """(row count, md5 of the chosen columns of every row in primary-key order)."""
    cols = ", ".join(columns)
    sql = (f"SELECT count(*), md5(coalesce(string_agg(ROW({cols})::text, E'\\n' ORDER BY {PRIMARY_KEYS[table]}), ''))"
           f" FROM dmv.{table}")
    row = _fetch(dsn, sql)[0]
    return row[0], row[1]


# -- shape -------------------------------------------------------------------------------------


def test_schema_matches_spec(dmv_dsn: str) -> None:
    rows = _fetch(dmv_dsn, """
        SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
         WHERE table_schema = 'dmv' ORDER BY table_name, ordinal_position""")
    found: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        found.setdefault(r["table_name"], []).append((r["column_name"], r["data_type"]))
    assert found == SPEC_COLUMNS
    for r in rows:
        if r["table_name"] != "driver_summary":
            expected = "YES" if (r["table_name"], r["column_name"]) in NULLABLE else "NO"
            assert r["is_nullable"] == expected, (r["table_name"], r["column_name"])
    kinds = {r["table_name"]: r["table_type"] for r in _fetch(
        dmv_dsn, "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'dmv'")}
    assert kinds == {**{t: "BASE TABLE" for t in PRIMARY_KEYS}, "driver_summary": "VIEW"}


def test_keys_and_unique_license_number(dmv_dsn: str) -> None:
    pks = {(r[0], r[1]) for r in _fetch(dmv_dsn, """
        SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc
          JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
         WHERE tc.table_schema = 'dmv' AND tc.constraint_type = 'PRIMARY KEY'""")}
    assert pks == set(PRIMARY_KEYS.items())
    fks = {tuple(r) for r in _fetch(dmv_dsn, """
        SELECT cl.relname, a.attname, fcl.relname, fa.attname
          FROM pg_constraint c
          JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
          JOIN pg_class fcl ON fcl.oid = c.confrelid
          JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
         WHERE n.nspname = 'dmv' AND c.contype = 'f'""")}
    assert fks == FOREIGN_KEYS
    unique = _fetch(dmv_dsn, """
        SELECT kcu.column_name FROM information_schema.table_constraints tc
          JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
         WHERE tc.table_schema = 'dmv' AND tc.constraint_type = 'UNIQUE' AND tc.table_name = 'licenses'""")
    assert [r[0] for r in unique] == ["license_number"]
    indexed = {r[0] for r in _fetch(dmv_dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'dmv'")}
    assert {"licenses_person_id_idx", "identity_documents_person_id_idx", "vehicles_owner_person_id_idx",
            "violations_person_id_idx", "violations_license_id_idx"} <= indexed


def test_classified_columns_exist_and_match_spec() -> None:
    for table, column in CLASSIFIED_COLUMNS:
        assert column in COLUMNS[table], (table, column)
    for table, columns in COLUMNS.items():
        assert list(columns) == [c for c, _ in SPEC_COLUMNS[table]]
    assert len(CLASSIFIED_COLUMNS) == 13  # SPEC section 2; identity_documents.verified_on is not classified


def test_sizes_and_counts_per_person(dmv_dsn: str) -> None:
    assert _val(dmv_dsn, "SELECT count(*) FROM dmv.persons") == 2000
    checks = {
        "licenses": ("person_id", 0, 2), "identity_documents": ("person_id", 1, 3),
        "vehicles": ("owner_person_id", 0, 2), "violations": ("person_id", 0, 3),
    }
    for table, (fk, low, high) in checks.items():
        lo, hi, avg = _fetch(dmv_dsn, f"""
            SELECT min(n), max(n), avg(n)::float FROM (
              SELECT count(t.{fk}) AS n FROM dmv.persons p LEFT JOIN dmv.{table} t ON t.{fk} = p.person_id
               GROUP BY p.person_id) s""")[0]
        assert (lo, hi) == (low, high), table
        assert low < avg < high, table
    lic_avg = _val(dmv_dsn, "SELECT count(*)::float / 2000 FROM dmv.licenses")
    assert 0.85 < lic_avg < 1.1


def test_every_person_has_exactly_one_lawful_presence_row(dmv_dsn: str) -> None:
    assert _val(dmv_dsn, """
        SELECT count(*) FROM dmv.persons p
         WHERE (SELECT count(*) FROM dmv.lawful_presence lp WHERE lp.person_id = p.person_id) <> 1""") == 0
    assert _val(dmv_dsn, "SELECT count(*) FROM dmv.lawful_presence") == 2000


def test_driver_summary_view(dmv_dsn: str) -> None:
    assert _val(dmv_dsn, "SELECT count(*) FROM dmv.driver_summary") == _val(dmv_dsn, "SELECT count(*) FROM dmv.licenses")
    mismatches = _val(dmv_dsn, """
        SELECT count(*) FROM dmv.driver_summary d
          JOIN dmv.licenses l USING (license_number) JOIN dmv.persons p ON p.person_id = l.person_id
         WHERE d.person_id <> p.person_id OR d.full_name <> p.first_name || ' ' || p.last_name
            OR d.credential_type <> l.credential_type OR d.license_status <> l.status
            OR d.expiry_date <> l.expiry_date""")
    assert mismatches == 0


def test_values_are_plausible(dmv_dsn: str) -> None:
    row = _fetch(dmv_dsn, """
        SELECT count(*) FILTER (WHERE ssn IS NULL)::float / count(*) AS no_ssn,
               count(DISTINCT county) AS counties, bool_and(zip ~ '^8[01][0-9]{3}$') AS zips,
               bool_and(date_of_birth BETWEEN '1930-01-01' AND '2010-01-01') AS dobs,
               bool_and(ssn ~ '^[0-9]{3}-[0-9]{2}-[0-9]{4}$' OR ssn IS NULL) AS ssns
          FROM dmv.persons""")[0]
    assert 0.01 < row["no_ssn"] < 0.15
    assert row["counties"] >= 15 and row["zips"] and row["dobs"] and row["ssns"]
    assert _val(dmv_dsn, "SELECT count(*) FROM dmv.licenses WHERE expiry_date <= issue_date") == 0
    assert _val(dmv_dsn, """SELECT count(*) FROM dmv.violations v JOIN dmv.licenses l USING (license_id)
                             WHERE v.person_id <> l.person_id""") == 0
    statuses = {r[0] for r in _fetch(dmv_dsn, "SELECT DISTINCT immigration_status FROM dmv.lawful_presence")}
    assert statuses == {"US_CITIZEN", "LAWFUL_PERMANENT_RESIDENT", "TEMPORARY_VISA", "DACA", "TPS",
                        "ASYLUM_PENDING", "NO_LAWFUL_PRESENCE"}
    doc_types = {r[0] for r in _fetch(dmv_dsn, "SELECT DISTINCT document_type FROM dmv.identity_documents")}
    assert doc_types == {"US_BIRTH_CERTIFICATE", "US_PASSPORT", "FOREIGN_PASSPORT", "CONSULAR_ID",
                         "PERMANENT_RESIDENT_CARD", "EMPLOYMENT_AUTHORIZATION", "ITIN_LETTER"}


# -- correlations ------------------------------------------------------------------------------


def test_correlations_hold(dmv_dsn: str) -> None:
    lic = _fetch(dmv_dsn, """
        SELECT count(*) FILTER (WHERE credential_type = 'CO_RCSA') AS rcsa,
               count(*) FILTER (WHERE credential_type = 'CO_RCSA' AND lp.immigration_status = 'NO_LAWFUL_PRESENCE') AS rcsa_nlp,
               count(*) FILTER (WHERE lp.immigration_status = 'NO_LAWFUL_PRESENCE') AS nlp,
               count(*) FILTER (WHERE federal_limits_apply <> (credential_type = 'CO_RCSA')) AS fed_mismatch,
               avg((limited_term)::int) FILTER (WHERE lp.immigration_status IN ('US_CITIZEN', 'LAWFUL_PERMANENT_RESIDENT')) AS lt_citizen,
               avg((limited_term)::int) FILTER (WHERE lp.immigration_status NOT IN ('US_CITIZEN', 'LAWFUL_PERMANENT_RESIDENT')) AS lt_other
          FROM dmv.licenses l JOIN dmv.lawful_presence lp USING (person_id)""")[0]
    assert lic["rcsa"] > 0 and lic["rcsa_nlp"] == lic["rcsa"]
    assert lic["rcsa_nlp"] >= 0.8 * lic["nlp"]
    assert lic["fed_mismatch"] == 0
    assert lic["lt_citizen"] < 0.05 < 0.4 < lic["lt_other"]

    people = _fetch(dmv_dsn, """
        SELECT count(*) FILTER (WHERE itin IS NOT NULL) AS itins,
               count(*) FILTER (WHERE itin IS NOT NULL AND lp.immigration_status = 'NO_LAWFUL_PRESENCE') AS itin_nlp,
               count(*) FILTER (WHERE itin IS NOT NULL AND lp.immigration_status = 'US_CITIZEN') AS itin_citizen,
               count(*) FILTER (WHERE (country_of_citizenship = 'United States') <> (lp.immigration_status = 'US_CITIZEN')) AS cit_mismatch,
               count(*) FILTER (WHERE ssn IS NULL AND lp.immigration_status = 'NO_LAWFUL_PRESENCE')::float
                 / nullif(count(*) FILTER (WHERE ssn IS NULL), 0) AS nlp_given_no_ssn,
               count(*) FILTER (WHERE ssn IS NOT NULL AND lp.immigration_status = 'NO_LAWFUL_PRESENCE')::float
                 / count(*) FILTER (WHERE ssn IS NOT NULL) AS nlp_given_ssn,
               count(*) FILTER (WHERE (save_case_number IS NOT NULL) <> (verification_method = 'SAVE')) AS save_mismatch
          FROM dmv.persons p JOIN dmv.lawful_presence lp USING (person_id)""")[0]
    assert people["itin_citizen"] == 0 and people["itin_nlp"] >= 0.6 * people["itins"]
    assert people["cit_mismatch"] == 0 and people["save_mismatch"] == 0
    assert people["nlp_given_no_ssn"] > 5 * people["nlp_given_ssn"]

    docs = _fetch(dmv_dsn, """
        SELECT count(*) FILTER (WHERE document_type IN ('FOREIGN_PASSPORT', 'CONSULAR_ID')
                                  AND lp.immigration_status = 'US_CITIZEN') AS foreign_citizen,
               count(*) FILTER (WHERE document_type IN ('FOREIGN_PASSPORT', 'CONSULAR_ID')
                                  AND d.issuing_country <> p.country_of_citizenship) AS foreign_mismatch,
               count(*) FILTER (WHERE document_type IN ('US_BIRTH_CERTIFICATE', 'US_PASSPORT')
                                  AND lp.immigration_status <> 'US_CITIZEN') AS us_noncitizen,
               count(*) FILTER (WHERE document_type = 'PERMANENT_RESIDENT_CARD' AND document_number !~ '^A[0-9]{9}$') AS bad_anumber
          FROM dmv.identity_documents d JOIN dmv.persons p USING (person_id) JOIN dmv.lawful_presence lp USING (person_id)""")[0]
    assert dict(docs) == {"foreign_citizen": 0, "foreign_mismatch": 0, "us_noncitizen": 0, "bad_anumber": 0}


# -- determinism and twins ---------------------------------------------------------------------


def test_generate_is_deterministic_and_seed_sensitive() -> None:
    assert generate(300, 5) == generate(300, 5)
    assert generate(300, 5)["persons"] != generate(300, 6)["persons"]


def test_same_seeds_give_identical_databases(fresh_db) -> None:  # type: ignore[no-untyped-def]
    dsns = [fresh_db("determinism"), fresh_db("determinism"), fresh_db("other_seed")]
    for dsn, s in zip(dsns, (3, 3, 4), strict=True):
        asyncio.run(seed(dsn, 400, s))
    for table, columns in COLUMNS.items():
        assert _digest(dsns[0], table, columns) == _digest(dsns[1], table, columns), table
    assert _digest(dsns[0], "persons", COLUMNS["persons"]) != _digest(dsns[2], "persons", COLUMNS["persons"])


def test_twins_share_every_non_classified_value(twin_dsns: tuple[str, str]) -> None:
    a, b = twin_dsns
    for table, columns in COLUMNS.items():
        public = [c for c in columns if (table, c) not in CLASSIFIED_COLUMNS]
        assert _digest(a, table, public) == _digest(b, table, public), table
    for view_col in ("person_id", "full_name", "license_number", "license_status", "expiry_date"):
        sql = f"SELECT md5(string_agg({view_col}::text, ',' ORDER BY license_number)) FROM dmv.driver_summary"
        assert _val(a, sql) == _val(b, sql), view_col


def test_twins_differ_in_classified_values(twin_dsns: tuple[str, str]) -> None:
    a, b = twin_dsns
    for table, column in sorted(CLASSIFIED_COLUMNS):
        sql = f"SELECT {column} FROM dmv.{table} ORDER BY {PRIMARY_KEYS[table]}"
        va, vb = [r[0] for r in _fetch(a, sql)], [r[0] for r in _fetch(b, sql)]
        assert len(va) == len(vb)
        share = sum(x != y for x, y in zip(va, vb, strict=True)) / len(va)
        assert share > 0.05, (table, column, share)
        if (table, column) in {("persons", "itin"), ("lawful_presence", "save_case_number")}:
            assert any((x is None) != (y is None) for x, y in zip(va, vb, strict=True)), column
    status_sql = "SELECT immigration_status, count(*) FROM dmv.lawful_presence GROUP BY 1"
    mix_a, mix_b = dict(map(tuple, _fetch(a, status_sql))), dict(map(tuple, _fetch(b, status_sql)))
    assert mix_a["US_CITIZEN"] > mix_b["US_CITIZEN"] + 150  # a different distribution, not a permutation
    countries_sql = "SELECT DISTINCT country_of_citizenship FROM dmv.persons WHERE country_of_citizenship <> 'United States'"
    assert not {r[0] for r in _fetch(a, countries_sql)} & {r[0] for r in _fetch(b, countries_sql)}


# -- replace and the command -------------------------------------------------------------------


def test_existing_schema_is_refused_unless_replace(fresh_db) -> None:  # type: ignore[no-untyped-def]
    dsn = fresh_db("replace")
    asyncio.run(seed(dsn, 50, 1))
    with pytest.raises(SeedError, match="--replace"):
        asyncio.run(seed(dsn, 60, 1))
    assert _val(dsn, "SELECT count(*) FROM dmv.persons") == 50
    stats = asyncio.run(seed(dsn, 60, 1, replace=True))
    assert stats.rows["persons"] == stats.rows["lawful_presence"] == 60
    assert _val(dsn, "SELECT count(*) FROM dmv.persons") == 60


def test_progress_callback_reaches_every_table(fresh_db) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, tuple[int, int]] = {}
    asyncio.run(seed(fresh_db("progress"), 100, 2, progress=lambda t, d, n: seen.__setitem__(t, (d, n))))
    assert set(seen) == set(COLUMNS) and all(d == n for d, n in seen.values())


def test_seed_command(fresh_db, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    dsn = fresh_db("command")
    assert cli_main(["seed", "--dsn", dsn, "--persons", "120", "--seed", "9"]) == 0
    out = capsys.readouterr().out
    assert "120 persons" in out and "lawful_presence" in out
    assert cli_main(["seed", "--dsn", dsn, "--persons", "120", "--seed", "9"]) == 1
    assert "--replace" in capsys.readouterr().err
    assert cli_main(["seed", "--dsn", dsn, "--persons", "130", "--seed", "9", "--classified-seed", "2",
                     "--variant", "alt", "--replace"]) == 0
    assert _val(dsn, "SELECT count(*) FROM dmv.persons") == 130


@pytest.mark.parametrize("dsn, expected", [
    ("postgresql://nobody:nothing@127.0.0.1:1/none", "cannot reach the server"),
    ("mysql://x@y/z", "bad --dsn"),
])
def test_seed_command_bad_dsn_has_no_traceback(dsn: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["seed", "--dsn", dsn, "--persons", "5"]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_seed_command_wrong_password(pg_server, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    dsn = pg_server.dsn().replace(pg_server.password, "wrong")
    assert cli_main(["seed", "--dsn", dsn, "--persons", "5"]) == 1
    assert "cannot log in" in capsys.readouterr().err
