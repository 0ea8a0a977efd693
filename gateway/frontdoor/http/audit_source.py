"""The request log as the auditor endpoints read it: the same search and report code as
``gateway audit search`` and ``gateway report``, over the log the running gateway writes.

Reading the log is blocking file (or database) work: it runs in a worker thread, never on the loop.
Filters come from a query string (``?requester=...&person=42&person=43``) and are checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from gateway.audit.report import Quarter, QuarterReport, Thresholds, Verification, build_report
from gateway.audit.search import EVENT_TYPES, SearchQuery, join_outcomes, search
from gateway.audit.sink import RequestLog

DECISIONS = ("allow", "redact", "deny")
SEARCH_PARAMS = ("requester", "agency", "purpose", "decision", "since", "until", "person", "license", "value",
                 "sql_contains", "type", "limit", "offset")
REPEATABLE = ("person", "license", "value", "type")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


class QueryError(ValueError):
    """A filter of the query string is invalid (message names it)."""


@dataclass(frozen=True)
class SearchRequest:
    query: SearchQuery
    limit: int
    offset: int


def _time(name: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name} must be an ISO 8601 date or time, like 2026-07-01 or 2026-07-01T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _int(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise QueryError(f"{name} must be an integer from {low} to {high}")
    return int(text)


def parse_search(params: Mapping[str, str], multi: Mapping[str, list[str]]) -> SearchRequest:
    """A :class:`SearchRequest` from query-string values (``multi``: repeated keys); raises QueryError."""
    for name in params:
        if name not in SEARCH_PARAMS:
            raise QueryError(f"unknown filter {name!r}; filters are: {', '.join(SEARCH_PARAMS)}")
    decision = params.get("decision") or None
    if decision is not None and decision not in DECISIONS:
        raise QueryError(f"decision must be one of {', '.join(DECISIONS)}")
    types = tuple(t for t in multi.get("type", []) if t)
    for kind in types:
        if kind not in EVENT_TYPES:
            raise QueryError(f"type must be one of {', '.join(EVENT_TYPES)}")
    values = tuple(v.strip() for name in ("person", "license", "value") for v in multi.get(name, []) if v.strip())
    query = SearchQuery(
        requester=params.get("requester") or None,
        agency=params.get("agency") or None,
        purpose=params.get("purpose") or None,
        decision=decision,
        since=_time("since", params.get("since")),
        until=_time("until", params.get("until")),
        values=values,
        sql_contains=params.get("sql_contains") or None,
        types=types or EVENT_TYPES,
    )
    return SearchRequest(query, _int("limit", params.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT),
                         _int("offset", params.get("offset"), 0, 0, 10**9))


class AuditSource:
    """Reads the log that ``audit`` (the gateway's sink) writes, through its :class:`RequestLog` side."""

    def __init__(self, audit: RequestLog) -> None:
        self.audit = audit

    async def records(self) -> list[dict[str, Any]]:
        return await self.audit.read_records()

    async def verification(self) -> Verification:
        result = await self.audit.verify()
        shown = tuple(str(f) for f in result.findings if f.severity != "info")
        return Verification(result.ok, result.summary(), shown)

    async def search(self, request: SearchRequest) -> tuple[list[dict[str, Any]], int]:
        """Matching records, newest first, one page of them; and how many matched in all."""
        found = search(await self.records(), request.query, self.audit.hasher)
        found.reverse()
        return found[request.offset : request.offset + request.limit], len(found)

    async def find(self, request_id: str) -> dict[str, Any] | None:
        """The request (joined with its outcome) or event with this id; None if there is none."""
        matches = [r for r in join_outcomes(await self.records()) if str(r.get("request_id")) == request_id]
        requests = [r for r in matches if r.get("type") == "request"]
        return (requests or matches or [None])[0]

    async def report(self, quarter: Quarter, thresholds: Thresholds = Thresholds()) -> QuarterReport:
        verification = await self.verification()
        return build_report(await self.records(), quarter, verification, thresholds)
