"""The policy against the law, not just the schema (SB21-131 and the 2020 directive).

:func:`law_problems` reads a loaded policy (and, when given, the requesters) and returns what the law
forbids (``problems``: ``gateway serve`` refuses to start, ``check-policy`` exits 1) and what an
auditor should look at (``warnings``). Pure: no I/O.

Which tags hold immigration status and which personal identifying information is read from the
policy itself: a tag whose name says so (``immigration``/``status``, ``pii``/``personal``), or that
classifies a column the law names (``immigration_status``, ``country_of_citizenship``,
``place_of_birth``; ``first_name``, ``last_name``, ``date_of_birth``, ``ssn``, ``address_line1``).

>>> from gateway.policy.load import load_policy
>>> law_problems(load_policy("policies/colorado-dmv.yaml")).problems
()
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from gateway.policy.writes import grant_problems
from gateway.policy.law import CIVIL, EXCEPTIONS
from gateway.policy.policy import Policy
from gateway.policy.types import UNCLASSIFIED

LAW_VALID_DAYS = 365
#: documents that are not court-issued orders; the policy must refuse each as an order_reference
NOT_COURT_ORDERS = {
    "an immigration detainer (I-247)": "ICE Form I-247A immigration detainer",
    "an immigration warrant (I-200)": "Form I-200 warrant for arrest of alien",
    "an immigration warrant (I-205)": "Form I-205 warrant of removal",
    "an administrative subpoena": "DHS administrative subpoena",
}
_STATUS_COLUMNS = {"immigration_status", "country_of_citizenship", "place_of_birth"}
_PII_COLUMNS = {"first_name", "last_name", "date_of_birth", "ssn", "address_line1"}
_IMMIGRATION_AGENCY = re.compile(r"immigration|\bICE\b|\bCBP\b|\bUSCIS\b|\bHSI\b|homeland security", re.I)


@dataclass(frozen=True)
class LawCheck:
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def tag_roles(policy: Policy) -> tuple[frozenset[str], frozenset[str]]:
    """(status tags, personal-identifying tags) of ``policy``; ``unclassified`` is in both."""
    status, pii = {UNCLASSIFIED}, {UNCLASSIFIED}
    for tag in policy.file.tags:
        if re.search(r"immigration|status", tag):
            status.add(tag)
        if re.search(r"pii|personal|identif", tag):
            pii.add(tag)
    for listing in policy.file.classification.values():
        for column, tags in listing.items():
            if column in _STATUS_COLUMNS:
                status.update(tags)
            if column in _PII_COLUMNS:
                pii.update(tags)
    return frozenset(status), frozenset(pii)


def is_immigration_agency(requester: Any) -> bool:
    """An immigration agency, by the requesters file's kind (when it has one) or by its agency's name."""
    kind = getattr(requester, "kind", None)
    return kind == "immigration_agency" or bool(_IMMIGRATION_AGENCY.search(requester.agency or ""))


def _allowed(policy: Policy, grants: dict[str, str], default: str | None, tags: Iterable[str]) -> list[str]:
    fallback = default or policy.file.default_action
    out = []
    for tag in sorted(tags):
        action = grants.get(tag, "redact" if tag == UNCLASSIFIED and fallback == "allow" else fallback)
        if action == "allow":
            out.append(tag)
    return out


def law_problems(policy: Policy, requesters: Any = None, today: date | None = None) -> LawCheck:
    today = today or date.today()
    problems: list[str] = []
    warnings: list[str] = []
    status, pii = tag_roles(policy)
    protected = status | pii
    file = policy.file

    civil = file.purposes.get(CIVIL)
    if civil is not None:
        leaked = _allowed(policy, civil.grants, civil.default_action, protected | set(file.tags))
        if leaked:
            problems.append(f"purpose {CIVIL} lets civil immigration enforcement read {', '.join(leaked)}: "
                            "SB21-131 forbids providing personal identifying information or immigration status for it")
        if civil.exception:
            problems.append(f"purpose {CIVIL} is marked exception: it is barred, never an exception")
    for token, field in EXCEPTIONS.items():
        spec = file.purposes.get(token)
        if spec is None:
            continue
        if field not in spec.requires:
            problems.append(f"purpose {token} does not require {field}: the law's exception needs its justification"
                            + (" (SB21-131 requires a court-issued order)" if token == "court_order" else ""))
        if _allowed(policy, spec.grants, spec.default_action, status) and not spec.exception:
            warnings.append(f"purpose {token} releases immigration status but is not marked exception: "
                            "its answers would carry no use notice")
    for token, spec in file.purposes.items():
        if token in EXCEPTIONS or token == CIVIL:
            continue
        leaked = _allowed(policy, spec.grants, spec.default_action, status)
        if leaked:
            problems.append(f"purpose {token} releases immigration status ({', '.join(leaked)}) but is not one of "
                            "the law's exceptions")
    leaked = _allowed(policy, file.no_purpose.grants, file.no_purpose.default_action, status)
    if leaked:
        problems.append(f"no_purpose releases immigration status ({', '.join(leaked)}) to a request that states no purpose")

    ext = file.external_requesters
    if ext.certification_valid_days > LAW_VALID_DAYS:
        problems.append(f"external_requesters.certification_valid_days is {ext.certification_valid_days}: a "
                        f"certification counts for at most {LAW_VALID_DAYS} days (24-74-105 C.R.S.)")
    kept = sorted(t for t in pii - {UNCLASSIFIED} if ext.without_certification.get(t) not in ("deny", "redact"))
    if kept:
        problems.append(f"external_requesters.without_certification leaves {', '.join(kept)} readable by an outside "
                        "requester without a certification (24-74-105 C.R.S.)")

    _court_order_rules(policy, problems)
    if file.writes:
        lookup = (lambda name: getattr(requesters.lookup(name), "requester", None)) if requesters is not None else None
        problems.extend(grant_problems(file.writes, policy.tags_for, status,
                                       lambda s, t: list(policy.listed_columns(s, t)), lookup))
    if requesters is not None:
        _requesters(policy, requesters, today, problems, warnings)
    return LawCheck(tuple(problems), tuple(warnings))


def _court_order_rules(policy: Policy, problems: list[str]) -> None:
    checker = policy._checker  # noqa: SLF001 - the compiled rules are what the gateway applies
    for names, text in NOT_COURT_ORDERS.items():
        if not any(pattern.search(text) for pattern, _ in checker.not_court_issued):
            problems.append(f"order_reference would accept {names} ({text!r}) naming an order on file: list a "
                            "not_court_issued pattern for it (SB21-131 requires a court-issued order)")
    for order in policy.file.court_orders:
        for pattern, names in checker.not_court_issued:
            if pattern.search(f"{order.reference} {order.court} {order.description}"):
                problems.append(f"court order {order.reference} on file looks like {names}, which is not a court order")


def _requesters(policy: Policy, requesters: Any, today: date, problems: list[str], warnings: list[str]) -> None:
    from gateway.identity.certifications import expires_on

    status, pii = tag_roles(policy)
    days = policy.file.external_requesters.certification_valid_days
    for entry in requesters:
        req = entry.requester
        if is_immigration_agency(req):
            others = sorted(p for p in req.purposes if p != CIVIL)
            if others:
                problems.append(f"requester {req.name} ({req.agency}) is an immigration agency but may state "
                                f"{', '.join(others)}: it may use only {CIVIL}")
            if req.internal:
                problems.append(f"requester {req.name} ({req.agency}) is an immigration agency marked internal: true")
            if req.certification is not None:
                problems.append(f"requester {req.name} ({req.agency}) is an immigration agency with a certification "
                                "on file: it cannot certify that it will not use the data for immigration enforcement")
        for token in sorted(req.purposes):
            if policy.purpose(token) is None:
                problems.append(f"requester {req.name} may state {token}, which the policy does not define")
        if "governor_authorized" in req.purposes and not policy.file.authorizations:
            warnings.append(f"requester {req.name} may state governor_authorized but no authorization is on file")
        if "court_order" in req.purposes and not policy.file.court_orders:
            warnings.append(f"requester {req.name} may state court_order but no court order is on file")
        if req.internal or req.is_auditor:
            continue
        cert = req.certification
        if cert is None:
            if not is_immigration_agency(req):
                warnings.append(f"requester {req.name} is outside the agency with no certification on file: "
                                "it reads no personal identifying information")
            continue
        expiry = expires_on(cert, days)
        if cert.revoked_on is not None and cert.revoked_on <= today:
            warnings.append(f"requester {req.name}: certification {cert.label} was revoked on {cert.revoked_on}")
        elif not cert.complete:
            warnings.append(f"requester {req.name}: certification {cert.label} lacks a clause; it does not count")
        elif expiry < today:
            warnings.append(f"requester {req.name}: certification {cert.label} expired on {expiry}")
        elif expiry <= today + timedelta(days=30):
            warnings.append(f"requester {req.name}: certification {cert.label} expires on {expiry} (within 30 days)")
