"""The policy file format as pydantic models: what a DBA writes in ``policies/*.yaml``.

The shipped ``policies/colorado-dmv.yaml`` documents every key in its comments. Unknown keys are
errors everywhere (``extra="forbid"``) so a typo never silently widens access. Checks that need the
whole file (a grant naming an undeclared tag, a pattern that does not compile) live in
:func:`semantic_problems` so that the loader can point each one at its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.notices.due import NoticeRules
from gateway.policy.registries import Authorization, CourtOrder
from gateway.policy.writes import WriteGrant
from gateway.policy.types import JUSTIFICATION_FIELDS, PURPOSES, REQUESTER_KINDS, UNCLASSIFIED, Action, Purpose

Loc = tuple[str | int, ...]
PurposeToken = Purpose  # one list of purpose tokens: gateway.policy.types
JustificationField = Literal[JUSTIFICATION_FIELDS]  # type: ignore[valid-type]  # derived from PurposeClaim

TAG_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RELATION_NAME = re.compile(r"^[^.\s]+\.[^.\s]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class TagSpec(_Strict):
    """A classification tag. ``unclassified`` is built in and never declared."""

    description: str = Field(min_length=1)


class PurposeSpec(_Strict):
    """One purpose token: what justification it needs and what each tag gets under it."""

    description: str = ""
    requires: tuple[JustificationField, ...] = ()
    grants: dict[str, Action]
    exception: bool = False  # one of the directive's exceptions (returns immigration status)
    statutory_request: bool = False  # counted as a request for status in the quarterly report
    default_action: Action | None = None  # for tags not in grants; None: the file's default_action


class NoPurposeSpec(_Strict):
    """What a request without a stated purpose gets."""

    description: str = ""
    grants: dict[str, Action]
    default_action: Action | None = None


class ExternalSpec(_Strict):
    """Requesters outside the agency: what they lose without a current certification on file."""

    certification_valid_days: int = Field(365, ge=1, le=3660)
    without_certification: dict[str, Action] = Field(default_factory=lambda: {"pii": "deny"})
    without_purpose: dict[str, Action] = Field(default_factory=lambda: {"pii": "deny"})


class IndividualsSpec(_Strict):
    """What "naming an individual" means for this schema (SPEC section 9).

    ``keys`` groups the columns that hold one key (``person: [dmv.persons.person_id,
    dmv.licenses.person_id, ...]``); equality to values on a column of an ``identifying`` key names
    individuals; an equality join between two columns of a ``joins`` (or identifying) key carries
    the naming across relations; ``combinations`` are column sets that name an individual together.
    """

    tag: str = "pii"  # an answer carrying this tag must name the individuals it is about
    keys: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    identifying: tuple[str, ...] = ()
    joins: tuple[str, ...] = ()
    combinations: tuple[tuple[str, ...], ...] = ()
    max_values: int = Field(25, ge=1, le=10000)


class LimitSpec(_Strict):
    """Caps for one requester (and purpose); a key left out keeps the value of the level above."""

    rows_per_answer: int | None = Field(None, ge=1)
    individuals_per_day: int | None = Field(None, ge=1)
    requests_per_minute: int | None = Field(None, ge=1)
    bulk_access: bool | None = None  # True: need not name individuals (and no COPY/cursor refusal)


class LimitOverride(LimitSpec):
    requester: str = Field(min_length=1)
    purpose: PurposeToken | None = None  # None: every purpose of the requester


class LimitsSpec(_Strict):
    """Caps and rate limits. ``outside`` applies to requesters outside the agency, ``staff`` to the
    agency's own; ``overrides`` (most specific wins: requester + purpose, then requester)."""

    outside: LimitSpec = LimitSpec(rows_per_answer=100, individuals_per_day=200, requests_per_minute=120,
                                   bulk_access=False)
    staff: LimitSpec = LimitSpec(bulk_access=True)
    overrides: tuple[LimitOverride, ...] = ()


class AlertsSpec(_Strict):
    repeat_lookups: int = Field(5, ge=2)  # the same individual named this many times ...
    repeat_window_days: int = Field(7, ge=1)  # ... within this many days
    volume_factor: float = Field(3.0, gt=1)  # a day's requests over this times ...
    volume_baseline_days: int = Field(30, ge=2)  # ... the average of the days before
    near_cap_fraction: float = Field(0.8, gt=0, le=1)  # the report lists who came this close to a cap


class CaseNumberRule(_Strict):
    pattern: str = r"^[A-Za-z]{1,6}-[0-9]{2,4}-[0-9]{1,10}$"
    description: str = ""


class LegalCitationRule(_Strict):
    statute_patterns: tuple[str, ...] = Field(min_length=1)
    description: str = ""


class NotCourtIssued(_Strict):
    """A kind of document that is not a court-issued order (SB21-131), recognised by a pattern."""

    pattern: str
    names: str  # how the refusal names it, e.g. "an immigration detainer (I-247)"


class OrderReferenceRule(_Strict):
    not_court_issued: tuple[NotCourtIssued, ...] = ()
    description: str = ""


class AuthorizationIdRule(_Strict):
    description: str = ""


class JustificationRules(_Strict):
    case_number: CaseNumberRule = CaseNumberRule()
    legal_citation: LegalCitationRule
    order_reference: OrderReferenceRule = OrderReferenceRule()
    authorization_id: AuthorizationIdRule = AuthorizationIdRule()


class OriginRules(_Strict):
    """Requesters that relay for other agencies (a switch, a vendor): each request names its
    originating agency (``gateway.ori``, an NCIC ORI) and end user; immigration agencies' ORIs are refused."""

    ori_pattern: str = r"^[A-Z]{2}[A-Z0-9]{7}$"
    immigration_agency_oris: tuple[str, ...] = ()  # patterns (case-insensitive) of immigration agencies' ORIs
    description: str = ""


class PolicyFile(_Strict):
    """The whole policy file."""

    version: Literal[1] = 1
    name: str = ""
    description: str = ""
    tags: dict[str, TagSpec]
    search_path: tuple[str, ...] = ("dmv", "public")
    default_action: Action = "redact"
    classification: dict[str, dict[str, tuple[str, ...]]]
    purposes: dict[PurposeToken, PurposeSpec]
    no_purpose: NoPurposeSpec
    external_requesters: ExternalSpec = ExternalSpec()
    individuals: IndividualsSpec = IndividualsSpec()
    limits: LimitsSpec = LimitsSpec()
    alerts: AlertsSpec = AlertsSpec()
    justification: JustificationRules
    court_orders: tuple[CourtOrder, ...] = ()
    authorizations: tuple[Authorization, ...] = ()
    notices: NoticeRules = NoticeRules()  # subject notices: due in N (business) days, holidays
    originating_agencies: OriginRules = OriginRules()
    writes: tuple[WriteGrant, ...] = ()  # staff writes allowed per table and column (policy/writes.py)


def semantic_problems(model: PolicyFile) -> list[tuple[Loc, str]]:
    """Whole-file checks, each with the location of the offending key."""
    problems: list[tuple[Loc, str]] = []
    known = set(model.tags) | {UNCLASSIFIED}

    for tag in model.tags:
        if tag == UNCLASSIFIED:
            problems.append((("tags", tag), "'unclassified' is built in: do not declare it"))
        elif not TAG_NAME.match(tag):
            problems.append((("tags", tag), "a tag name is lower case letters, digits and _"))

    def check_tags(loc: Loc, tags: Iterable[str]) -> None:
        for tag in tags:
            if tag not in known:
                problems.append((loc + (tag,), f"unknown tag {tag!r} (declared: {', '.join(sorted(known))})"))

    for relation, columns in model.classification.items():
        if not RELATION_NAME.match(relation):
            problems.append((("classification", relation), "name a relation as schema.table"))
        for column, tags in columns.items():
            for tag in tags:
                if tag not in known:
                    problems.append(
                        (("classification", relation, column), f"unknown tag {tag!r} (declared: {', '.join(sorted(known))})")
                    )

    missing = [p for p in PURPOSES if p not in model.purposes]
    if missing:
        problems.append((("purposes",), f"every purpose token needs an entry; missing: {', '.join(missing)}"))
    for token, spec in model.purposes.items():
        check_tags(("purposes", token, "grants"), spec.grants)
    check_tags(("no_purpose", "grants"), model.no_purpose.grants)
    check_tags(("external_requesters", "without_certification"), model.external_requesters.without_certification)
    check_tags(("external_requesters", "without_purpose"), model.external_requesters.without_purpose)
    check_tags(("individuals", "tag"), (model.individuals.tag,))
    ind = model.individuals
    owner: dict[str, str] = {}
    for key, columns in ind.keys.items():
        for i, column in enumerate(columns):
            if column.count(".") != 2:
                problems.append((("individuals", "keys", key, i), "name a key column as schema.relation.column"))
            elif column in owner:
                problems.append((("individuals", "keys", key, i), f"{column} is already a column of key {owner[column]}"))
            owner[column] = key
    for field_name in ("identifying", "joins"):
        for i, key in enumerate(getattr(ind, field_name)):
            if key not in ind.keys:
                problems.append((("individuals", field_name, i), f"unknown key {key!r} (keys: {', '.join(sorted(ind.keys))})"))
    for i, combo in enumerate(ind.combinations):
        if len(combo) < 2 or len({c.rsplit(".", 1)[0] for c in combo}) != 1 or any(c.count(".") != 2 for c in combo):
            problems.append((("individuals", "combinations", i), "a combination is two or more columns of one relation (schema.relation.column)"))

    rules = model.justification
    _check_regex(problems, ("justification", "case_number", "pattern"), rules.case_number.pattern)
    for i, pattern in enumerate(rules.legal_citation.statute_patterns):
        _check_regex(problems, ("justification", "legal_citation", "statute_patterns", i), pattern)
    for i, entry in enumerate(rules.order_reference.not_court_issued):
        _check_regex(problems, ("justification", "order_reference", "not_court_issued", i, "pattern"), entry.pattern)

    _check_regex(problems, ("originating_agencies", "ori_pattern"), model.originating_agencies.ori_pattern)
    for i, pattern in enumerate(model.originating_agencies.immigration_agency_oris):
        _check_regex(problems, ("originating_agencies", "immigration_agency_oris", i), pattern)

    for i, grant in enumerate(model.writes):
        for kind in grant.kinds:
            if kind not in REQUESTER_KINDS:
                problems.append((("writes", i, "kinds"), f"unknown requester kind {kind!r} (kinds: {', '.join(REQUESTER_KINDS)})"))

    seen: set[str] = set()
    for i, order in enumerate(model.court_orders):
        key = order.reference.upper()
        if key in seen:
            problems.append((("court_orders", i, "reference"), f"court order {order.reference!r} is listed twice"))
        seen.add(key)
        if order.valid_until and order.valid_until < order.issued_on:
            problems.append((("court_orders", i, "valid_until"), "valid_until is before issued_on"))
    seen.clear()
    for i, auth in enumerate(model.authorizations):
        key = auth.id.upper()
        if key in seen:
            problems.append((("authorizations", i, "id"), f"authorization {auth.id!r} is listed twice"))
        seen.add(key)
        if auth.valid_from and auth.valid_until < auth.valid_from:
            problems.append((("authorizations", i, "valid_until"), "valid_until is before valid_from"))
    return problems


def _check_regex(problems: list[tuple[Loc, str]], loc: Loc, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        problems.append((loc, f"not a valid regular expression: {exc}"))
