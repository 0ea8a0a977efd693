"""The policy engine: a list of accesses and a profile in, a decision out. It never sees SQL."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.policy.constraints import Constraints
from gateway.policy.naming import NamingResult, evaluate
from gateway.policy.types import Access, Decision, Profile

_CLAUSE_NAMES = {
    "where": "WHERE", "join": "JOIN", "group by": "GROUP BY", "having": "HAVING", "order by": "ORDER BY",
    "window": "a window", "distinct": "DISTINCT", "case": "CASE", "function argument": "a function argument",
    "aggregate": "an aggregate", "expression": "an expression", "subquery": "a subquery", "cte": "a CTE",
    "set operation": "a set operation", "limit": "LIMIT/OFFSET", "cast": "a cast",
    "whole-row reference": "a whole-row reference", "values": "VALUES", "lateral": "LATERAL",
}


def _purpose(profile: Profile) -> str:
    return f"purpose {profile.purpose}" if profile.purpose else "no stated purpose"


def decide(accesses: Iterable[Access], profile: Profile) -> Decision:
    """Allow, redact or deny one statement. Deny wins over redact, redact over allow."""
    redacted: list[str] = []
    entry = profile.entry
    for access in accesses:
        if entry is not None and access.tags and not entry.scope.covers(access.column):
            return Decision(
                "deny",
                f"column {access.column} is classified {', '.join(sorted(access.tags))} and is outside the scope of "
                f"{entry.label} (scope: {entry.scope}); nothing classified is released beyond it",
                rule=f"registry.out_of_scope.{entry.kind}",
            )
        action = profile.action_for(access.tags)
        if action == "allow":
            continue
        tags = ", ".join(sorted(access.tags)) or "unclassified"
        if access.column.column == "*" and access.usage == "where":
            return Decision(
                "deny",
                f"relation {access.column.schema}.{access.column.relation} is classified as a whole ({tags}) "
                f"and may not be read under {_purpose(profile)}",
                rule=f"policy.{action}.relation",
            )
        if action == "deny" and profile.certification_lapse and access.tags & profile.lapse_tags:
            return Decision(
                "deny",
                f"{profile.certification_lapse}: column {access.column} is classified {tags}; requester "
                f"{profile.requester} is outside the agency and {profile.certification} "
                "(SB21-131, 24-74-105 C.R.S.: no personal identifying information without a current certification)",
                rule=f"certification.{profile.certification_lapse}",
            )
        if action == "deny":
            return Decision(
                "deny",
                f"column {access.column} is classified {tags} and may not be used in any form under {_purpose(profile)}",
                rule=f"policy.deny.{sorted(access.tags)[0] if access.tags else 'unclassified'}",
            )
        if access.usage != "output":
            return Decision(
                "deny",
                f"column {access.column} is classified {tags} and is used in {_CLAUSE_NAMES.get(access.usage, access.usage)}; "
                f"under {_purpose(profile)} it may only be returned redacted, never influence a result",
                rule=f"policy.redact.influence.{access.usage.replace(' ', '_')}",
            )
        if access.output_name and access.output_name not in redacted:
            redacted.append(access.output_name)
    if redacted:
        return Decision("redact", f"redacted under {_purpose(profile)}: {', '.join(redacted)}",
                        rule="policy.redact.output", redacted=tuple(redacted))
    return Decision("allow", "no classified column is withheld from this requester", rule="policy.allow")


def decide_statement(accesses: Iterable[Access], reads_data: bool, profile: Profile,
                     constraints: Constraints | None = None) -> tuple[Decision, NamingResult]:
    """The decision for one reading statement, and the individuals it names.

    A profile that reads no data is refused any relation; then the classification decides
    (:func:`decide`); then, for a profile that must name individuals (SPEC section 9), an answer
    carrying the naming tag must come from relations restricted to named individuals.
    """
    if profile.no_data and reads_data:
        return Decision("deny", f"requester {profile.requester} may not read data; {profile.reason}",
                        rule="policy.no_data"), NamingResult()
    decision = decide(accesses, profile)
    naming = profile.naming
    if naming is None or constraints is None:
        return decision, NamingResult()
    result = evaluate(constraints, naming)  # who the statement names, whatever the decision
    if decision.action == "deny" or profile.action_for((naming.tag,)) != "allow":
        return decision, result  # denied already, or the tag never reaches this requester's answers
    if result.problem and profile.must_name:
        return Decision(
            "deny",
            f"an individual must be named: this answer carries {naming.tag} data, and a requester outside the "
            f"agency must name the individuals it asks about; {result.problem}",
            rule="policy.name_the_individual",
        ), result
    return decision, result


def combine(decisions: Iterable[Decision], redacted: tuple[str, ...]) -> Decision:
    """One decision for a request of several statements: redact if any output is redacted, else the
    first statement's decision, else ``allow`` (nothing is read)."""
    decisions = list(decisions)
    if redacted:
        return Decision("redact", "; ".join(d.reason for d in decisions if d.action == "redact"),
                        rule="policy.redact.output", redacted=redacted)
    if decisions:
        return decisions[0]
    return Decision("allow", "no data is read", rule="policy.allow.utility")
