"""Create the reference ``dmv`` schema and fill it with deterministic synthetic data (COPY).

>>> import asyncio                                                  # doctest: +SKIP
>>> asyncio.run(seed("postgresql://u:p@127.0.0.1:5432/db", persons=2000, seed=7))
SeedStats(persons=2000, rows={'persons': 2000, ...}, elapsed=0.6)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources

from gateway.seed.base import BaseData, build_base
from gateway.seed.classified import ClassifiedData, build_classified
from gateway.seed.variants import VARIANTS

log = logging.getLogger(__name__)

SCHEMA = "dmv"
AFTER_LOAD_MARKER = "-- @after-load"
COPY_CHUNK = 50_000

#: Columns whose values (and NULL-ness) come from the classified stream, as (table, column).
CLASSIFIED_COLUMNS: frozenset[tuple[str, str]] = frozenset({
    ("lawful_presence", "immigration_status"), ("lawful_presence", "verification_method"),
    ("lawful_presence", "save_case_number"), ("lawful_presence", "verified_on"),
    ("licenses", "credential_type"), ("licenses", "federal_limits_apply"), ("licenses", "limited_term"),
    ("identity_documents", "document_type"), ("identity_documents", "issuing_country"),
    ("identity_documents", "document_number"),
    ("persons", "country_of_citizenship"), ("persons", "place_of_birth"), ("persons", "itin"),
})

#: Table -> columns in table order (the order of the COPY records).
COLUMNS: dict[str, tuple[str, ...]] = {
    "persons": ("person_id", "first_name", "last_name", "date_of_birth", "sex", "place_of_birth",
                "country_of_citizenship", "ssn", "itin", "email", "phone", "address_line1", "city",
                "county", "zip"),
    "lawful_presence": ("person_id", "immigration_status", "verification_method", "save_case_number",
                        "verified_on"),
    "licenses": ("license_id", "person_id", "license_number", "license_class", "credential_type",
                 "federal_limits_apply", "limited_term", "issue_date", "expiry_date", "status"),
    "identity_documents": ("document_id", "person_id", "document_type", "issuing_country",
                           "document_number", "verified_on"),
    "vehicles": ("vehicle_id", "owner_person_id", "vin", "plate", "make", "model", "model_year"),
    "violations": ("violation_id", "person_id", "license_id", "offense_code", "offense_date", "county",
                   "fine_cents", "disposition"),
}

Progress = Callable[[str, int, int], None]


class SeedError(RuntimeError):
    """The database cannot be seeded as asked (schema already there, bad arguments)."""


@dataclass(frozen=True)
class SeedStats:
    persons: int
    rows: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0


def schema_sql() -> tuple[str, str]:
    """The DDL split into (before the load, after the load)."""
    text = resources.files("gateway.seed").joinpath("schema.sql").read_text(encoding="utf-8")
    before, _, after = text.partition(AFTER_LOAD_MARKER)
    return before, after.split("\n", 1)[1] if "\n" in after else after


def build_rows(base: BaseData, cls: ClassifiedData) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """Merge base and classified values into records in table column order."""
    persons = [
        (p[0], p[1], p[2], p[3], p[4], c[0], c[1], p[5], c[2], p[6], p[7], p[8], p[9], p[10], p[11])
        for p, c in zip(base.persons, cls.persons, strict=True)
    ]
    licenses = [
        (b[0], b[1], b[2], b[3], c[0], c[1], c[2], b[4], b[5], b[6])
        for b, c in zip(base.licenses, cls.licenses, strict=True)
    ]
    documents = [(b[0], b[1], *c) for b, c in zip(base.documents, cls.documents, strict=True)]
    return {
        "persons": persons,
        "lawful_presence": cls.lawful_presence,
        "licenses": licenses,
        "identity_documents": documents,
        "vehicles": base.vehicles,
        "violations": base.violations,
    }


def generate(persons: int, seed: int, *, classified_seed: int | None = None,
             variant: str = "default") -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """All rows of the reference data, without touching a database."""
    if persons < 1:
        raise SeedError(f"persons must be at least 1 (got {persons})")
    if variant not in VARIANTS:
        raise SeedError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    base = build_base(persons, seed)
    cls = build_classified(base, seed if classified_seed is None else classified_seed, VARIANTS[variant])
    return build_rows(base, cls)


def _chunks(rows: list[tuple]) -> Iterator[list[tuple]]:  # type: ignore[type-arg]
    for start in range(0, len(rows), COPY_CHUNK):
        yield rows[start:start + COPY_CHUNK]


async def seed(
    dsn: str,
    persons: int,
    seed: int,
    *,
    classified_seed: int | None = None,
    variant: str = "default",
    replace: bool = False,
    progress: Progress | None = None,
) -> SeedStats:
    """Create schema ``dmv`` in the database at ``dsn`` and fill it; returns row counts and time.

    Deterministic from ``seed`` (every non-classified value and row count) and ``classified_seed``
    (default ``seed``) with ``variant`` (the classified values). Refuses an existing ``dmv`` schema
    unless ``replace`` is true. ``progress(table, done, total)`` is called as rows are loaded.
    """
    import asyncpg

    began = time.monotonic()
    tables = generate(persons, seed, classified_seed=classified_seed, variant=variant)
    log.info("generated %d rows for %d persons in %.2fs", sum(map(len, tables.values())), persons,
             time.monotonic() - began)
    before, after = schema_sql()
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            exists = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", SCHEMA)
            if exists and not replace:
                raise SeedError(f"schema {SCHEMA} already exists in this database; use --replace to drop and recreate it")
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await conn.execute(before)
            for table, rows in tables.items():
                done = 0
                for chunk in _chunks(rows):
                    await conn.copy_records_to_table(table, schema_name=SCHEMA, columns=COLUMNS[table], records=chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(table, done, len(rows))
                log.info("loaded %s: %d rows", table, len(rows))
            await conn.execute(after)
        await conn.execute("ANALYZE " + ", ".join(f"{SCHEMA}.{t}" for t in tables))
    finally:
        await conn.close()
    stats = SeedStats(persons, {t: len(r) for t, r in tables.items()}, time.monotonic() - began)
    log.info("seeded schema %s with %d persons in %.2fs", SCHEMA, persons, stats.elapsed)
    return stats
