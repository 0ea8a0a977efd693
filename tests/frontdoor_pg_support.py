"""Shared pieces of the pg front door tests: a real gateway in front of the seeded database."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.frontdoor.pg.runner import ThreadedGateway

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WireGateway:
    host: str
    port: int
    runner: ThreadedGateway
    audit_path: Path

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


def make_settings(dsn: str, audit_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "backend_dsn": dsn, "pg_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0",
        "policy": str(ROOT / "policies/colorado-dmv.yaml"),
        "requesters": str(ROOT / "policies/requesters.example.yaml"),
        "audit_path": str(audit_dir / "requests.jsonl"),
    }
    values.update(overrides)
    return Settings(**values)


def start_gateway(dsn: str, audit_dir: Path, **overrides: object) -> Iterator[WireGateway]:
    runner = ThreadedGateway(make_settings(dsn, audit_dir, **overrides)).start()
    try:
        yield WireGateway("127.0.0.1", runner.port, runner, audit_dir / "requests.jsonl")
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def wire_gw(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireGateway]:
    yield from start_gateway(dmv_dsn, tmp_path_factory.mktemp("wire-audit"))
