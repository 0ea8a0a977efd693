"""One pgbench run and the point-lookup script the benchmarks share."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

#: Point lookups by person_id over the reference data ({n}: the number of persons).
SCRIPT = "\\set pid random(1, {n})\nSELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = :pid;\n"


def run_pgbench(host: str, port: int, user: str, password: str, mode: str, clients: int, seconds: int,
                script: Path, options: str = "") -> tuple[float, int]:
    """Run pgbench against ``host:port`` database ``dmv``: (tps, transactions processed)."""
    env = {"PGPASSWORD": password, "PGSSLMODE": "disable", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PGOPTIONS": options}
    done = subprocess.run([shutil.which("pgbench") or "pgbench", "-n", "-h", host, "-p", str(port), "-U", user,
                           "-M", mode, "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(script), "dmv"],
                          env=env, capture_output=True, text=True, check=False)
    tps = re.search(r"tps = ([0-9.]+)", done.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    if done.returncode != 0 or not tps or not count:
        raise RuntimeError(f"pgbench {mode} on port {port} failed: {(done.stderr or done.stdout)[-500:]}")
    return float(tps.group(1)), int(count.group(1))
