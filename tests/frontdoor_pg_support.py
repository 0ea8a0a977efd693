"""Shared pieces of the pg front door tests: a real gateway in front of the seeded database."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gateway.pgserver.launcher import free_port

if TYPE_CHECKING:
    from gateway import wire as w

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WireGateway:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    audit_path: Path
    http_port: int = 0

    def dsn(self, user: str, purpose: str | None = None, **extra: str) -> str:
        return f"postgresql://{user}:{user}-demo-password@{self.host}:{self.port}/dmv"

    def options(self, purpose: str | None = None, **extra: str) -> str:
        pairs = ([("purpose", purpose)] if purpose else []) + list(extra.items())
        return " ".join(f"-c gateway.{k}={v}" for k, v in pairs)

    def psql(self, user: str, sql: str, *, purpose: str | None = None, password: str | None = None,
             extra_env: dict[str, str] | None = None, **claims: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PGPASSWORD=password or f"{user}-demo-password", PGOPTIONS=self.options(purpose, **claims),
                   PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
        env.update(extra_env or {})
        return subprocess.run(
            ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port), "-U", user, "-d", "dmv",
             "-At", "-F", "|", "-c", sql],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )


def gateway_env(dsn: str, audit_dir: Path, pg_port: int, http_port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GATEWAY_BACKEND_DSN": dsn, "GATEWAY_PG_LISTEN": f"127.0.0.1:{pg_port}",
        "GATEWAY_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "GATEWAY_POLICY": str(ROOT / "policies/colorado-dmv.yaml"),
        "GATEWAY_REQUESTERS": str(ROOT / "policies/requesters.example.yaml"),
        "GATEWAY_AUDIT_PATH": str(audit_dir / "requests.jsonl"),
    })
    env.update(extra)
    return env


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("the gateway did not start listening")


def start_gateway(dsn: str, audit_dir: Path, *, log_path: Path | None = None, **extra_env: str) -> Iterator[WireGateway]:
    """``gateway serve`` in a subprocess (a separate process: libpq's blocking cancel holds the GIL),
    both front doors up; stopped with SIGTERM (a clean close) unless it is already dead."""
    pg_port, http_port = free_port(), free_port()
    log_file = open(log_path or audit_dir / "gateway.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=ROOT, stdout=log_file,
                            stderr=subprocess.STDOUT, env=gateway_env(dsn, audit_dir, pg_port, http_port, **extra_env))
    try:
        wait_port(pg_port, proc)
        wait_port(http_port, proc)
        yield WireGateway("127.0.0.1", pg_port, proc, audit_dir / "requests.jsonl", http_port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log_file.close()


def pooled_gateway(dsn: str, tmp_path_factory: pytest.TempPathFactory, name: str, pool_size: int) -> Iterator[WireGateway]:
    """A gateway in transaction pooling mode on ``pool_size`` backend connections (5 s wait)."""
    yield from start_gateway(dsn, Path(tmp_path_factory.mktemp(name)), GATEWAY_WIRE_POOL_SIZE=str(pool_size),
                             GATEWAY_POOL_MODE="transaction", GATEWAY_WIRE_POOL_WAIT_MS="5000")


def gauge(gw: WireGateway, name: str) -> float:
    """One gauge from the gateway's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{gw.http_port}/metrics", timeout=10).read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


@pytest.fixture(scope="module")
def wire_gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, tmp_path_factory.mktemp("wire-audit"))


def raw_login(gw: WireGateway, user: str = "dmv_clerk", options: str = "") -> socket.socket:
    """A logged-in socket speaking the protocol with the project's own codec (for malformed-input tests)."""
    from scramp import ScramClient

    from gateway import wire as w

    sock = socket.create_connection((gw.host, gw.port), timeout=10)
    params = (("user", user), ("database", "dmv")) + ((("options", options),) if options else ())
    sock.sendall(w.encode(w.StartupMessage(params)))
    parser = w.BackendParser()
    client = ScramClient(["SCRAM-SHA-256"], user, f"{user}-demo-password")
    while True:
        msg = parser.next_event()
        if msg is None:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during login")
            parser.feed(data)
            continue
        if isinstance(msg, w.AuthenticationSASL):
            sock.sendall(w.encode(w.SASLInitialResponse("SCRAM-SHA-256", client.get_client_first().encode())))
        elif isinstance(msg, w.AuthenticationSASLContinue):
            client.set_server_first(msg.data.decode())
            sock.sendall(w.encode(w.SASLResponse(client.get_client_final().encode())))
        elif isinstance(msg, w.AuthenticationSASLFinal):
            client.set_server_final(msg.data.decode())
        elif isinstance(msg, w.ErrorResponse):
            raise ConnectionError(msg.message)
        elif isinstance(msg, w.ReadyForQuery):
            return sock


def next_message(sock: socket.socket, parser: w.BackendParser) -> object:
    """The next backend message on ``sock``, reading more as needed; fails if the gateway closes first."""
    while True:
        msg = parser.next_event()
        if msg is not None:
            return msg
        data = sock.recv(65536)
        assert data, "the gateway closed the connection"
        parser.feed(data)


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk
