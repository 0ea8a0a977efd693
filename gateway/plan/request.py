"""The plan of one request, as both front doors hold it: who asks (:class:`SessionContext`), what
runs and what the request log says of it (:class:`Plan`). Frozen values; pure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError
from gateway.plan.hot import named
from gateway.plan.types import StatementPlan, evolve, redacted_columns
from gateway.policy.types import Decision, Profile, PurposeClaim, Requester


@dataclass(frozen=True)
class SessionContext:
    requester: Requester
    claim: PurposeClaim = PurposeClaim()
    front_door: str = "wire"
    client_addr: str = ""
    tls: bool = False
    session_id: str = ""
    application_name: str = ""


@dataclass(frozen=True)
class Plan:
    request_id: str
    sql: str
    statements: tuple[StatementPlan, ...]
    decision: Decision
    error: GatewayError | None
    profile: Profile | None
    cache: str = "miss"
    tokens: Any = field(default=None, compare=False, repr=False)  # the analyzer's tokens of ``sql``
    # or, from the skeleton cache, the text between the literals and their values (Analysis.literals)
    literals: Any = field(default=None, compare=False, repr=False)
    #: the analysis whose statements these are (or copy with other literals: the same accesses, masks
    #: and kinds): what the request record says of the statements is keyed on it
    origin: Any = field(default=None, compare=False, repr=False)
    # (received, sent) SQL already hashed for the request log: long statements, hashed in a worker
    hashed_sql: tuple[str | None, str | None] | None = field(default=None, compare=False, repr=False)
    #: the individuals the request names (``key:value``, parameters bound), set by ``Gateway.admit``
    individuals: tuple[str, ...] = ()
    #: what a refused statement tried to read (a refusal has no statements; subject notices say it)
    refused_accesses: tuple[Any, ...] = ()
    #: what the plan was decided under: (session context, analyzer, policy, requesters), all by
    #: identity (``Gateway.rebind`` reuses the plan only while each is the same object); None: never reused
    basis: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def redacted(self) -> tuple[str, ...]:
        return redacted_columns(self.statements)

    def with_individuals(self, individuals: tuple[str, ...]) -> Plan:
        """This plan naming ``individuals`` (``dataclasses.replace`` costs more than the rest of admit)."""
        return evolve(self, individuals=individuals)

    def named(self, params: Any = None) -> tuple[str, ...]:
        """The individuals the request names, ``key:value`` (``person:5``, ``plate:ZGS-846``,
        ``combination:first|last|dob``), with ``params`` bound; once each, in order."""
        return named(self.statements, params)

    @property
    def personal(self) -> bool:
        """The answer carries personal data (the policy's naming tag)."""
        return any(st.personal for st in self.statements)

    @property
    def row_cap(self) -> int:
        """Rows per answer for this requester and purpose (0: no cap)."""
        caps = self.profile.caps if self.profile is not None else None
        return caps.rows_per_answer or 0 if caps is not None else 0

    @property
    def use_notice(self) -> str | None:
        """The use notice (SPEC 10) when this plan releases an answer under an exception purpose."""
        profile = self.profile
        if profile is None or not profile.exception or self.error is not None:
            return None
        if not any((s.kind == "select" and _reads_data(s)) or (s.write is not None and s.write.returning)
                   for s in self.statements):
            return None
        return use_notice_text(profile.purpose or "")

    @property
    def statement_kind(self) -> str:
        kinds = sorted({s.kind for s in self.statements})
        return ",".join(kinds) if kinds else "none"


_PLAN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Plan) if f.default is not dataclasses.MISSING}


def new_plan(**fields: Any) -> Plan:
    """``Plan(**fields)`` without the frozen dataclass's field-by-field ``object.__setattr__`` (the
    hot path makes one per request); every field without a default must be given."""
    plan = object.__new__(Plan)
    values = plan.__dict__
    values.update(_PLAN_DEFAULTS)
    values.update(fields)
    return plan


#: Schemas whose relations describe structure, not data: an answer from them alone releases nothing
#: the use notice is about (psql's ``\d`` would otherwise print it once for each of its queries).
CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})


def _reads_data(statement: StatementPlan) -> bool:
    """Whether a statement reads anything but the catalog (one with no column access at all counts)."""
    return not statement.accesses or any(a.column.schema not in CATALOG_SCHEMAS for a in statement.accesses)


def use_notice_text(purpose: str) -> str:
    return (f"gateway: use notice: this answer is released under {purpose}, an exception of SB21-131; it may not "
            "be used, or passed on to anyone, for civil immigration enforcement (24-74-103 and 24-74-105 C.R.S.)")


def persons_returned(plan: Plan, rows: int) -> int | None:
    """Distinct persons in an answer of ``rows`` rows, as far as the plan knows: none when no row
    came back or the answer carries no personal data; the individuals it names when it names them
    all (at most one a row); else ``rows`` (an upper bound: a search)."""
    if rows == 0 or not plan.personal:
        return 0
    if plan.individuals and all(st.anchored for st in plan.statements if st.personal):
        return min(len(plan.individuals), rows)
    return rows


def refused_plan(plan: Plan, error: GatewayError) -> Plan:
    return dataclasses.replace(plan, error=error, decision=Decision(
        "deny", error.message.removeprefix("gateway: "), rule=error.rule or ""))


def nothing_profile(ctx: SessionContext) -> Profile:
    """The profile of a session whose purpose is refused: it reads nothing."""
    return Profile(ctx.requester.name, None, (), "deny", no_data=True, reason="purpose refused")
