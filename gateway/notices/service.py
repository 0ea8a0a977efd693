"""Queue subject notices for the requests that owe them (SPEC 10), off the request's hot path.

A request by an immigration agency, or a release under ``court_order``, owes a notice to each person
it named. The pipeline hands over the named individuals (``key:value`` as the analyzer's anchor
analysis finds them: ``person:42``, ``license_number:...``, ``combination:first|last|dob``) once the
request's record is durable; this service resolves each to the person's id through the policy's
``individuals.keys`` (a key's column and the ``person`` column of the same table), and queues one
notice per person with its due date. What cannot be resolved is queued under the key it was named by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import structlog

from gateway.notices.due import NoticeRules, due_date
from gateway.notices.queue import Notice, NoticeQueue

log = structlog.get_logger("gateway.notices")
PERSON = "person"


def _split(column: str) -> tuple[str, str, str]:
    schema, table, col = column.split(".")
    return schema, table, col


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SubjectNotices:
    def __init__(self, queue: NoticeQueue, rules: NoticeRules, *, keys: Mapping[str, Sequence[str]] | None = None,
                 combinations: Sequence[Sequence[str]] = (), pool: Any = None) -> None:
        self.queue = queue
        self.rules = rules
        self.keys = {k: list(v) for k, v in (keys or {}).items()}
        self.combinations = [list(c) for c in combinations]
        self.pool = pool
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the pipeline calls ----------------------------------------------------------------
    def submit(self, *, request_id: str, requester: str, agency: str, reason: str, asked: str,
               individuals: Sequence[str], when: datetime | None = None) -> None:
        """Resolve ``individuals`` and queue their notices in the background (never raises)."""
        if not individuals:
            return
        task = asyncio.get_running_loop().create_task(self._queue(
            request_id=request_id, requester=requester, agency=agency, reason=reason, asked=asked,
            individuals=individuals, when=when or datetime.now(timezone.utc)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the notices still being queued (at stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the interface taking the named persons ---------------------------------------------------
    def enqueue(self, *, request_id: str, requester: str, agency: str, reason: str, asked: str,
                persons: Sequence[str], when: datetime) -> list[Notice]:
        """Queue one notice per person (``person:ID``), due by the policy's rule; returns them."""
        due = due_date(when.astimezone(timezone.utc).date(), self.rules)
        stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        notices = [Notice.new(request_id=request_id, n=i, person=p, requester=requester, agency=agency,
                              requested_at=stamp, asked=asked, reason=reason, due=due)
                   for i, p in enumerate(dict.fromkeys(persons), 1)]  # fmt: skip
        self.queue.queue(notices)
        return notices

    async def _queue(self, *, individuals: Sequence[str], **info: Any) -> None:
        try:
            persons = await self.resolve(individuals)
            await asyncio.get_running_loop().run_in_executor(None, lambda: self.enqueue(persons=persons, **info))
        except Exception as exc:  # noqa: BLE001 - the answer is already given; say loudly what was not queued
            log.error("subject_notice_not_queued", request_id=info.get("request_id"), error=str(exc))

    async def resolve(self, individuals: Sequence[str]) -> list[str]:
        """``person:ID`` for each individual, looked up through the policy's keys where needed."""
        out: list[str] = []
        for item in individuals:
            key, _, value = item.partition(":")
            if key == PERSON:
                out.append(item)
                continue
            found = await self._lookup(key, value)
            out.extend(f"{PERSON}:{pid}" for pid in found) if found else out.append(item)
        return out

    async def _lookup(self, key: str, value: str) -> list[str]:
        if self.pool is None:
            return []
        person_columns = self.keys.get(PERSON, [])
        candidates: list[tuple[list[str], list[str]]] = []
        if key == "combination":
            parts = value.split("|")
            candidates = [(combo, parts) for combo in self.combinations if len(combo) == len(parts)]
        else:
            candidates = [([column], [value]) for column in self.keys.get(key, [])]
        for columns, values in candidates:
            schema, table, _ = _split(columns[0])
            person = next((c for c in person_columns if _split(c)[:2] == (schema, table)), None)
            if person is None:
                continue
            where = " AND ".join(f"{_quote(_split(c)[2])}::text = ${i}" for i, c in enumerate(columns, 1))
            sql = (f"SELECT DISTINCT {_quote(_split(person)[2])}::text AS id FROM {_quote(schema)}.{_quote(table)} "
                   f"WHERE {where} LIMIT 26")
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(sql, *values)
            if rows:
                return [r["id"] for r in rows]
        return []
