"""The compiled hot path and the pure-Python one (``GATEWAY_PURE_PYTHON=1``) give the same answers and
write the same request records for the same requests, through a real ``gateway serve`` each.

Both gateways share one log key, so a hashed literal, parameter or individual is the same text in
both logs; what differs by nature (request ids, times, durations, the chain's links, ports) is left
out of the comparison. Every client way in: psycopg simple and extended (prepared too), asyncpg
(binary parameters), and a raw pipeline of Parse/Bind/Execute without a Sync between them.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from frontdoor_pg_support import WireGateway, raw_login, start_gateway
from gateway.audit.keyfile import key_path_for
from gateway.audit.literals import hash_literal
from gateway.audit.record import per_request
from gateway.notices.queue import NoticeQueue

CBI = "-c gateway.purpose=criminal_law_enforcement -c gateway.case_number=CR-2026-0042"
COURT = "-c gateway.purpose=court_order -c gateway.order_reference=2026CV001234"
KEY = bytes(range(32))

SIMPLE = [
    ("dmv_clerk", "", "SELECT 1 AS one"),
    ("dmv_clerk", "", "SELECT person_id, first_name FROM dmv.persons WHERE person_id = 7"),
    ("dmv_clerk", "", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 7"),
    ("dmv_clerk", "", "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'ASYLEE'"),
    ("dmv_clerk", "", "SELECT 1/0"),
    ("dmv_clerk", "", "SELEC 1"),
    ("dmv_clerk", "", "SELECT 1; SELECT person_id FROM dmv.persons WHERE person_id = 3"),
    ("dmv_clerk", "", "BEGIN; SELECT 2; COMMIT"),
    ("dmv_clerk", "", "SET application_name = 'x'; SHOW application_name"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id IN (3, 05, '8')"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id IN (3, 5, 8)"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id = ANY('{4,6}')"),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE first_name LIKE 'A%'"),
    ("cbi_analyst", CBI, "SELECT p.first_name, l.immigration_status FROM dmv.persons p JOIN dmv.lawful_presence l "
                         "USING (person_id) WHERE p.person_id = 11"),
    ("cbi_analyst", CBI, "SELECT first_name FROM dmv.persons WHERE person_id = 11 OR person_id = 12"),
    ("ag_counsel", COURT, "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 15"),
    ("ag_counsel", COURT, "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = 16"),
    ("ice_ero", "", "SELECT count(*) FROM dmv.persons WHERE person_id = 17"),
    ("ice_ero", "", "SELECT first_name FROM dmv.persons WHERE person_id = 17"),
]
EXTENDED = [
    ("dmv_clerk", "", "SELECT person_id, first_name FROM dmv.persons WHERE person_id = %s", [7]),
    ("dmv_clerk", "", "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = %s", [9]),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id = %s", ["09"]),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id = ANY(%s)", [[3, 5]]),
    ("cbi_analyst", CBI, "SELECT person_id, first_name FROM dmv.persons WHERE person_id > %s", [5]),
    ("ag_counsel", COURT, "SELECT immigration_status FROM dmv.lawful_presence WHERE person_id = %s", [18]),
]


def _gateway(dmv_dsn: str, directory: Path, **env: str) -> Iterator[WireGateway]:
    directory.mkdir(parents=True, exist_ok=True)
    key = key_path_for(directory / "requests.jsonl")
    key.write_bytes(KEY)
    key.chmod(0o600)
    yield from start_gateway(dmv_dsn, directory, **env)


@pytest.fixture(scope="module")
def pair(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WireGateway, WireGateway]]:
    root = tmp_path_factory.mktemp("redteam-differential")
    compiled = _gateway(dmv_dsn, root / "compiled")
    pure = _gateway(dmv_dsn, root / "pure", GATEWAY_PURE_PYTHON="1")
    first = next(compiled)
    try:
        second = next(pure)
        try:
            yield first, second
        finally:
            pure.close()
    finally:
        compiled.close()


_ID = re.compile(r"\(request [0-9a-f]+-[0-9]+\)|request [0-9a-f]+-[0-9]+")


def _clean(text: str) -> str:
    return _ID.sub("(request)", text)


def _psycopg(gw: WireGateway) -> list[Any]:
    out: list[Any] = []
    for user, options, sql in SIMPLE:
        with psycopg.connect(gw.dsn(user), autocommit=True, options=options) as conn:
            notices: list[str] = []
            conn.add_notice_handler(lambda d, n=notices: n.append(_clean(d.message_primary or "")))
            try:
                cur = conn.execute(sql.encode(), prepare=False)  # bytes: the simple protocol
                rows = cur.fetchall() if cur.description else None
                out.append((sql, [(c.name, c.type_code) for c in cur.description or ()], rows, notices))
            except psycopg.Error as exc:
                out.append((sql, exc.sqlstate, _clean(str(exc)), notices))
    for prepare in (False, True):
        for user, options, sql, args in EXTENDED:
            with psycopg.connect(gw.dsn(user), autocommit=True, options=options) as conn:
                try:
                    for _ in range(2 if prepare else 1):
                        cur = conn.execute(sql, args, prepare=prepare)
                    out.append((sql, prepare, [(c.name, c.type_code) for c in cur.description or ()], cur.fetchall()))
                except psycopg.Error as exc:
                    out.append((sql, prepare, exc.sqlstate, _clean(str(exc))))
    return out


def _asyncpg(gw: WireGateway) -> list[Any]:
    async def main() -> list[Any]:
        out: list[Any] = []
        conn = await asyncpg.connect(host=gw.host, port=gw.port, user="cbi_analyst", password="cbi_analyst-demo-password",
                                     database="dmv", ssl=False, server_settings={"options": CBI})
        try:
            for sql, args in (("SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1", (130,)),
                              ("SELECT person_id, first_name FROM dmv.persons WHERE person_id = $1", (131,)),
                              ("SELECT person_id, first_name FROM dmv.persons WHERE person_id = ANY($1::bigint[])", ([3, 200],)),
                              ("SELECT person_id FROM dmv.persons WHERE person_id = $1 AND first_name = $2", (5, "x")),
                              ("SELECT person_id, first_name FROM dmv.persons WHERE person_id < $1", (5,))):
                try:
                    out.append((sql, [tuple(r) for r in await conn.fetch(sql, *args)]))
                except asyncpg.PostgresError as exc:
                    out.append((sql, exc.sqlstate, _clean(str(exc))))
        finally:
            await conn.close()
        return out

    return asyncio.run(main())


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _frames(data: bytes) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos + 5 <= len(data):
        (length,) = struct.unpack_from("!i", data, pos + 1)
        kind, body = chr(data[pos]), data[pos + 5:pos + 1 + length]
        out.append((kind, _clean(body.decode("utf-8", "replace")) if kind in "DCEN" else ""))
        pos += 1 + length
    return out


def _raw_pipeline(gw: WireGateway) -> bytes:
    """Parse once, then Bind/Execute five persons without a Sync between them, then one Sync."""
    sock = raw_login(gw, "dmv_clerk")
    try:
        data = _msg(b"P", b"s1\0SELECT first_name FROM dmv.persons WHERE person_id = $1\0\0\0")
        for pid in (21, 22, 23, 24, 25):
            value = str(pid).encode()
            data += _msg(b"B", b"\0s1\0\0\0\0\x01" + struct.pack("!i", len(value)) + value + b"\0\0")
            data += _msg(b"E", b"\0\0\0\0\0")
        sock.sendall(data + _msg(b"S", b""))
        got = b""
        while not got.endswith(_msg(b"Z", b"I")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        sock.close()


_VARYING = {"time", "request_id", "seq", "prev", "hash", "mac", "duration_ms", "session_id", "client_addr",
            "instance", "pid", "started", "ended", "at", "due"}


def _records(gw: WireGateway, before: int) -> list[dict[str, Any]]:
    """The records written after the first ``before`` lines of the log."""
    deadline = time.monotonic() + 10
    while True:  # every session's end is written (after its client left: not before the answers)
        lines = gw.audit_path.read_text().splitlines()
        if sum('"session_start"' in x for x in lines) == sum('"session_end"' in x for x in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    out, outcomes = [], []
    for record in per_request(json.loads(line) for line in lines[before:]):
        kept = {k: (_clean(v) if isinstance(v, str) else v) for k, v in record.items() if k not in _VARYING}
        (outcomes if record.get("type") == "outcome" else out).append(kept)
    # a batch's outcomes are one record, and where a batch ends is timing: the outcomes compared as a set
    return out + sorted(outcomes, key=lambda r: json.dumps(r, sort_keys=True))


def _brief(records: list[dict[str, Any]]) -> list[str]:
    return [f"{r.get('type')} {r.get('requester')} {r.get('sql_received') or r.get('reason') or r.get('status') or ''}"[:150]
            for r in records]


def test_compiled_and_pure_python_answer_and_record_alike(pair: tuple[WireGateway, WireGateway]) -> None:
    results = []
    for gw in pair:
        before = len(gw.audit_path.read_text().splitlines())
        answers = (_psycopg(gw), _asyncpg(gw), _frames(_raw_pipeline(gw)))
        results.append((answers, _records(gw, before)))
    (answers_a, records_a), (answers_b, records_b) = results
    notices = [sorted(n.person for n in NoticeQueue(gw.audit_path.parent / "subject-notices.ndjson").notices()) for gw in pair]
    assert notices[0] == notices[1]
    for person, count in (("person:15", 1), ("person:16", 1), ("person:18", 3), ("person:17", 2)):
        assert notices[0].count(person) == count, (person, notices[0])
    assert answers_a == answers_b
    assert _brief(records_a) == _brief(records_b), "\n".join(difflib.unified_diff(_brief(records_a), _brief(records_b),
                                                                                 lineterm="", n=1))
    for a, b in zip(records_a, records_b):
        assert a == b
    # and the records say what the requests were: the individuals by the log key's hash of the canonical value
    requests = [r for r in records_a if r.get("type") == "request"]
    h = {v: hash_literal(v, KEY) for v in ("3", "5", "8", "9", "15", "18", "130", "131")}
    assert any(r.get("individuals") == [f"person:{h['3']}", f"person:{h['5']}", f"person:{h['8']}"] for r in requests)
    assert sum(r.get("individuals") == [f"person:{h['15']}"] for r in requests) == 1
    assert sum(r.get("individuals") == [f"person:{h['18']}"] for r in requests) == 3  # court order: once unprepared, twice prepared
    assert any(r.get("individuals") == [f"person:{h['130']}"] for r in requests)
    assert any(r.get("individuals") == [f"person:{h['9']}"] for r in requests)
