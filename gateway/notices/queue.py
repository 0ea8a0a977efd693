"""The subject-notice queue: an append-only file of events beside the request log.

``subject-notices.ndjson`` holds one JSON event a line: ``queued`` (the whole notice), ``sent``,
``deferred`` (with the reason), ``exported``. The current state of each notice is the fold of its
events, so nothing is ever rewritten and the history is the audit trail. A notice holds the person's
id (the value of the identifying key the request named, resolved to the person where the policy's
keys allow it), never the person's data. Writers append under an exclusive ``flock`` and fsync.

>>> from datetime import date
>>> n = Notice.new(request_id="r-1", n=1, person="person:42", requester="ice_ero", agency="ICE",
...                requested_at="2026-12-01T10:00:00Z", asked="dmv.persons.first_name", reason="immigration agency",
...                due=date(2026, 12, 4))
>>> n.id, n.overdue(date(2026, 12, 5)), n.overdue(date(2026, 12, 4))
('N-r-1-1', True, False)
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from gateway.audit.files import write_all

FILE_NAME = "subject-notices.ndjson"


def queue_path(audit_path: str | Path) -> Path:
    """Where the queue lives: beside the request log (its folder)."""
    return Path(audit_path).with_name(FILE_NAME)


@dataclass(frozen=True)
class Notice:
    id: str
    request_id: str
    person: str  # key:value of the person named (person:42), never their data
    requester: str
    agency: str
    requested_at: str
    asked: str  # what was asked: the purpose and the columns, never values
    reason: str  # why a notice is owed: an immigration agency's request, a release under a court order
    due: str  # ISO date
    status: str = "queued"  # queued | sent | deferred
    sent_at: str | None = None
    deferred_reason: str | None = None
    deferred_at: str | None = None
    exported_at: str | None = None

    @classmethod
    def new(cls, *, request_id: str, n: int, person: str, requester: str, agency: str, requested_at: str,
            asked: str, reason: str, due: date) -> Notice:
        return cls(f"N-{request_id}-{n}", request_id, person, requester, agency, requested_at, asked, reason,
                   due.isoformat())

    def overdue(self, today: date) -> bool:
        return self.status == "queued" and date.fromisoformat(self.due) < today

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NoticeQueue:
    """The queue file at ``path``: :meth:`append` events, :meth:`notices` folds them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, events: Iterable[dict[str, Any]]) -> None:
        data = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in events).encode("utf-8")
        if not data:
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def queue(self, notices: Iterable[Notice]) -> None:
        self._append({"event": "queued", "time": _now(), **n.as_dict()} for n in notices)

    def notices(self) -> list[Notice]:
        """Every notice in the state its events leave it, in the order queued."""
        found: dict[str, Notice] = {}
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a torn last line (a crash mid-write) was never acknowledged
                kind, nid = event.get("event"), event.get("id")
                if kind == "queued":
                    fields = {k: event.get(k) for k in Notice.__dataclass_fields__}
                    found[nid] = Notice(**fields)
                elif nid in found and kind == "sent":
                    found[nid] = replace(found[nid], status="sent", sent_at=event.get("time"))
                elif nid in found and kind == "deferred":
                    found[nid] = replace(found[nid], status="deferred", deferred_reason=event.get("reason"),
                                         deferred_at=event.get("time"))
                elif nid in found and kind == "exported":
                    found[nid] = replace(found[nid], exported_at=event.get("time"))
        return list(found.values())

    def get(self, nid: str) -> Notice | None:
        return next((n for n in self.notices() if n.id == nid), None)

    def mark_sent(self, nid: str, by: str = "") -> None:
        self._append([{"event": "sent", "id": nid, "time": _now(), "by": by}])

    def defer(self, nid: str, reason: str, by: str = "") -> None:
        self._append([{"event": "deferred", "id": nid, "time": _now(), "reason": reason, "by": by}])

    def mark_exported(self, ids: Iterable[str], target: str) -> None:
        now = _now()
        self._append({"event": "exported", "id": nid, "time": now, "target": target} for nid in ids)
