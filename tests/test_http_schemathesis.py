"""schemathesis against /openapi.json of a real server (uvicorn, a real Gateway and PostgreSQL):
no input it generates makes the gateway answer 5xx. Needs schemathesis (skips without it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from http_support import ServerThread

pytestmark = pytest.mark.slow


def _schemathesis() -> str | None:
    beside = Path(sys.executable).with_name("schemathesis")
    return str(beside) if beside.exists() else shutil.which("schemathesis")


@pytest.mark.parametrize("requester", ["dmv_clerk", "auditor"])
def test_schemathesis_finds_no_server_error(dmv_dsn: str, tmp_path: Path, requester: str) -> None:
    tool = _schemathesis()
    if tool is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    with ServerThread(dmv_dsn, tmp_path / "log" / "requests.jsonl", rate_per_second=100_000, rate_burst=100_000) as server:
        done = subprocess.run(
            [tool, "run", f"{server.url}/openapi.json", "-H", f"Authorization: Bearer {requester}-demo-token",
             "-c", "not_a_server_error", "-n", "40", "--seed", "7", "--generation-deterministic",
             "--phases", "examples,coverage,fuzzing"],
            capture_output=True, text=True, timeout=900, check=False,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "passed" in output.lower()
