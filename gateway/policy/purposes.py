"""Justification checks for stated purposes: case numbers, legal citations, court orders, authorizations.

Each check either returns a short phrase for the record (``case CR-2026-0042``) or raises
:class:`~gateway.errors.PurposeRefused` whose message names the field and why it was refused. The
patterns and the lists of orders and authorizations come from the policy file, compiled once.

>>> justification_summary(PurposeClaim("criminal_law_enforcement", case_number=" CR-2026-0042 "))
'case_number=CR-2026-0042'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from gateway.errors import PurposeRefused
from gateway.policy.model import PolicyFile
from gateway.policy.registries import Authorization, CourtOrder, RegistryEntry, entry_of
from gateway.policy.types import JUSTIFICATION_FIELDS, PurposeClaim

COURT_ISSUED_LAW = "SB21-131 requires a court-issued order"


def field_value(claim: PurposeClaim, name: str) -> str | None:
    """A justification field stripped of surrounding blanks; empty text counts as absent."""
    value = getattr(claim, name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def justification_summary(claim: PurposeClaim) -> str:
    """The justification fields present in ``claim``, as ``field=value`` joined by ``; ``."""
    parts = []
    for name in JUSTIFICATION_FIELDS:
        value = field_value(claim, name)
        if value is not None:
            parts.append(f"{name}={value}")
    return "; ".join(parts)


def _refuse(field: str, why: str) -> PurposeRefused:
    return PurposeRefused(f"gateway: purpose refused: {field} {why}", rule=f"justification.{field}")


@dataclass(frozen=True)
class JustificationChecker:
    """The compiled justification rules of one policy."""

    case_number: re.Pattern[str]
    statutes: tuple[re.Pattern[str], ...]
    not_court_issued: tuple[tuple[re.Pattern[str], str], ...]
    court_orders: dict[str, CourtOrder]
    authorizations: dict[str, Authorization]

    @classmethod
    def from_file(cls, model: PolicyFile) -> JustificationChecker:
        rules = model.justification
        return cls(
            case_number=re.compile(rules.case_number.pattern),
            statutes=tuple(re.compile(p, re.IGNORECASE) for p in rules.legal_citation.statute_patterns),
            not_court_issued=tuple(
                (re.compile(entry.pattern, re.IGNORECASE), entry.names) for entry in rules.order_reference.not_court_issued
            ),
            court_orders={order.reference.upper(): order for order in model.court_orders},
            authorizations={auth.id.upper(): auth for auth in model.authorizations},
        )

    def check(self, field: str, claim: PurposeClaim, today: date) -> str:
        """Check one required field of ``claim``; return the phrase for the record or raise PurposeRefused."""
        value = field_value(claim, field)
        if value is None:
            raise _refuse(field, f"is required for purpose {claim.purpose}: set gateway.{field}")
        checker: Callable[[str, date], str] = getattr(self, f"_check_{field}")
        return checker(value, today)

    def _check_case_number(self, value: str, today: date) -> str:
        if not self.case_number.match(value):
            raise _refuse("case_number", f"{value!r} is not a case number (expected like CR-2026-0042)")
        return f"case {value}"

    def _check_legal_citation(self, value: str, today: date) -> str:
        if not any(pattern.search(value) for pattern in self.statutes):
            raise _refuse(
                "legal_citation",
                f"{value!r} does not name a statute (expected like 'C.R.S. 24-74-105', '8 U.S.C. § 1373')",
            )
        return f"citing {value}"

    def _check_order_reference(self, value: str, today: date) -> str:
        for pattern, names in self.not_court_issued:
            if pattern.search(value):
                raise _refuse("order_reference", f"names {names}, which is not a court order: {COURT_ISSUED_LAW}")
        order = self._find_order(value)
        if order is None:
            raise _refuse(
                "order_reference",
                f"{value!r} is not a court order on file ({COURT_ISSUED_LAW}; the DBA lists orders under court_orders)",
            )
        lapse = order.lapse(today)
        if lapse:
            raise _refuse("order_reference", lapse)
        return f"order {order.reference} ({order.court})"

    def _find_order(self, value: str) -> CourtOrder | None:
        order = self.court_orders.get(value.upper())
        if order is not None:
            return order
        tokens = set(re.split(r"[\s,;:()#]+", value.upper()))
        matches = [self.court_orders[t] for t in tokens if t in self.court_orders]
        return matches[0] if len(matches) == 1 else None

    def _check_authorization_id(self, value: str, today: date) -> str:
        auth = self.authorizations.get(value.upper())
        if auth is None:
            raise _refuse("authorization_id", f"{value!r} is not a governor authorization on file")
        lapse = auth.lapse(today)
        if lapse:
            raise _refuse("authorization_id", lapse)
        return f"authorization {auth.id}"

    def registry_entry(self, fields: tuple[str, ...], claim: PurposeClaim) -> RegistryEntry | None:
        """The court order or authorization ``claim`` names (already checked live), for the scope."""
        if "authorization_id" in fields:
            auth = self.authorizations.get((field_value(claim, "authorization_id") or "").upper())
            return entry_of(auth) if auth is not None else None
        if "order_reference" in fields:
            order = self._find_order(field_value(claim, "order_reference") or "")
            return entry_of(order) if order is not None else None
        return None
