"""The commands in docs/dba.md, docs/requester.md and docs/auditor.md, run against a real PostgreSQL
and real gateways, in the order a reader would run them.

Each fenced ``bash`` block is one step, run with ``bash -e -o pipefail`` in a work folder holding a
copy of ``policies/``, with ``gateway`` and ``python3`` from this environment first on PATH.
HTML comments right before a block direct the test (they do not show when the page is rendered):

    <!-- doc-test: expect TEXT -->      the block's output (stdout and stderr) contains TEXT
    <!-- doc-test: fails -->            the block exits non-zero (a denial, a failing check)
    <!-- doc-test: file NAME -->        the block is not run but written to NAME (yaml, python, java)
    <!-- doc-test: background -->       started and left running (a server); the test waits for the
                                        ports it names and stops it at the end
    <!-- doc-test: stop -->             the background servers are stopped before the block runs
    <!-- doc-test: requires PROG|PATH -->  skipped, saying why, when a program or file is missing
    <!-- doc-test: not run here: WHERE -->  not run by this test; NOT_RUN below lists each such
                                        command and must match the docs exactly
    <!-- doc-test: pending REASON -->   run and checked like the others, but a failure is reported
                                        as an expected failure naming REASON (a feature another
                                        change is bringing); the other blocks still must pass

The docs use the gateway's default ports; each is replaced by a free one (``PORTS``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from frontdoor_pg_support import start_gateway
from gateway.pgserver.launcher import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PORTS = (6432, 8080, 6433, 8443)

#: Commands the docs show but this test does not run, and where each is exercised instead.
NOT_RUN: dict[str, str] = {
    "python3 -m venv /opt/gateway && /opt/gateway/bin/pip install .": "README commands / .ci/run",
    "docker/make-secrets.sh\ndocker compose -f docker/compose.yaml up -d --build": "docker/test.sh (podman)",
    "docker/podman-run.sh up": "docker/test.sh",
    'gateway audit verify --dsn "$AUDIT_DSN" --key audit.key': "tests/test_deploy.py, docker/test.sh",
}

_DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->", re.S)
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


@dataclass
class Block:
    doc: str
    line: int
    lang: str
    text: str
    directives: list[str] = field(default_factory=list)

    def has(self, name: str) -> str | None:
        for d in self.directives:
            if d == name or d.startswith(name + " ") or d.startswith(name + ":"):
                return d[len(name):].lstrip(" :")
        return None

    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str) -> list[Block]:
    text = (DOCS / doc).read_text()
    out: list[Block] = []
    last_end = 0
    for match in _FENCE.finditer(text):
        between = text[last_end:match.start()]
        # directives belong to the block when only they (and blank lines) separate it from the text before
        tail = between.rstrip("\n").rsplit("\n\n", 1)[-1]
        directives = _DIRECTIVE.findall(tail) if tail.lstrip().startswith("<!--") else []
        out.append(Block(doc, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2), directives))
        last_end = match.end()
    return out


def test_not_run_list_matches_the_docs() -> None:
    shown = {b.text.strip(): b.has("not run here") for doc in ("dba.md", "requester.md", "auditor.md")
             for b in blocks(doc) if b.has("not run here") is not None}
    assert set(shown) == set(NOT_RUN), "docs and NOT_RUN disagree"
    for command, where in shown.items():
        assert where, f"say where {command!r} is exercised"
    assert "docker/podman-run.sh up" in (ROOT / "docker/test.sh").read_text()


def test_every_block_is_run_or_accounted_for() -> None:
    for doc in ("dba.md", "requester.md", "auditor.md"):
        for b in blocks(doc):
            kinds = [b.lang == "bash", b.has("file") is not None, b.lang == "text"]
            assert any(kinds), f"{b.where()}: a {b.lang or 'plain'} block that is neither run, a file, nor output"


class Runner:
    """Runs a doc's blocks in order in one work folder, with background servers stopped at the end."""

    def __init__(self, work: Path, env: dict[str, str], ports: dict[int, int]) -> None:
        self.work, self.env, self.ports = work, env, ports
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.pending: list[str] = []

    def substitute(self, text: str) -> str:
        for doc_port, port in self.ports.items():
            text = re.sub(rf"(?<![\d.]){doc_port}(?!\d)", str(port), text)
        return text

    def stop(self) -> None:
        for proc, _log in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the shell and the server it started
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.background.clear()

    def _missing(self, requirement: str) -> str | None:
        for item in requirement.split():
            if (item.startswith("/") and not Path(item).exists()) or (not item.startswith("/") and not shutil.which(item)):
                return item
        return None

    def run(self, b: Block) -> None:
        if b.has("not run here") is not None or b.lang == "text":
            return
        target = b.has("file")
        if target is not None:
            path = self.work / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.substitute(b.text))
            return
        assert b.lang == "bash", f"{b.where()}: unexpected {b.lang} block"
        requirement = b.has("requires")
        if requirement and (missing := self._missing(requirement)):
            self.skipped.append(f"{b.where()}: {missing} not installed")
            return
        if b.has("stop") is not None:
            self.stop()
        script = self.substitute(b.text)
        if b.has("background") is not None:
            log = self.work / f"background-{b.line}.log"
            proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=self.work, env=self.env, start_new_session=True,
                                    stdout=log.open("wb"), stderr=subprocess.STDOUT)
            self.background.append((proc, log))
            for port in sorted({int(p) for p in re.findall(r":(\d{4,5})\b", (self.work / _config_of(script)).read_text())}
                               if _config_of(script) else ()):
                _wait_port(port, proc, log)
            self.ran.append(b.where())
            return
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)
        pending = b.has("pending")
        if pending is None:
            self._check(b, script, done)
        else:
            try:
                self._check(b, script, done)
            except AssertionError as exc:
                self.pending.append(f"{b.where()} (pending: {pending}): {str(exc).splitlines()[0]}")
                return
        self.ran.append(b.where())

    def _check(self, b: Block, script: str, done: subprocess.CompletedProcess[str]) -> None:
        output = done.stdout + done.stderr
        context = f"{b.where()} exited {done.returncode}:\n{script}\n--- output ---\n{output[-3000:]}"
        if b.has("fails") is not None:
            assert done.returncode != 0, context
        else:
            assert done.returncode == 0, context
        for d in b.directives:
            if d.startswith("expect "):
                assert self.substitute(d[len("expect "):]) in output, f"expected {d[7:]!r}\n{context}"


def _config_of(script: str) -> str | None:
    found = re.search(r"--config\s+(\S+)", script)
    return found.group(1) if found else None


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"background server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}:\n{log.read_text()[-3000:]}")


def _environment(work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PG"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "policies", work / "policies")
    return work


@contextlib.contextmanager
def _runner(work: Path, env: dict[str, str], ports: dict[int, int]) -> Iterator[Runner]:
    runner = Runner(work, env, ports)
    try:
        yield runner
    finally:
        runner.stop()
        if runner.skipped:
            print("skipped:", *runner.skipped, sep="\n  ")
    if runner.pending:
        pytest.xfail("pending features:\n" + "\n".join(runner.pending))


def test_dba_guide(fresh_db: Callable[[str], str], tmp_path: Path) -> None:
    import asyncio

    from gateway.seed import seed

    admin_dsn = fresh_db("docs_dba")
    asyncio.run(seed(admin_dsn, 300, 1))
    password = "reader-" + os.urandom(6).hex()
    reader_dsn = re.sub(r"//[^@]*@", f"//gateway_reader:{password}@", admin_dsn)
    work = _work(tmp_path)
    env = _environment(work, ADMIN_DSN=admin_dsn, READER_DSN=reader_dsn, READER_PASSWORD=password)
    ports = {p: free_port() for p in PORTS}
    with _runner(work, env, ports) as runner:
        for b in blocks("dba.md"):
            runner.run(b)
    assert len(runner.ran) >= 15, runner.ran


def test_requester_and_auditor_guides(dmv_dsn: str, tmp_path: Path) -> None:
    work = _work(tmp_path)
    audit_dir = work / "gateway-audit"
    audit_dir.mkdir()
    with contextlib.contextmanager(start_gateway)(dmv_dsn, audit_dir) as gw:
        env = _environment(work, GATEWAY_AUDIT_PATH=str(audit_dir / "requests.jsonl"))
        with _runner(work, env, {6432: gw.port, 8080: gw.http_port}) as runner:
            for b in blocks("requester.md"):
                runner.run(b)
            for b in blocks("auditor.md"):
                runner.run(b)
    assert len(runner.ran) >= 12, runner.ran
