"""Find requests in the log for an auditor: filters, the request/outcome join, a readable table.

Pure: takes records, returns rows; the ``gateway audit search`` command does the reading and
printing. A person id or license number is found by hashing it the way the log hashed literals and
parameters (:meth:`LiteralHasher.hash_literal`), so the auditor needs the log key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.audit.literals import LiteralHasher
from gateway.audit.record import parse_time, per_request

EVENT_TYPES = ("request", "login_failed", "purpose_change", "alert", "rate_limited")


def join_outcomes(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Request and event records, each ``request`` with its ``outcome`` merged under ``"outcome"``
    (from an ``outcomes`` record, or a per-request ``outcome`` record of an older log).

    Outcomes come after their request in the log, so requests are held until the end (a request
    whose outcome is missing was refused before execution, or the gateway stopped)."""
    held: dict[str, dict[str, Any]] = {}
    order: list[dict[str, Any]] = []
    for record in per_request(records):
        kind = record.get("type")
        if kind == "outcome":
            request = held.get(str(record.get("request_id")))
            if request is not None:
                request["outcome"] = record
        elif kind in EVENT_TYPES:
            row = dict(record)
            if kind == "request":
                held[str(record.get("request_id"))] = row
            order.append(row)
    yield from order


@dataclass(frozen=True)
class SearchQuery:
    requester: str | None = None
    agency: str | None = None  # substring, case-insensitive
    purpose: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    values: tuple[str, ...] = ()  # person ids / license numbers, in clear: hashed before matching
    sql_contains: str | None = None
    types: tuple[str, ...] = EVENT_TYPES


def _value_tokens(query: SearchQuery, hasher: LiteralHasher) -> list[tuple[str, str]]:
    """For each searched value: (hashed form, clear form); the clear form matches unhashed logs."""
    return [(hasher.hash_literal(v), v) for v in query.values]


def matches(record: dict[str, Any], query: SearchQuery, tokens: list[tuple[str, str]]) -> bool:
    if record.get("type") not in query.types:
        return False
    if query.requester and record.get("requester") != query.requester:
        return False
    if query.agency and query.agency.lower() not in str(record.get("agency") or "").lower():
        return False
    if query.purpose and (record.get("purpose") or "none") != query.purpose:
        return False
    if query.decision and record.get("decision") != query.decision:
        return False
    if query.since or query.until:
        moment = parse_time(str(record.get("time")))
        if (query.since and moment < query.since) or (query.until and moment >= query.until):
            return False
    sql = f"{record.get('sql_received') or ''}\n{record.get('sql_sent') or ''}"
    if query.sql_contains and query.sql_contains.lower() not in sql.lower():
        return False
    if tokens:
        params = [str(p) for p in record.get("params") or []]
        for hashed, clear in tokens:
            if hashed in sql or hashed in params or clear in params or f"'{clear}'" in sql:
                break
        else:
            return False
    return True


def search(records: Iterable[dict[str, Any]], query: SearchQuery, hasher: LiteralHasher) -> list[dict[str, Any]]:
    """The matching requests and events, in log order, requests joined with their outcome. Records of
    several chains (gateway workers or replicas, read chain after chain) are put in time order."""
    tokens = _value_tokens(query, hasher)
    found = [r for r in join_outcomes(records) if matches(r, query, tokens)]
    if len({r.get("instance") for r in found}) > 1:
        found.sort(key=lambda r: str(r.get("time", "")))
    return found


TABLE_COLUMNS = ("time", "request", "requester", "agency", "purpose", "decision", "rows", "sql / reason")


def table_row(record: dict[str, Any]) -> tuple[str, ...]:
    outcome = record.get("outcome") or {}
    kind = record.get("type")
    text = record.get("sql_received") if kind == "request" else f"[{kind}] {record.get('reason') or ''}"
    if kind == "request" and record.get("decision") == "deny":
        text = f"{record.get('reason') or ''} | {text}"
    rows = outcome.get("rows_returned")
    return (
        str(record.get("time", ""))[:19].replace("T", " "),
        str(record.get("request_id") or ""),
        str(record.get("requester") or ""),
        str(record.get("agency") or ""),
        str(record.get("purpose") or "none"),
        str(record.get("decision") or ""),
        "" if rows is None else str(rows),
        " ".join(str(text or "").split()),
    )


def format_table(records: list[dict[str, Any]], width: int = 160) -> str:
    """A fixed-width table that fits ``width`` columns; the last column is cut to fit."""
    rows = [TABLE_COLUMNS] + [table_row(r) for r in records]
    caps = (19, 14, 16, 24, 24, 8, 6)
    widths = [min(cap, max(len(row[i]) for row in rows)) for i, cap in enumerate(caps)]
    last = max(20, width - sum(widths) - 2 * len(widths))
    out = []
    for n, row in enumerate(rows):
        cells = [_fit(row[i], w) for i, w in enumerate(widths)] + [_fit(row[-1], last)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths + [min(last, 40)]))
    out.append(f"{len(records)} record(s)")
    return "\n".join(out)


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"
