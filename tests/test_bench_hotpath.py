"""bench/hotpath.py runs in every mode and stage, and its sessions are really answered.

The bench drives a real PgSession with fake client and backend sockets; when the session starts to
expect something new of its backend, the fakes break silently (an AttributeError, or every request
refused and measured as an error path). ``--check`` verifies each answer: one row and ReadyForQuery per
request and no ErrorResponse. Both the compiled and the pure-Python hot path, a few requests each.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _catalog(dsn: str) -> object:
    import asyncpg

    from gateway.catalog.introspect import load_catalog

    async def go() -> object:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": "pg_catalog"})
        try:
            return await load_catalog(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def catalog_pickle(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "catalog.pickle"
    path.write_bytes(pickle.dumps(_catalog(dmv_dsn)))
    return path


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
def test_hotpath_bench_runs_every_mode_and_stage(catalog_pickle: Path, pure: bool) -> None:
    env = {**os.environ, "GATEWAY_PURE_PYTHON": "1" if pure else "0"}
    stages = ["framing", "plan", "record", "seal", "relay", "outcome", "session"] if not pure else ["session"]
    done = subprocess.run([sys.executable, str(ROOT / "bench/hotpath.py"), "--requests", "40", "--repeat", "1",
                           "--clients", "4", "--check", "--catalog", str(catalog_pickle), "--stages", *stages],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    for mode in ("simple", "extended", "prepared"):
        assert mode in rows, done.stdout
        cells = [c.strip() for c in rows[mode].strip().strip("|").split("|")[1:]]
        assert len(cells) == len(stages)
        for stage, cell in zip(stages, cells):
            if stage == "plan" and mode == "prepared":
                assert cell == "-"
            else:
                assert float(cell) > 0, (mode, stage, cell)
