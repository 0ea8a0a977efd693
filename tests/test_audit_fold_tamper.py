"""Attacks inside a folded ``outcomes`` record, and line breaks that canonical JSON keeps raw.

One ``outcomes`` record holds a batch's outcomes: changing one of them (rows returned, status), taking
one out, or swapping two, inside the sealed record, is found by ``verify`` at that record's line,
even when the attacker writes the record back in canonical form with its old hash.

Canonical JSON keeps U+2028, U+2029 and NEL raw (``ensure_ascii=False``); ``str.splitlines`` splits on
them. Every reader of the log splits on ``b"\\n"`` only: verify, the records read for search and the
report, and the file ends read at start-up. In-process.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from gateway.audit.canonical import canonical_dumps
from gateway.audit.file_sink import AuditLog
from gateway.audit.files import read_ends
from gateway.audit.literals import LiteralHasher
from gateway.audit.search import SearchQuery, search
from gateway.audit.splice import outcome_entry
from gateway.audit.verify import iter_records, verify_files

KEY = bytes(range(32))
BREAKS = "a\u2028b\u2029c\x85d"


def _request(rid: str, sql: str = "SELECT 1") -> dict[str, Any]:
    return {"schema": 1, "type": "request", "time": "2026-08-01T10:00:00.000000Z", "request_id": rid,
            "requester": "clerk", "agency": "DMV", "decision": "allow", "statement_kind": "select",
            "sql_received": sql}


def _write(directory: Path, sql: str = "SELECT 1") -> Path:
    async def go() -> None:
        log = AuditLog(directory / "requests.jsonl", instance="gw", key=KEY)
        await log.start()
        await asyncio.gather(*(log.submit(_request(f"r{i}", sql)) for i in range(4)))
        for i in range(4):
            log.append_outcome(outcome_entry(f"r{i}", "ok", i + 1, i + 1, 0.5, None))
        await log.submit(_request("r4", sql))  # the outcomes go in this batch, sealed in one record
        await log.close()

    asyncio.run(go())
    return directory / "requests.jsonl"


def _folded(path: Path) -> tuple[list[bytes], int]:
    lines = path.read_bytes().split(b"\n")[:-1]
    index = [i for i, line in enumerate(lines) if json.loads(line)["type"] == "outcomes"]
    assert index, "no folded outcomes record"
    assert len(json.loads(lines[index[0]])["outcomes"]) >= 2
    return lines, index[0]


def _change(entries: list[list[Any]]) -> None:
    entries[0][2] = 0  # rows returned: the auditor would see an empty answer


def _status(entries: list[list[Any]]) -> None:
    entries[-1][1] = "error"


def _remove(entries: list[list[Any]]) -> None:
    del entries[1]


def _reorder(entries: list[list[Any]]) -> None:
    entries[0], entries[1] = entries[1], entries[0]


@pytest.mark.parametrize("attack", [_change, _status, _remove, _reorder], ids=lambda f: f.__name__.strip("_"))
def test_tampering_inside_a_folded_outcomes_record_is_found(tmp_path: Path,
                                                           attack: Callable[[list[list[Any]]], None]) -> None:
    path = _write(tmp_path)
    assert verify_files([tmp_path], KEY).ok
    lines, at = _folded(path)
    record = json.loads(lines[at])
    attack(record["outcomes"])
    lines[at] = canonical_dumps(record).encode()  # written back as the writer would, old hash kept
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = verify_files([tmp_path], KEY)
    assert not result.ok
    assert result.first_break is not None and result.first_break.where == f"requests.jsonl line {at + 1}"
    assert "edited" in result.first_break.message


def test_line_breaks_kept_raw_do_not_split_a_record_for_any_reader(tmp_path: Path) -> None:
    path = _write(tmp_path, sql=f"SELECT '{BREAKS}'")
    data = path.read_bytes()
    assert "\u2028".encode() in data and "\x85".encode() in data  # raw, as canonical JSON keeps them
    assert len(data.decode().splitlines()) > data.count(b"\n")  # what str.splitlines would have made of it
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings
    records = list(iter_records([tmp_path]))
    assert len(records) == data.count(b"\n") == result.records
    assert [r["sql_received"] for r in records if r["type"] == "request"] == [f"SELECT '{BREAKS}'"] * 5
    found = search(records, SearchQuery(sql_contains="\u2029c\x85"), LiteralHasher(KEY))
    assert [r["request_id"] for r in found] == ["r0", "r1", "r2", "r3", "r4"]
    assert [r["outcome"]["rows_returned"] for r in found[:4]] == [1, 2, 3, 4]
    ends = read_ends(path)
    assert ends.first is not None and ends.first["type"] == "checkpoint"
    assert ends.last is not None and ends.last["reason"] == "close" and not ends.torn


def test_a_record_ending_in_a_line_break_character_is_the_file_end(tmp_path: Path) -> None:
    """The last record holds U+2028 just before its newline: the file's end (read backwards at start-up
    to continue the chain) is that record, and a restarted log continues the chain."""

    async def go() -> None:
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw", key=KEY)
        await log.start()
        await log.append(_request("r0", "SELECT 1 --\u2028"))
        await log.close()
        log = AuditLog(tmp_path / "requests.jsonl", instance="gw", key=KEY)
        await log.start()
        await log.append(_request("r1", "SELECT 2 --\u2029"))
        await log.close()

    asyncio.run(go())
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings
    assert [r.get("request_id") for r in iter_records([tmp_path]) if r["type"] == "request"] == ["r0", "r1"]
