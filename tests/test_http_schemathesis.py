"""schemathesis against /openapi.json of a real server (uvicorn, a real Gateway and PostgreSQL):
no input it generates makes the gateway answer 5xx, as a requester (dmv_clerk) or as the auditor.
Needs schemathesis (skips without it). The two runs go at once against one server: each is mostly
schemathesis generating cases in its own process, so the second core does the other's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from http_support import ServerThread

pytestmark = pytest.mark.slow

REQUESTERS = ("dmv_clerk", "auditor")


def _schemathesis() -> str | None:
    beside = Path(sys.executable).with_name("schemathesis")
    return str(beside) if beside.exists() else shutil.which("schemathesis")


def test_schemathesis_finds_no_server_error(dmv_dsn: str, tmp_path: Path) -> None:
    tool = _schemathesis()
    if tool is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    with ServerThread(dmv_dsn, tmp_path / "log" / "requests.jsonl", rate_per_second=100_000, rate_burst=100_000) as server:
        logs = {requester: (tmp_path / f"schemathesis-{requester}.txt").open("w+") for requester in REQUESTERS}
        runs = {requester: subprocess.Popen(
            [tool, "run", f"{server.url}/openapi.json", "-H", f"Authorization: Bearer {requester}-demo-token",
             "-c", "not_a_server_error", "-n", "40", "--seed", "7", "--generation-deterministic",
             "--phases", "examples,coverage,fuzzing"],
            stdout=logs[requester], stderr=subprocess.STDOUT) for requester in REQUESTERS}  # files: neither blocks on a pipe
        try:
            for run in runs.values():
                run.wait(timeout=900)
        finally:
            for run in runs.values():
                if run.poll() is None:
                    run.kill()
                    run.wait()
    for requester, run in runs.items():
        logs[requester].seek(0)
        output, returncode = logs[requester].read(), run.returncode
        logs[requester].close()
        assert returncode == 0, f"as {requester}:\n{output[-6000:]}"
        assert "passed" in output.lower(), f"as {requester}:\n{output[-6000:]}"
