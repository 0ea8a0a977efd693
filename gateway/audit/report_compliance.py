"""The report's compliance sections (SPEC 10): statutory-request counts, year-to-date figures,
certifications on file (and those expiring within 30 days), subject notices (overdue ones listed),
use notices given. Pure: records, certification rows and notices in, a frozen value out; rendered by
:mod:`gateway.audit.report_compliance_render`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from gateway.audit.attestation import is_immigration_agency, law_violation, released
from gateway.audit.record import parse_time, per_request

EXPIRING_DAYS = 30


@dataclass(frozen=True)
class StatutoryCount:
    purpose: str
    requests: int
    granted: int
    refused: int
    status_released: int


@dataclass(frozen=True)
class ComplianceSections:
    statutory: tuple[StatutoryCount, ...]
    statutory_total: int
    use_notices: int
    year_to_date: dict[str, Any]
    certifications: tuple[dict[str, Any], ...]
    expiring: tuple[dict[str, Any], ...]
    notices: dict[str, int]
    overdue: tuple[dict[str, Any], ...]
    relayed: tuple[dict[str, Any], ...] = ()  # requests a switch or vendor relayed, by originating agency
    writes: tuple[dict[str, Any], ...] = ()  # staff writes, by requester (allowed, refused, rows affected)


def _figures(records: Iterable[dict[str, Any]], start: datetime, end: datetime) -> tuple[dict[str, int], dict[str, list[int]], int]:
    totals: Counter[str] = Counter()
    by_purpose: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    use_notices = 0
    for record in records:
        if record.get("type") != "request":
            continue
        moment = parse_time(str(record.get("time")))
        if not start <= moment < end:
            continue
        status, _pii = released(record)
        denied = record.get("decision") == "deny"
        totals["requests"] += 1
        totals["refused"] += denied
        totals["status_released"] += bool(status)
        totals["immigration_agency"] += is_immigration_agency(record) or record.get("purpose") == "civil_immigration_enforcement"
        totals["barred"] += law_violation(record) is not None
        use_notices += bool(record.get("use_notice"))
        if record.get("statutory_request"):
            totals["statutory"] += 1
            row = by_purpose[str(record.get("purpose") or "none")]
            row[0] += 1
            row[1] += not denied
            row[2] += denied
            row[3] += bool(status)
    return dict(totals), by_purpose, use_notices


def build_compliance(records: Sequence[dict[str, Any]], quarter_start: datetime, quarter_end: datetime, *,
                     certifications: Sequence[dict[str, Any]] = (), notices: Sequence[Any] = (),
                     today: date | None = None) -> ComplianceSections:
    today = today or datetime.now(timezone.utc).date()
    totals, by_purpose, use_notices = _figures(records, quarter_start, quarter_end)
    year_start = datetime(quarter_start.year, 1, 1, tzinfo=timezone.utc)
    ytd, _, ytd_notices = _figures(records, year_start, quarter_end)
    in_year = [n for n in notices if year_start.isoformat()[:10] <= n.requested_at[:10] < quarter_end.isoformat()[:10]]
    in_quarter = [n for n in in_year if n.requested_at[:10] >= quarter_start.isoformat()[:10]]
    ytd_figures = {
        "period_start": year_start.date().isoformat(), "period_end": quarter_end.date().isoformat(),
        "requests": ytd.get("requests", 0), "statutory_requests": ytd.get("statutory", 0),
        "status_released": ytd.get("status_released", 0), "refused": ytd.get("refused", 0),
        "immigration_agency": ytd.get("immigration_agency", 0), "barred": ytd.get("barred", 0),
        "use_notices": ytd_notices, "subject_notices": len(in_year),
    }  # fmt: skip
    statutory = tuple(StatutoryCount(p, *counts) for p, counts in sorted(by_purpose.items(), key=lambda kv: -kv[1][0]))
    expiring = tuple(c for c in certifications if c.get("status") == "current" and c.get("days_left") is not None
                     and int(c["days_left"]) <= EXPIRING_DAYS)  # fmt: skip
    overdue = tuple(n.as_dict() for n in notices if n.overdue(today))
    states = Counter(n.status for n in in_quarter)
    return ComplianceSections(
        statutory=statutory,
        statutory_total=totals.get("statutory", 0),
        use_notices=use_notices,
        year_to_date=ytd_figures,
        certifications=tuple(certifications),
        expiring=expiring,
        notices={"queued_in_quarter": len(in_quarter), "sent": states["sent"], "deferred": states["deferred"],
                 "pending": states["queued"], "overdue_now": len(overdue)},
        overdue=overdue,
        relayed=_relayed(records, quarter_start, quarter_end),
        writes=_writes(records, quarter_start, quarter_end),
    )


_WRITE_RULES = ("statement.insert", "statement.update", "statement.delete", "statement.merge")


def is_write(record: dict[str, Any]) -> bool:
    """A request that asked to write: planned as a staff write, or refused as one."""
    rule = str(record.get("rule") or "")
    return record.get("statement_kind") == "write" or rule.startswith("write.") or rule in _WRITE_RULES


def _writes(records: Sequence[dict[str, Any]], start: datetime, end: datetime) -> tuple[dict[str, Any], ...]:
    affected = {r.get("request_id"): int(r.get("rows_affected") or 0) for r in per_request(records)
                if r.get("type") == "outcome" and "rows_affected" in r}
    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("type") != "request" or not is_write(record):
            continue
        if not start <= parse_time(str(record.get("time"))) < end:
            continue
        row = rows.setdefault(str(record.get("requester")), {
            "requester": str(record.get("requester")), "agency": record.get("agency") or "", "writes": 0,
            "allowed": 0, "refused": 0, "rows_affected": 0, "status_writes": 0, "refused_24_74_104": 0})
        row["writes"] += 1
        if record.get("decision") == "deny":
            row["refused"] += 1
            row["refused_24_74_104"] += record.get("rule") == "write.24_74_104"
            continue
        row["allowed"] += 1
        row["rows_affected"] += affected.get(record.get("request_id"), 0)
        row["status_writes"] += any("write" in (a.get("usage") or ()) and a.get("tags") and
                                    any("status" in t or "immigration" in t for t in a["tags"])
                                    for a in record.get("accesses") or ())
    return tuple(sorted(rows.values(), key=lambda r: (-r["writes"], r["requester"])))


def _relayed(records: Iterable[dict[str, Any]], start: datetime, end: datetime) -> tuple[dict[str, Any], ...]:
    counts: Counter[tuple[str, str, str]] = Counter()
    refused: Counter[tuple[str, str, str]] = Counter()
    for record in records:
        origin = record.get("origin")
        if record.get("type") != "request" or not isinstance(origin, dict):
            continue
        if not start <= parse_time(str(record.get("time"))) < end:
            continue
        key = (str(record.get("requester")), str(origin.get("ori") or "(none)"), str(origin.get("end_user") or "(none)"))
        counts[key] += 1
        refused[key] += record.get("decision") == "deny"
    return tuple({"requester": r, "ori": o, "end_user": u, "requests": n, "refused": refused[(r, o, u)]}
                 for (r, o, u), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
