"""One pgbench run and the point-lookup script the benchmarks share; CPU of a process from /proc."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Point lookups by person_id over the reference data ({n}: the number of persons).
SCRIPT = "\\set pid random(1, {n})\nSELECT person_id, first_name, last_name FROM dmv.persons WHERE person_id = :pid;\n"


@dataclass(frozen=True)
class Run:
    tps: float
    transactions: int
    p50_ms: float | None = None
    p99_ms: float | None = None


def run_pgbench(host: str, port: int, user: str, password: str, mode: str, clients: int, seconds: int,
                script: Path, options: str = "", *, latencies: bool = False) -> tuple[float, int]:
    """Run pgbench against ``host:port`` database ``dmv``: (tps, transactions processed)."""
    run = pgbench(host, port, user, password, mode, clients, seconds, script, options, latencies=latencies)
    return run.tps, run.transactions


def pgbench(host: str, port: int, user: str, password: str, mode: str, clients: int, seconds: int,
            script: Path, options: str = "", *, latencies: bool = True) -> Run:
    """Run pgbench; with ``latencies``, p50/p99 from its per-transaction log (``-l``)."""
    env = {"PGPASSWORD": password, "PGSSLMODE": "disable", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PGOPTIONS": options}
    with tempfile.TemporaryDirectory(prefix="pgbench-log-") as tmp:
        os.chmod(tmp, 0o777)
        extra = ["-l", f"--log-prefix={tmp}/tx"] if latencies else []
        done = subprocess.run([shutil.which("pgbench") or "pgbench", "-n", "-h", host, "-p", str(port), "-U", user,
                               "-M", mode, "-c", str(clients), "-j", str(min(2, clients)), "-T", str(seconds),
                               "-f", str(script), *extra, "dmv"],
                              env=env, capture_output=True, text=True, check=False)
        tps = re.search(r"tps = ([0-9.]+)", done.stdout)
        count = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
        if done.returncode == 0 and count and int(count.group(1)) == 0:
            return Run(0.0, 0)  # no transaction within the time (the logins took it all: a loaded machine)
        if done.returncode != 0 or not tps or not count:
            raise RuntimeError(f"pgbench {mode} on port {port} failed: {(done.stderr or done.stdout)[-500:]}")
        p50 = p99 = None
        if latencies:
            micros: list[int] = []
            for log in Path(tmp).glob("tx*"):
                for line in log.read_text().splitlines():
                    fields = line.split()
                    if len(fields) >= 3:
                        micros.append(int(fields[2]))
            if micros:
                micros.sort()
                p50 = micros[len(micros) // 2] / 1000.0
                p99 = micros[min(len(micros) - 1, int(len(micros) * 0.99))] / 1000.0
    return Run(float(tps.group(1)), int(count.group(1)), p50, p99)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> tuple[float, float]:
    """(user, sys) CPU seconds of every thread of ``pid`` (live and reaped) from /proc/PID/stat.

    The process-level stat counts threads that have exited too; children are not included."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def server_cpu(postmaster: int) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, its live children, and the children it has
    reaped (backends of finished connections: ``cutime``/``cstime`` of the postmaster)."""
    try:
        text = Path(f"/proc/{postmaster}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    total = sum(int(f) for f in fields[11:15]) / _TICK
    for pid in child_pids(postmaster)[1:]:
        try:
            total += sum(process_cpu(pid))
        except (OSError, ValueError, IndexError):
            pass
    return total


def tree_cpu(pids: list[int]) -> tuple[float, float]:
    user = system = 0.0
    for pid in pids:
        try:
            u, s = process_cpu(pid)
        except (OSError, ValueError, IndexError):
            continue
        user += u
        system += s
    return user, system


def child_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (workers of a multi-process server)."""
    out = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out.extend(child_pids(int(child)))
    except OSError:
        pass
    return out
