"""Shared fixtures (docs/helpers/FIXTURES.md): one real PostgreSQL per test run, seeded once.

| fixture     | scope    | what                                                                 |
|-------------|----------|----------------------------------------------------------------------|
| pg_server   | session  | a running throwaway PostgreSQL (gateway.pgserver.PostgresServer)     |
| admin_dsn   | session  | superuser DSN on database ``postgres``                               |
| dmv_dsn     | session  | database seeded with the reference schema (persons=2000, seed=7)     |
| twin_dsns   | session  | (dsn_a, dsn_b): same non-classified data (persons=1500, seed=11),    |
|             |          | B's classified values drawn afresh (other seed, ``alt`` variant)     |
| fresh_db    | function | factory ``fresh_db(name) -> dsn`` of a new empty database            |
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.pgserver import PostgresServer

DMV_PERSONS, DMV_SEED = 2000, 7
TWIN_PERSONS, TWIN_SEED = 1500, 11
TWIN_B_CLASSIFIED_SEED = 90_210

_names = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Where Python runs with PYTHONDONTWRITEBYTECODE, no compiled module is ever cached, and each of
    the few hundred Python processes the suite starts (``gateway serve``, its analysis workers, CLI
    commands) compiles the gateway's modules from source again: about 0.7 s of CPU each. Compile them
    once, into the usual ``__pycache__`` folders (git-ignored), which Python reads with the flag set;
    a module edited since is compiled again (compileall compares the source's time and size)."""
    if sys.flags.dont_write_bytecode:
        import compileall

        compileall.compile_dir(Path(__file__).resolve().parents[1] / "gateway", quiet=1)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Tests whose work runs in a process of its own start it now, beside the tests before them."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        if item.nodeid.endswith("test_compiled_hotpath.py::test_hot_path_suites_pass_in_pure_python"):
            item.module.start_pure_run()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def admin_dsn(pg_server: PostgresServer) -> str:
    return pg_server.dsn("postgres")


def _seeded(pg_server: PostgresServer, name: str, persons: int, seed: int, **kwargs: object) -> str:
    from gateway.seed import seed as run_seed

    dsn = pg_server.create_database(name)
    asyncio.run(run_seed(dsn, persons, seed, **kwargs))  # type: ignore[arg-type]
    return dsn


@pytest.fixture(scope="session")
def dmv_dsn(pg_server: PostgresServer) -> str:
    return _seeded(pg_server, "dmv_reference", DMV_PERSONS, DMV_SEED)


@pytest.fixture(scope="session")
def twin_dsns(pg_server: PostgresServer) -> tuple[str, str]:
    dsn_a = _seeded(pg_server, "dmv_twin_a", TWIN_PERSONS, TWIN_SEED)
    dsn_b = _seeded(
        pg_server, "dmv_twin_b", TWIN_PERSONS, TWIN_SEED,
        classified_seed=TWIN_B_CLASSIFIED_SEED, variant="alt",
    )
    return dsn_a, dsn_b


@pytest.fixture
def fresh_db(pg_server: PostgresServer) -> Iterator[Callable[[str], str]]:
    """Factory for new empty databases; each is dropped when the test ends.

    The database is named ``name`` cleaned to ``[a-z0-9_]`` plus a run-unique suffix, so two tests
    asking for the same name never collide.
    """
    created: list[str] = []

    def make(name: str = "fresh") -> str:
        base = re.sub(r"[^a-z0-9_]", "_", name.lower())[:40] or "fresh"
        actual = f"{base}_{next(_names)}"
        dsn = pg_server.create_database(actual)
        created.append(actual)
        return dsn

    yield make
    for name in created:
        try:
            pg_server.drop_database(name)
        except Exception:  # noqa: BLE001 - a failed cleanup must not fail the test
            pass


# -- analyzer environment (catalog of the seeded database + the shipped policy) -----------------


class AnalysisEnv:
    """The shipped policy and requesters, and the live catalog of a seeded database."""

    def __init__(self, catalog: object) -> None:
        from gateway.plan.cache import Analyzer
        from gateway.analyzer.classify import Classifier
        from gateway.identity.requesters import load_requesters
        from gateway.policy.load import load_policy

        self.policy = load_policy("policies/colorado-dmv.yaml")
        self.requesters = load_requesters("policies/requesters.example.yaml")
        self.catalog = catalog
        search_path = tuple(self.policy.search_path)
        self.analyzer = Analyzer(catalog, Classifier(catalog, self.policy, search_path), search_path)  # type: ignore[arg-type]

    def profile(self, name: str):  # type: ignore[no-untyped-def]
        from gateway.selftest.corpus import profile_named

        return profile_named(name, self.policy, self.requesters)

    def analyze(self, sql: str, profile: str = "clerk"):  # type: ignore[no-untyped-def]
        return self.analyzer.analyze(sql, self.profile(profile))


def _load_catalog(dsn: str) -> object:
    import asyncpg

    from gateway.catalog.introspect import load_catalog

    async def go() -> object:
        conn = await asyncpg.connect(dsn)
        try:
            return await load_catalog(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(scope="session")
def analysis_env(dmv_dsn: str) -> AnalysisEnv:
    return AnalysisEnv(_load_catalog(dmv_dsn))
