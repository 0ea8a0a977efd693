"""A synthetic, deterministic quarter of request-log records (for report tests and the sample report).

Shaped like a demo run against the reference requesters (SPEC section 3): clerks doing service
delivery, CBI with case numbers, the Attorney General under court orders, the Governor's office,
ICE asking for civil immigration enforcement (redacted or refused), a few refusals, one bulk
request, one person looked up again and again.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gateway.audit.literals import LiteralHasher
from gateway.audit.record import (
    build_login_failed_record,
    build_outcome_record,
    build_purpose_change_record,
    build_request_record,
    format_time,
)
from gateway.audit.record import SCHEMA_VERSION

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def outcomes_dict(entries: list[list[Any]], instance: str = "gw-a") -> dict[str, Any]:
    """An ``outcomes`` record as the writer seals it (before the chain members), its time the last
    entry's: ``entries`` are [request_id, status, rows, persons, duration_us, sqlstate, time_us]."""
    last = _EPOCH + timedelta(microseconds=entries[-1][6])
    return {"schema": SCHEMA_VERSION, "type": "outcomes", "time": format_time(last), "instance": instance,
            "outcomes": entries}

STATUS = "dmv.lawful_presence.immigration_status"
AGENCIES = {
    "dmv_clerk": "Colorado DMV",
    "dmv_clerk2": "Colorado DMV",
    "cbi_analyst": "Colorado Bureau of Investigation",
    "ag_counsel": "Colorado Attorney General",
    "gov_office": "Office of the Governor",
    "ice_ero": "U.S. Immigration and Customs Enforcement, Enforcement and Removal Operations",
    "inspector": "Colorado DMV, Office of the Inspector",
}


EXCEPTION_PURPOSES = ("criminal_law_enforcement", "required_by_law", "court_order", "governor_authorized")
CERTIFIED = {
    "cbi_analyst": {"status": "current", "id": "CBI_ANALYST-CERT-2026"},
    "ag_counsel": {"status": "current", "id": "AG_COUNSEL-CERT-2026"},
    "gov_office": {"status": "current", "id": "GOV_OFFICE-CERT-2026"},
    "ice_ero": {"status": "certification_missing", "detail": "has no certification on file"},
}


def _acc(column: str, tags: list[str], usage: str = "output") -> dict[str, Any]:
    return {"column": column, "tags": tags, "usage": [usage]}


def quarter_records(hasher: LiteralHasher, *, seed: int = 4, n: int = 1200, start: datetime | None = None,
                    barred: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """``n`` requests (with outcomes) and a few events over 2026-Q3, in time order. The gateway was
    upgraded mid-quarter: outcomes are one ``outcome`` record each before, folded three at a time into
    ``outcomes`` records after (a log holds both kinds across an upgrade; readers must read both)."""
    rng = random.Random(seed)
    t0 = start or datetime(2026, 7, 1, 8, tzinfo=timezone.utc)
    span = (datetime(2026, 10, 1, tzinfo=timezone.utc) - t0).total_seconds() - 86400
    times = sorted(t0 + timedelta(seconds=rng.random() * span) for _ in range(n))
    out: list[dict[str, Any]] = []
    weights = [("dmv_clerk", 50), ("dmv_clerk2", 30), ("cbi_analyst", 10), ("ag_counsel", 4), ("gov_office", 2),
               ("ice_ero", 3), ("inspector", 1)]  # fmt: skip
    names = [w[0] for w in weights]
    upgraded = t0 + timedelta(seconds=span / 2)
    folded: list[list[Any]] = []
    for i, moment in enumerate(times):
        who = rng.choices(names, [w[1] for w in weights])[0]
        rid = f"q3-{i:05d}"
        lic = f"CO{rng.randrange(10**8):08d}"
        if who == "dmv_clerk" and i % 40 == 7:
            lic = "CO00042042"  # one person looked up again and again
        common = dict(hasher=hasher, request_id=rid, requester=who, agency=AGENCIES[who], instance="gw-a",
                      front_door=rng.choice(["pg", "http"]), client_addr="10.0.3.%d" % rng.randrange(2, 200),
                      tls=True, time=format_time(moment), policy_digest="sha256:5e1f0c")  # fmt: skip
        sql = f"SELECT p.first_name, p.last_name, l.status FROM dmv.persons p JOIN dmv.licenses l USING (person_id) WHERE l.license_number = '{lic}'"
        accesses = [_acc("dmv.persons.first_name", ["pii"]), _acc("dmv.persons.last_name", ["pii"]),
                    _acc("dmv.licenses.status", ["pii"]), _acc("dmv.licenses.license_number", ["pii"], "where")]  # fmt: skip
        decision, reason, rule, masked, claim, persons = "allow", "no classified column reaches the result", "", [], None, 1
        entry = None
        if who in ("dmv_clerk", "dmv_clerk2", "inspector"):
            claim = {"purpose": "service_delivery"}
            if rng.random() < 0.15:
                sql = sql.replace("l.status", "lp.immigration_status") + " -- joined lawful_presence"
                accesses.append(_acc(STATUS, ["immigration_status"]))
                decision, reason, masked = "redact", "immigration status is not released for service_delivery", [STATUS]
                rule = "purpose.service_delivery"
            elif rng.random() < 0.04:
                accesses.append(_acc(STATUS, ["immigration_status"], "where"))
                decision, reason, rule = "deny", "immigration status influences the result (WHERE)", "influence.where"
        elif who == "cbi_analyst":
            claim = {"purpose": "criminal_law_enforcement", "case_number": f"CR-2026-{rng.randrange(1, 400):04d}"}
            if rng.random() < 0.3:
                accesses.append(_acc(STATUS, ["immigration_status"]))
                decision, reason, rule = "allow", "exception criminal_law_enforcement with case number", "purpose.cle"
            if rng.random() < 0.05:
                claim = {"purpose": "criminal_law_enforcement"}
                decision, reason, rule = "deny", "criminal_law_enforcement needs a case_number", "justification.missing"
        elif who == "ag_counsel":
            claim = rng.choice([{"purpose": "court_order", "order_reference": "2026CV001234"},
                                {"purpose": "required_by_law", "legal_citation": "C.R.S. 42-2-121"}])  # fmt: skip
            accesses.append(_acc(STATUS, ["immigration_status"]))
            reason, rule = f"exception {claim['purpose']}", f"purpose.{claim['purpose']}"
            if claim["purpose"] == "court_order":
                entry = {"kind": "court_order", "id": "2026CV001234", "scope": "schema dmv",
                         "label": "court order 2026CV001234 (Denver District Court, Judge A. Example, 2026-06-15)"}
            if rng.random() < 0.2:
                claim = {"purpose": "court_order", "order_reference": "ICE I-247 detainer"}
                decision, reason, rule = "deny", "an immigration detainer (I-247) is not a court-issued order", "court_order.not_court"
        elif who == "gov_office":
            claim = {"purpose": "governor_authorized", "authorization_id": "GOV-2026-0001"}
            accesses.append(_acc(STATUS, ["immigration_status"]))
            reason, rule = "exception governor_authorized", "purpose.governor_authorized"
            entry = {"kind": "authorization", "id": "GOV-2026-0001", "scope": "schema dmv",
                     "label": "authorization GOV-2026-0001 (Office of the Governor of Colorado)"}
        elif who == "ice_ero":
            claim = {"purpose": "civil_immigration_enforcement"}
            accesses.append(_acc(STATUS, ["immigration_status"]))
            if rng.random() < 0.6:
                decision, reason, rule = "deny", "no personal identifying information for civil immigration enforcement", "purpose.civil_immigration"
            else:
                sql = "SELECT count(*) FROM dmv.licenses WHERE issue_date >= '2026-01-01'"
                accesses = [_acc("dmv.licenses.issue_date", ["pii"], "where")]
                decision, reason, rule = "deny", "issue_date identifies a person: refused for civil immigration enforcement", "purpose.civil_immigration"
            if barred and i % 7 == 0:  # a misconfigured policy let status out: the attestation must be refused
                decision, reason, rule, masked = "allow", "misconfigured grant", "purpose.civil_immigration", []
        if who == "inspector" and i % 5 == 0:
            sql = "SELECT person_id, first_name, last_name, city FROM dmv.persons WHERE county = 'Denver'"
            persons = rng.randrange(800, 3000)
        out.append(build_request_record(
            **common, claim=claim, statement_kind="select",
            statutory_request=claim is not None and claim["purpose"] != "service_delivery", sql_received=sql, sql_sent=sql, params=[],
            accesses=accesses, decision=decision, reason=reason, rule=rule, registry_entry=entry,
            certification=CERTIFIED.get(who), use_notice=decision != "deny" and claim is not None
            and claim["purpose"] in EXCEPTION_PURPOSES,
            redacted=["immigration_status"] if masked else [], masked=masked,
            error_code="policy_denied" if decision == "deny" else None,
            sqlstate="42501" if decision == "deny" else None,
        ))  # fmt: skip
        if decision != "deny" and moment < upgraded:
            out.append(build_outcome_record(
                request_id=rid, rows_returned=persons, persons_returned=persons,
                duration_ms=rng.uniform(0.8, 12.0), instance="gw-a", time=format_time(moment + timedelta(milliseconds=5)),
            ))  # fmt: skip
        elif decision != "deny":
            ended = (moment + timedelta(milliseconds=5) - _EPOCH) // timedelta(microseconds=1)
            folded.append([rid, "ok", persons, persons, int(rng.uniform(0.8, 12.0) * 1000), None, ended])
            if len(folded) == 3:
                out.append(outcomes_dict(folded))
                folded = []
        if i % 150 == 3:
            out.append(build_login_failed_record(user="ice_ero", front_door="pg", client_addr="198.51.100.7",
                                                 tls=True, reason="wrong password", instance="gw-a",
                                                 time=format_time(moment + timedelta(seconds=1))))  # fmt: skip
        if i % 200 == 11:
            out.append(build_purpose_change_record(requester="cbi_analyst", agency=AGENCIES["cbi_analyst"], front_door="pg",
                                                   client_addr="10.0.3.9", tls=True, previous_purpose=None,
                                                   claim={"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"},
                                                   accepted=True, instance="gw-a", time=format_time(moment + timedelta(seconds=2))))  # fmt: skip
    if folded:
        out.append(outcomes_dict(folded))
    return out


def write_quarter_log(folder: Path, n: int, *, instance: str = "gw-a") -> None:
    """A real request log in ``folder`` (requests.jsonl, hash-chained) holding ``quarter_records(n=n)``."""
    from gateway.audit.file_sink import AuditLog

    async def write() -> None:
        log = AuditLog(folder / "requests.jsonl", instance=instance, rotate_daily=False)
        await log.start()
        for record in quarter_records(log.hasher, n=n):
            await log.append(record)
        await log.close()

    asyncio.run(write())
