"""``gateway audit``: verify the request log's chain, and search it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HELP = "verify the request log's hash chain, or search it"
DESCRIPTION = (
    "gateway audit verify PATH... checks every record's HMAC and chain link (files, or the log "
    "directory; --dsn for the PostgreSQL sink) and exits 1 at the first broken link. gateway audit "
    "search finds requests by requester, agency, purpose, decision, time, person or license number."
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    verify = sub.add_parser("verify", help="check the hash chain; exit 1 if it is broken")
    _sources(verify)
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument("--since-report", type=Path, action="append", default=[], metavar="REPORT.json",
                        help="a previous quarterly report (JSON): the log must still hold the chain's end it saw "
                             "(records cut off the end are found); tip files beside the log are always checked")
    search = sub.add_parser("search", help="find requests in the log")
    _sources(search)
    search.add_argument("--requester", help="requester name (exact)")
    search.add_argument("--agency", help="agency (substring, any case)")
    search.add_argument("--purpose", help="purpose token, or 'none'")
    search.add_argument("--decision", choices=("allow", "redact", "deny"))
    search.add_argument("--since", help="from this time (ISO 8601; a date means its midnight UTC)")
    search.add_argument("--until", help="before this time (ISO 8601)")
    search.add_argument("--person", action="append", default=[], metavar="ID",
                        help="a person id named in the SQL or parameters (hashed like the log)")
    search.add_argument("--license", action="append", default=[], metavar="NUMBER",
                        help="a license number named in the SQL or parameters (hashed like the log)")
    search.add_argument("--value", action="append", default=[], help="any other literal value")
    search.add_argument("--sql-contains", help="text in the SQL as logged (literals are hashed)")
    search.add_argument("--type", action="append", choices=("request", "login_failed", "purpose_change"),
                        help="record types (default: all three)")
    search.add_argument("--limit", type=int, default=0, help="show at most N (the latest)")
    search.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def _sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="log files or the log directory (default: the log the settings name: "
                             "audit_dsn, else audit_path's folder)")
    parser.add_argument("--dsn", help="read the PostgreSQL sink at this DSN instead of files")
    parser.add_argument("--table", default=None, help="audit table for --dsn (default gateway_request_log)")
    parser.add_argument("--key", type=Path, help="the log key file (default: audit.key beside the log)")
    parser.add_argument("--config", help="settings file (for the default audit_path)")


class _UsageError(Exception):
    pass


def _resolve(args: argparse.Namespace) -> tuple[list[Path], bytes]:
    from gateway.audit.keyfile import KEY_FILE_NAME, read_key

    paths: list[Path] = list(args.paths)
    configured_key: str | None = None
    if not paths and not args.dsn:  # the log the settings name (--config, GATEWAY_*): a table or files
        from gateway.config import load_settings

        settings = load_settings(args.config)
        configured_key = settings.audit_key
        if settings.audit_dsn:
            args.dsn, args.table = settings.audit_dsn, args.table or settings.audit_table
        else:
            paths = [Path(settings.audit_path).parent]
    for path in paths:
        if not path.exists():
            raise _UsageError(f"no such file or directory: {path}")
    if args.key:
        key_file = args.key
    elif configured_key:
        key_file = Path(configured_key)
    elif paths:
        first = paths[0]
        key_file = (first if first.is_dir() else first.parent) / KEY_FILE_NAME
    else:
        raise _UsageError("--dsn needs --key FILE (the log key the gateway uses for that database; "
                          "or audit_key in the settings)")
    if not key_file.exists():
        raise _UsageError(f"the log key {key_file} does not exist: pass --key FILE")
    return paths, read_key(key_file)


def _records(args: argparse.Namespace, paths: list[Path]) -> list[dict[str, Any]]:
    if args.dsn:
        from gateway.audit.pg_sink import DEFAULT_TABLE, iter_pg_records

        async def collect() -> list[dict[str, Any]]:
            return [r async for r in iter_pg_records(args.dsn, args.table or DEFAULT_TABLE)]

        return asyncio.run(collect())
    from gateway.audit.verify import iter_records

    return list(iter_records(paths))


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _verify(args: argparse.Namespace, paths: list[Path], key: bytes) -> int:
    from gateway.audit.tips import read_report

    anchors = [a for report in args.since_report for a in read_report(report)]
    if args.dsn:
        from gateway.audit.pg_sink import DEFAULT_TABLE, verify_pg

        result = asyncio.run(verify_pg(args.dsn, key, args.table or DEFAULT_TABLE, anchors))
    else:
        from gateway.audit.verify import verify_files

        result = verify_files(paths, key, anchors)
    if args.json:
        print(json.dumps({
            "ok": result.ok, "records": result.records, "sources": result.sources,
            "chains": {k: list(v) for k, v in result.chains.items()},
            "chain_status": {k: result.status(k) for k in result.chains},
            "findings": [{"severity": f.severity, "where": f.where, "message": f.message} for f in result.findings],
        }, indent=2))  # fmt: skip
    else:
        for finding in result.findings:
            print(finding, file=sys.stdout if finding.severity == "info" else sys.stderr)
        print(result.summary())
    return 0 if result.ok else 1


def _search(args: argparse.Namespace, paths: list[Path], key: bytes) -> int:
    from gateway.audit.literals import LiteralHasher
    from gateway.audit.search import EVENT_TYPES, SearchQuery, format_table, search

    query = SearchQuery(
        requester=args.requester, agency=args.agency, purpose=args.purpose, decision=args.decision,
        since=_time(args.since), until=_time(args.until),
        values=tuple(args.person + args.license + args.value), sql_contains=args.sql_contains,
        types=tuple(args.type or EVENT_TYPES),
    )  # fmt: skip
    found = search(_records(args, paths), query, LiteralHasher(key))
    if args.limit:
        found = found[-args.limit :]
    if args.json:
        for record in found:
            print(json.dumps(record, ensure_ascii=False, sort_keys=True))
    else:
        width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else 200
        print(format_table(found, width))
    return 0


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "audit_command", None):
        print("usage: gateway audit {verify,search} ... (see gateway audit --help)", file=sys.stderr)
        return 2
    from gateway.errors import ConfigError

    try:
        paths, key = _resolve(args)
        if args.audit_command == "verify":
            return _verify(args, paths, key)
        return _search(args, paths, key)
    except (_UsageError, ConfigError, ValueError) as exc:
        print(f"gateway audit: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"gateway audit: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
