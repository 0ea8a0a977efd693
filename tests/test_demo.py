"""``gateway demo`` end to end: it starts, the printed psql lines work, Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.pgserver.launcher import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is needed to run the printed lines")
def test_demo_prints_working_lines_and_stops_cleanly(tmp_path: Path) -> None:
    pg_port, http_port = free_port(), free_port()
    data_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--persons", "300", "--data-dir", str(data_dir),
         "--pg-listen", f"127.0.0.1:{pg_port}", "--http-listen", f"127.0.0.1:{http_port}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if "Ctrl-C stops" in line:
                break
        text = "\n".join(lines)
        assert "Ctrl-C stops" in text, text
        commands = [ln for ln in lines if ln.startswith("PGPASSWORD=")]
        assert {c.split()[0] for c in commands} >= {f"PGPASSWORD={u}-demo-password" for u in
                                                    ("dmv_clerk", "cbi_analyst", "ag_counsel", "gov_office", "ice_ero")}
        outputs = [subprocess.run(["bash", "-c", c], capture_output=True, text=True, timeout=60, check=False)
                   for c in commands]
        clerk, clerk_where, cbi = outputs[0], outputs[1], outputs[2]
        assert clerk.returncode == 0 and "redacted columns: immigration_status" in clerk.stderr
        assert clerk_where.returncode != 0 and "gateway:" in clerk_where.stderr
        assert cbi.returncode == 0 and ("US_CITIZEN" in cbi.stdout or "LAWFUL" in cbi.stdout or "VISA" in cbi.stdout)
        assert outputs[-2].returncode != 0  # ice_ero denied
        assert outputs[-1].returncode != 0 and "may not use purpose" in outputs[-1].stderr
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "stopped: gateway and PostgreSQL" in rest
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", pg_port), timeout=1).close()
    assert os.path.exists(data_dir / "audit" / "requests.jsonl")
