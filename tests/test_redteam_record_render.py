"""The request log's lines are the canonical JSON of what they say, whatever the SQL holds.

The hot path does not serialize a record with ``json.dumps``: the static part of a request record
is rendered once per (claim, statement shape) and the pieces of ``sql_received`` / ``sql_sent``
between the literal hashes are escaped once and joined per request. A piece escaped wrongly, or
spliced at the wrong place, gives a line that is not ``canonical_dumps`` of its own parse, or one
whose SQL is not the SQL received. Here a real gateway (in this process, one analysis worker)
takes statements whose identifiers, comments, literals and parameters hold quotes, backslashes,
control characters, non-ASCII letters, emoji and the JSON-unsafe separators U+2028/U+2029, by
simple Query (a miss, then shape and skeleton hits, then an exact hit), unnamed and prepared
extended statements, refusals, and a statement too long to plan on the loop (its SQL is hashed in
the worker); then every line must be byte-for-byte ``canonical_dumps`` of its parse (the ``hash`` member last), the chain
must verify, and each request's ``sql_received`` must hold the text outside its literals as sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.audit.canonical import canonical_dumps
from gateway.config import load_settings
from gateway.frontdoor.pg.runner import ThreadedGateway
from gateway.pgserver import free_port

ROOT = Path(__file__).resolve().parents[1]
ODD = ["plain", 'dq"uote', "back\\slash", "tab\there", "nl\nline", "cr\rret", "bell\x07", "esc\x1b[0m", "nul-free\x7f",
       "é ü ß", "中文字", "emoji 🙂🚀", "ls\u2028ps\u2029nel\x85fs\x1c", "</script>", "{\"k\":[1]}", "\\u0041", "'", "''", "%s %d"]


@pytest.fixture(scope="module")
def gateway(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedGateway, Path]]:
    log = tmp_path_factory.mktemp("record-render") / "requests.jsonl"
    settings = load_settings(None, env={
        "GATEWAY_BACKEND_DSN": dmv_dsn, "GATEWAY_PG_LISTEN": f"127.0.0.1:{free_port()}",
        "GATEWAY_AUDIT_PATH": str(log), "GATEWAY_ANALYSIS_WORKERS": "1",
    })
    gw = ThreadedGateway(settings, http=False).start()
    try:
        yield gw, log
    finally:
        gw.stop()


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _statements() -> list[tuple[str, str | None]]:
    """(SQL, the text outside its literals that sql_received must hold as sent, or None)."""
    out: list[tuple[str, str | None]] = []
    for k, odd in enumerate(ODD):
        alias = _ident(f"c {odd}")
        for n in range(4):  # a miss, a shape hit, then skeleton hits (plain texts) or shape hits (the rest)
            out.append((f"SELECT first_name AS {alias} FROM dmv.persons WHERE person_id = {k * 4 + n + 1}", alias))
            out.append((f"SELECT person_id FROM dmv.persons WHERE last_name = {_quoted(odd + str(n))}", None))
        out.append((f"SELECT 1 AS one /* {odd.replace('*/', '')} */", None))  # a comment is hashed like a literal
        out.append((f"SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = {_quoted(odd)}", None))
        out.append((f"SELECT immigration_status AS {alias} FROM dmv.lawful_presence", alias))  # refused (no naming)
        out.append((f"SELECT nosuch AS {alias} FROM dmv.persons", alias))  # refused: no such column
    return out


def _dsn(gw: ThreadedGateway) -> str:
    return f"host=127.0.0.1 port={gw.port} dbname=dmv user=dmv_clerk password=dmv_clerk-demo-password sslmode=disable"


def test_every_line_is_the_canonical_json_of_what_it_says(gateway: tuple[ThreadedGateway, Path]) -> None:
    gw, log = gateway
    expected: list[str] = []
    with psycopg.connect(_dsn(gw), autocommit=True, options="-c gateway.purpose=service_delivery") as conn:
        for sql, outside in _statements() * 2:  # the second round: exact hits
            try:
                conn.execute(sql.encode(), prepare=False).fetchall()
            except psycopg.Error:
                pass  # refusals are records too
            if outside is not None:
                expected.append(outside)
        for k, odd in enumerate(ODD):
            alias = _ident(f"p {odd}")
            for prepare in (False, True, True):  # unnamed Parse, then a named statement and its second Bind
                conn.execute(f"SELECT first_name AS {alias.replace('%', '%%')} FROM dmv.persons WHERE person_id = %s AND last_name <> %s",
                             (k + 1, odd), prepare=prepare).fetchall()
                expected.append(alias)
        long_alias = _ident("long " + "".join(ODD))
        long_sql = f"SELECT first_name AS {long_alias} FROM dmv.persons WHERE person_id = 3" + " " * 17_000
        conn.execute(long_sql.encode(), prepare=False).fetchall()  # past inline_chars: hashed by the worker
        expected.append(long_alias)

    lines = log.read_text(encoding="utf-8").split("\n")[:-1]  # not splitlines(): U+2028 is a line break to it
    requests: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        record = json.loads(line)
        signed = canonical_dumps({k: v for k, v in record.items() if k != "hash"})  # what the chain signs, then its hash
        assert line == signed[:-1] + f',"hash":"{record["hash"]}"}}', f"line {number} is not the canonical JSON of its parse:\n{line[:600]}"
        if record.get("type") == "request":
            requests.append(record)
    received = [r["sql_received"] for r in requests]
    missing = [text for text in expected if not any(text in sql for sql in received)]
    assert not missing, f"{len(missing)} texts are not in any sql_received as sent: {missing[:5]}"
    verify = subprocess.run([sys.executable, "-m", "gateway", "audit", "verify", str(log)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
