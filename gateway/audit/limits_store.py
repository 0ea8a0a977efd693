"""The counters behind caps, rate limits and alerts (SPEC section 9), in a SQLite file beside the
request log: they survive a restart and are shared by every process that opens the same file.

What it keeps, per requester and purpose: requests per minute and per day; the individuals named
each day, as keyed hashes (the request log's literal hashes, never the values); when each
individual was named, for the repeated look-up alert. Old rows are dropped after the alert windows.
The rules (which cap, when to alert) are pure functions in :mod:`gateway.policy.limits`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from gateway.policy.limits import over_individuals, over_rate, repeat_alert, volume_alert
from gateway.policy.model import AlertsSpec
from gateway.policy.types import Caps

_SCHEMA = """
CREATE TABLE IF NOT EXISTS minute_counts (requester TEXT, purpose TEXT, minute INTEGER, n INTEGER,
    PRIMARY KEY (requester, purpose, minute));
CREATE TABLE IF NOT EXISTS day_counts (requester TEXT, purpose TEXT, day TEXT, n INTEGER, refused INTEGER DEFAULT 0,
    PRIMARY KEY (requester, purpose, day));
CREATE TABLE IF NOT EXISTS day_individuals (requester TEXT, purpose TEXT, day TEXT, individual TEXT,
    PRIMARY KEY (requester, purpose, day, individual));
CREATE TABLE IF NOT EXISTS namings (requester TEXT, individual TEXT, at REAL);
CREATE INDEX IF NOT EXISTS namings_by_individual ON namings (requester, individual, at);
CREATE TABLE IF NOT EXISTS peaks (requester TEXT, purpose TEXT, day TEXT, what TEXT, value INTEGER, cap INTEGER,
    PRIMARY KEY (requester, purpose, day, what));
"""


@dataclass(frozen=True)
class Admission:
    """The store's answer for one request."""

    refusal: str | None = None  # why the request is refused (None: admitted)
    rule: str = ""
    alerts: tuple[dict[str, object], ...] = ()  # alert record fields to write
    named_today: int = 0


@dataclass
class LimitsStore:
    path: Path
    alerts: AlertsSpec = field(default_factory=AlertsSpec)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _conn: sqlite3.Connection | None = None

    def open(self) -> LimitsStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the hot question ------------------------------------------------------------------------
    def admit(self, requester: str, purpose: str | None, caps: Caps, individuals: Iterable[str],
              now: float | None = None) -> Admission:
        """Count one request (and the individuals it names, as keyed hashes) and say whether it is
        within ``caps``; a refused request counts towards the per-minute rate but names nobody."""
        assert self._conn is not None, "the limits store is not open"
        now = time.time() if now is None else now
        moment = datetime.fromtimestamp(now, timezone.utc)
        day, minute, purpose_key = moment.date().isoformat(), int(now // 60), purpose or ""
        wanted = list(dict.fromkeys(individuals))
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO minute_counts VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1",
                             (requester, purpose_key, minute))
                in_minute = conn.execute("SELECT n FROM minute_counts WHERE requester=? AND purpose=? AND minute=?",
                                         (requester, purpose_key, minute)).fetchone()[0]
                conn.execute("INSERT INTO day_counts (requester, purpose, day, n) VALUES (?, ?, ?, 1) "
                             "ON CONFLICT DO UPDATE SET n = n + 1", (requester, purpose_key, day))
                today = conn.execute("SELECT sum(n) FROM day_counts WHERE requester=? AND day=?",
                                     (requester, day)).fetchone()[0]
                known = {r[0] for r in conn.execute(
                    "SELECT individual FROM day_individuals WHERE requester=? AND purpose=? AND day=?",
                    (requester, purpose_key, day))}
                new = [i for i in wanted if i not in known]
                alerts = list(self._volume(conn, requester, moment.date(), today))
                self._peak(conn, requester, purpose_key, day, "requests_per_minute", in_minute, caps.requests_per_minute)
                refusal = over_rate(caps, in_minute)
                rule = "limits.requests_per_minute"
                if refusal is None:
                    refusal = over_individuals(caps, len(known), len(new))
                    rule = "limits.individuals_per_day"
                if refusal is not None:
                    conn.execute("UPDATE day_counts SET refused = refused + 1 WHERE requester=? AND purpose=? AND day=?",
                                 (requester, purpose_key, day))
                    conn.execute("COMMIT")
                    return Admission(refusal, rule, tuple(alerts), len(known))
                conn.executemany("INSERT OR IGNORE INTO day_individuals VALUES (?, ?, ?, ?)",
                                 [(requester, purpose_key, day, i) for i in new])
                self._peak(conn, requester, purpose_key, day, "individuals_per_day", len(known) + len(new),
                           caps.individuals_per_day)
                alerts += self._repeats(conn, requester, wanted, now)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return Admission(None, "", tuple(alerts), len(known) + len(new))

    # -- alerts ----------------------------------------------------------------------------------
    def _repeats(self, conn: sqlite3.Connection, requester: str, individuals: list[str], now: float) -> list[dict[str, object]]:
        spec = self.alerts
        since = now - spec.repeat_window_days * 86400
        out: list[dict[str, object]] = []
        for individual in individuals:
            conn.execute("INSERT INTO namings VALUES (?, ?, ?)", (requester, individual, now))
            times = conn.execute("SELECT count(*) FROM namings WHERE requester=? AND individual=? AND at>=?",
                                 (requester, individual, since)).fetchone()[0]
            if repeat_alert(times, spec.repeat_lookups):
                out.append({"alert": "repeated_lookup", "individual": individual, "times": times,
                            "window_days": spec.repeat_window_days,
                            "message": f"{requester} named the same individual {times} times within "
                                       f"{spec.repeat_window_days} days"})
        if individuals and int(now) % 97 == 0:  # now and then: forget what no window needs
            conn.execute("DELETE FROM namings WHERE at < ?", (since,))
        return out

    def _volume(self, conn: sqlite3.Connection, requester: str, today: date, count: int) -> list[dict[str, object]]:
        spec = self.alerts
        days = [(today - timedelta(days=d)).isoformat() for d in range(spec.volume_baseline_days, 0, -1)]
        rows = dict(conn.execute(
            f"SELECT day, sum(n) FROM day_counts WHERE requester=? AND day IN ({','.join('?' * len(days))}) GROUP BY day",
            (requester, *days)).fetchall())
        previous = [int(rows.get(d, 0)) for d in days]
        average = volume_alert(count, previous, spec.volume_factor, spec.volume_baseline_days)
        if average is None:
            return []
        return [{"alert": "volume_spike", "requests_today": count, "baseline_average": round(average, 2),
                 "factor": spec.volume_factor,
                 "message": f"{requester} sent {count} requests today, over {spec.volume_factor:g} times its "
                            f"{spec.volume_baseline_days}-day average of {average:.1f}"}]

    def _peak(self, conn: sqlite3.Connection, requester: str, purpose: str, day: str, what: str, value: int,
              cap: int | None) -> None:
        if cap is None:
            return
        conn.execute("INSERT INTO peaks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                     "value = max(value, excluded.value), cap = excluded.cap", (requester, purpose, day, what, value, cap))

    # -- the report ------------------------------------------------------------------------------
    def peaks(self, first_day: str, last_day: str) -> list[dict[str, object]]:
        """Each requester's highest use of each cap per day in [first_day, last_day]."""
        assert self._conn is not None
        rows = self._conn.execute("SELECT requester, purpose, day, what, value, cap FROM peaks WHERE day BETWEEN ? AND ? "
                                  "ORDER BY requester, day, what", (first_day, last_day)).fetchall()
        return [{"requester": r, "purpose": p or None, "day": d, "what": w, "value": v, "cap": c}
                for r, p, d, w, v, c in rows]

    def seed_day(self, requester: str, purpose: str | None, day: str, n: int) -> None:
        """Set one day's request count (tests and imports of older history)."""
        assert self._conn is not None
        with self._lock:
            self._conn.execute("INSERT INTO day_counts (requester, purpose, day, n) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT DO UPDATE SET n = excluded.n", (requester, purpose or "", day, n))
