"""The quarterly report (SB21-131 request log): pure aggregation over request-log records.

:func:`build_report` takes the records of the log (any order of files already resolved), the quarter
and the chain verification result, and returns a frozen :class:`QuarterReport`: requests by agency,
requester, purpose and decision; every request that touched immigration-status information and under
which exception; every refusal; requests from immigration agencies or for civil immigration
enforcement; bulk and unusual access; and the attestation that no request was granted for a barred
purpose, which is refused (with the reasons) when the log shows one or the chain is broken.
Renderers live in :mod:`gateway.audit.report_render`. No I/O here.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from gateway.audit.attestation import is_immigration_agency as _agency_of, law_violation
from gateway.audit.record import parse_time
from gateway.audit.search import join_outcomes
from gateway.policy.types import JUSTIFICATION_FIELDS

#: The exception purposes under which immigration-status information may be released, with the
#: justification field each requires.
EXCEPTIONS = {
    "criminal_law_enforcement": "case_number",
    "required_by_law": "legal_citation",
    "court_order": "order_reference",
    "governor_authorized": "authorization_id",
}
CIVIL_IMMIGRATION = "civil_immigration_enforcement"
DECISIONS = ("allow", "redact", "deny")
_IMMIGRATION_AGENCY = re.compile(r"immigration|\bICE\b|\bCBP\b|\bUSCIS\b|\bHSI\b|homeland security", re.I)
_VALUE_TOKEN = re.compile(r"(?<!limit )(?<!offset )'(h:[0-9a-f]{16})'", re.I)


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = re.fullmatch(r"(\d{4})-?Q([1-4])", text.strip(), re.I)
        if not match:
            raise ValueError(f"a quarter is written like 2026-Q3, not {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def start(self) -> datetime:
        return datetime(self.year, 3 * self.number - 2, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        """First instant after the quarter."""
        if self.number == 4:
            return datetime(self.year + 1, 1, 1, tzinfo=timezone.utc)
        return datetime(self.year, 3 * self.number + 1, 1, tzinfo=timezone.utc)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


@dataclass(frozen=True)
class Thresholds:
    """What counts as bulk or unusual access (settable from the command line)."""

    bulk_persons: int = 100  # distinct persons returned by one request
    requests_per_requester: int = 1000  # requests by one requester in the quarter
    repeated_lookups: int = 5  # requests by one requester naming the same individual ...
    repeat_window_days: int = 7  # ... within this many days (records that name their individuals)
    individuals_per_day: int | None = 200  # the caps outside requesters are measured against (SPEC 9)
    requests_per_minute: int | None = 120
    near_cap_fraction: float = 0.8  # "came close to a cap": this share of it or more


@dataclass(frozen=True)
class Verification:
    """The chain verification result for the log the report was made from."""

    ok: bool
    summary: str
    findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Count:
    key: str
    total: int
    allow: int = 0
    redact: int = 0
    deny: int = 0
    agency: str = ""


@dataclass(frozen=True)
class Row:
    """One request as the report lists it."""

    time: str
    request_id: str
    requester: str
    agency: str
    purpose: str
    decision: str
    reason: str = ""
    rule: str = ""
    justification: str = ""
    columns: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    persons: int | None = None
    rows: int | None = None


@dataclass(frozen=True)
class Unusual:
    kind: str  # "bulk", "volume", "repeated lookup", "alert", "cap reached", "near cap"
    requester: str
    detail: str
    count: int


@dataclass(frozen=True)
class Attestation:
    made: bool
    statement: str
    violations: tuple[Row, ...] = ()


@dataclass(frozen=True)
class QuarterReport:
    quarter: str
    period_start: str
    period_end: str
    totals: dict[str, int]
    by_agency: tuple[Count, ...]
    by_requester: tuple[Count, ...]
    by_purpose: tuple[Count, ...]
    by_week: tuple[Count, ...]
    immigration: tuple[Row, ...]
    refusals: tuple[Row, ...]
    immigration_agencies: tuple[Row, ...]
    unusual: tuple[Unusual, ...]
    verification: Verification
    attestation: Attestation
    login_failures: int = 0
    purpose_changes: int = 0
    instances: tuple[str, ...] = field(default=())
    #: the log's end when the report was made, per instance: the next ``audit verify --since-report``
    #: proves nothing up to it was cut off
    chain_tips: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: statutory counts, year to date, certifications, subject notices (gateway.audit.report_compliance)
    compliance: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tagged(record: dict[str, Any], word: str) -> list[str]:
    return [a["column"] for a in record.get("accesses") or [] if any(word in t for t in a.get("tags", ()))]


def released_columns(record: dict[str, Any], word: str) -> tuple[str, ...]:
    """Columns tagged ``word`` that reached the requester: touched, not masked, request not denied."""
    if record.get("decision") == "deny":
        return ()
    masked = set(record.get("masked") or ())
    return tuple(c for c in _tagged(record, word) if c not in masked)


def justification_text(record: dict[str, Any]) -> str:
    fields = record.get("justification") or {}
    return "; ".join(f"{name}: {fields[name]}" for name in JUSTIFICATION_FIELDS if fields.get(name))


def barred_reason(record: dict[str, Any]) -> str | None:
    """Why granting this request was barred, or None when it was lawful (or refused): the law's rules
    applied to the record alone (:mod:`gateway.audit.attestation`), never the policy in force."""
    return law_violation(record)


def is_immigration_agency(agency: str | None) -> bool:
    return bool(agency and _IMMIGRATION_AGENCY.search(agency))


def _row(record: dict[str, Any], *, reason: str | None = None) -> Row:
    outcome = record.get("outcome") or {}
    return Row(
        time=str(record.get("time", "")),
        request_id=str(record.get("request_id") or ""),
        requester=str(record.get("requester") or ""),
        agency=str(record.get("agency") or ""),
        purpose=str(record.get("purpose") or "none"),
        decision=str(record.get("decision") or ""),
        reason=reason if reason is not None else str(record.get("reason") or ""),
        rule=str(record.get("rule") or ""),
        justification=justification_text(record),
        columns=tuple(_tagged(record, "immigration")),
        released=released_columns(record, "immigration"),
        persons=outcome.get("persons_returned"),
        rows=outcome.get("rows_returned"),
    )


def _bulk(record: dict[str, Any], threshold: int) -> tuple[int, str] | None:
    """(count, detail) when the request returned ``threshold`` persons or more, else None.

    When the outcome does not count distinct persons (``persons_returned`` null: the front doors do
    not count them yet), the rows of an answer that released a personal-identifying column stand in
    for them: at most one person a row is not guaranteed, so the detail says it is a row count.
    """
    outcome = record.get("outcome") or {}
    rid = record.get("request_id")
    persons = outcome.get("persons_returned")
    if isinstance(persons, int):
        return (persons, f"{persons} persons in request {rid}") if persons >= threshold else None
    rows = outcome.get("rows_returned")
    if not isinstance(rows, int) or rows < threshold or record.get("decision") == "deny":
        return None
    masked = set(record.get("masked") or ())
    if not any("output" in a.get("usage", ()) and a.get("column") not in masked
               and any("pii" in t for t in a.get("tags", ())) for a in record.get("accesses") or []):
        return None
    return rows, f"{rows} rows with personal identifying information in request {rid} (persons not counted)"


def _week_of(moment: datetime) -> str:
    """The Monday of ``moment``'s week (UTC), as a date."""
    day = moment.astimezone(timezone.utc).date()
    return date.fromordinal(day.toordinal() - day.weekday()).isoformat()


def _counts(groups: dict[str, Counter[str]], agencies: dict[str, str] | None = None) -> tuple[Count, ...]:
    out = [
        Count(key, sum(c.values()), c["allow"], c["redact"], c["deny"], (agencies or {}).get(key, ""))
        for key, c in groups.items()
    ]
    return tuple(sorted(out, key=lambda c: (-c.total, c.key)))


def build_report(
    records: Iterable[dict[str, Any]],
    quarter: Quarter,
    verification: Verification,
    thresholds: Thresholds = Thresholds(),
) -> QuarterReport:
    """Aggregate the records of ``quarter`` (others are ignored) into a :class:`QuarterReport`."""
    by_agency: dict[str, Counter[str]] = defaultdict(Counter)
    by_requester: dict[str, Counter[str]] = defaultdict(Counter)
    by_purpose: dict[str, Counter[str]] = defaultdict(Counter)
    by_week: dict[str, Counter[str]] = defaultdict(Counter)
    requester_agency: dict[str, str] = {}
    totals: Counter[str] = Counter()
    immigration, refusals, agencies_rows, violations = [], [], [], []
    unusual: list[Unusual] = []
    lookups: Counter[tuple[str, str]] = Counter()
    namings: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    day_individuals: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    minutes: Counter[tuple[str, str, str]] = Counter()
    cap_refusals: Counter[tuple[str, str]] = Counter()
    events: Counter[str] = Counter()
    instances: set[str] = set()
    records = list(records)
    tips = chain_tips(records)
    for record in join_outcomes(records):
        moment = parse_time(str(record.get("time")))
        if not quarter.start <= moment < quarter.end:
            continue
        instances.add(str(record.get("instance", "")))
        if record.get("type") == "alert":
            unusual.append(Unusual("alert", str(record.get("requester") or "(unknown)"),
                                   f"{record.get('alert')}: {record.get('message', '')} ({record.get('time')})",
                                   int(record.get("times") or record.get("requests_today") or 1)))
        if record.get("type") != "request":
            events[str(record.get("type"))] += 1
            continue
        decision = str(record.get("decision"))
        requester = str(record.get("requester") or "(unknown)")
        agency = str(record.get("agency") or "(unknown)")
        purpose = str(record.get("purpose") or "none")
        totals["requests"] += 1
        totals[decision] += 1
        by_agency[agency][decision] += 1
        by_requester[requester][decision] += 1
        by_purpose[purpose][decision] += 1
        by_week[_week_of(moment)][decision] += 1
        requester_agency[requester] = agency
        if _tagged(record, "immigration"):
            immigration.append(_row(record))
        if decision == "deny":
            refusals.append(_row(record))
        if _agency_of(record) or purpose == CIVIL_IMMIGRATION:
            agencies_rows.append(_row(record))
        barred = barred_reason(record)
        if barred:
            violations.append(_row(record, reason=barred))
        bulk = _bulk(record, thresholds.bulk_persons)
        if bulk is not None:
            unusual.append(Unusual("bulk", requester, bulk[1], bulk[0]))
        if record.get("requester_kind") is not None:  # a record that lists the individuals it named (hashed)
            if decision != "deny":
                for individual in record.get("individuals") or ():
                    namings[(requester, str(individual))].append(moment)
                    day_individuals[(requester, purpose, moment.date().isoformat())].add(str(individual))
        else:  # older records: every literal value counts as a look-up
            values = set(_VALUE_TOKEN.findall(str(record.get("sql_received") or "")))
            values.update(str(p) for p in record.get("params") or [] if str(p).startswith("h:"))
            for value in values:
                lookups[(requester, value)] += 1
        if str(record.get("requester_kind") or "internal") != "internal":
            minutes[(requester, purpose, moment.strftime("%Y-%m-%d %H:%M"))] += 1
        if str(record.get("rule") or "").startswith("limits."):
            cap_refusals[(requester, str(record.get("rule")))] += 1
    for requester, counts in by_requester.items():
        total = sum(counts.values())
        if total >= thresholds.requests_per_requester:
            unusual.append(Unusual("volume", requester, f"{total} requests in the quarter", total))
    for (requester, value), count in lookups.items():
        if count >= thresholds.repeated_lookups:
            unusual.append(Unusual("repeated lookup", requester, f"value {value} in {count} requests", count))
    unusual += _repeated(namings, thresholds)
    unusual += _near_caps(day_individuals, minutes, cap_refusals, thresholds)
    attestation = _attest(quarter, verification, violations)
    return QuarterReport(
        quarter=str(quarter),
        period_start=quarter.start.date().isoformat(),
        period_end=quarter.end.date().isoformat(),
        totals={"requests": totals["requests"], **{d: totals[d] for d in DECISIONS}},
        by_agency=_counts(by_agency),
        by_requester=_counts(by_requester, requester_agency),
        by_purpose=_counts(by_purpose),
        by_week=tuple(sorted(_counts(by_week), key=lambda c: c.key)),
        immigration=tuple(immigration),
        refusals=tuple(refusals),
        immigration_agencies=tuple(agencies_rows),
        unusual=tuple(sorted(unusual, key=lambda u: (u.kind, -u.count, u.requester))),
        verification=verification,
        attestation=attestation,
        login_failures=events["login_failed"],
        purpose_changes=events["purpose_change"],
        instances=tuple(sorted(instances)),
        chain_tips=tips,
    )


def chain_tips(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last ``seq``, its ``hash`` and time, per instance, over every record read (not only the quarter's)."""
    tips: dict[str, dict[str, Any]] = {}
    for record in records:
        seq = record.get("seq")
        if not isinstance(seq, int) or not isinstance(record.get("hash"), str):
            continue
        instance = str(record.get("instance", ""))
        if seq > tips.get(instance, {}).get("seq", 0):
            tips[instance] = {"seq": seq, "hash": record["hash"], "time": record.get("time")}
    return tips


def _repeated(namings: dict[tuple[str, str], list[datetime]], thresholds: Thresholds) -> list[Unusual]:
    """One requester naming the same individual ``repeated_lookups`` times within the window."""
    out = []
    window = thresholds.repeat_window_days * 86400
    for (requester, individual), times in namings.items():
        times.sort()
        best, start = 0, 0
        for end in range(len(times)):
            while (times[end] - times[start]).total_seconds() > window:
                start += 1
            best = max(best, end - start + 1)
        if best >= thresholds.repeated_lookups:
            out.append(Unusual("repeated lookup", requester,
                               f"individual {individual} named {best} times within {thresholds.repeat_window_days} days", best))
    return out


def _near_caps(day_individuals: dict[tuple[str, str, str], set[str]], minutes: Counter[tuple[str, str, str]],
               cap_refusals: Counter[tuple[str, str]], thresholds: Thresholds) -> list[Unusual]:
    """Who reached a cap (refusals by a ``limits.*`` rule) and who came close to one."""
    out = [Unusual("cap reached", requester, f"{n} requests refused by {rule}", n)
           for (requester, rule), n in cap_refusals.items()]
    fraction = thresholds.near_cap_fraction
    cap = thresholds.individuals_per_day
    if cap:
        for (requester, purpose, day), named in day_individuals.items():
            if len(named) >= fraction * cap:
                out.append(Unusual("near cap", requester,
                                   f"{len(named)} of {cap} individuals per day on {day} ({purpose})", len(named)))
    cap = thresholds.requests_per_minute
    if cap:
        peaks: dict[tuple[str, str], tuple[int, str]] = {}
        for (requester, purpose, minute), n in minutes.items():
            if n >= fraction * cap and n > peaks.get((requester, purpose), (0, ""))[0]:
                peaks[(requester, purpose)] = (n, minute)
        for (requester, purpose), (n, minute) in peaks.items():
            out.append(Unusual("near cap", requester, f"{n} of {cap} requests per minute at {minute} ({purpose})", n))
    return out


def _attest(quarter: Quarter, verification: Verification, violations: list[Row]) -> Attestation:
    if not verification.ok:
        return Attestation(
            False,
            f"The attestation for {quarter} cannot be made: the request log's chain is broken "
            f"({verification.summary}), so the log cannot show that no request was granted for a barred purpose.",
            tuple(violations),
        )
    if violations:
        return Attestation(
            False,
            f"The attestation for {quarter} cannot be made: the request log shows {len(violations)} request(s) "
            "granted for a barred purpose, listed below.",
            tuple(violations),
        )
    return Attestation(
        True,
        f"For {quarter}, the request log (chain verified) shows no request granted for a barred purpose: "
        "immigration-status information was released only under an exception with its justification, "
        "and nothing identifying was released for civil immigration enforcement.",
    )
