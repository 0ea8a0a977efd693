"""The plan of one staff write: the analyzer reads it (``analyzer/writes.py``), the policy decides the
write itself (``policy/writes.py``) and the reads it is made of (``policy/decide.py``), RETURNING is
masked like a SELECT's output. Pure, like the read passes; refusals raise ``PolicyDenied``.
"""

from __future__ import annotations

from sqlglot import exp

from gateway.analyzer.identity import answer_identity
from gateway.analyzer.writes import SET_PREFIX, mask_returning, read_write
from gateway.errors import PolicyDenied
from gateway.plan.passes import PlanEnv
from gateway.plan.types import StatementPlan
from gateway.policy.decide import decide
from gateway.policy.types import Access, ColumnRef, Decision, Profile
from gateway.policy.writes import WriteRequest, WriteTarget, decide_write


def plan_write(tree: exp.Expr, sql: str, profile: Profile, env: PlanEnv) -> StatementPlan:
    schemas = env.catalog.schemas() | {"public"}
    tree = answer_identity(tree, profile.requester, tuple(s for s in env.search_path if s in schemas))
    facts = read_write(tree, sql, env.catalog, env.classifier, env.search_path)
    rel = facts.relation

    def tags_of(column: str) -> frozenset[str]:
        return env.classifier.column_tags(ColumnRef(rel.schema, rel.name, column))

    request = WriteRequest(facts.kind, (rel.schema, rel.name), facts.assigned, tuple(c.name for c in rel.columns))
    verdict = decide_write(request, profile, tags_of)
    if verdict.action == "deny":
        raise PolicyDenied(f"gateway: {verdict.reason}", rule=verdict.rule)
    effect = decide(facts.effect.accesses, profile)
    if effect.action == "deny":
        raise PolicyDenied(f"gateway: {effect.reason} (in the {facts.kind.upper()}: a write's values and WHERE "
                           "are read like a SELECT's predicates)", rule=f"write.{effect.rule}")
    if effect.action == "redact":
        hidden = sorted({str(a.column) for a in facts.effect.accesses if profile.action_for(a.tags) != "allow"})
        raise PolicyDenied(f"gateway: the {facts.kind.upper()} would write a value derived from {', '.join(hidden)}, "
                           f"which is not visible under {_purpose(profile)}: a write's values may use only columns the "
                           "requester sees", rule="write.hidden_value")
    redacted: tuple[str, ...] = ()
    accesses = list(facts.effect.accesses)
    if facts.answer is not None:
        answer = decide(facts.answer.accesses, profile)
        if answer.action == "deny":
            raise PolicyDenied(f"gateway: {answer.reason} (in RETURNING)", rule=f"write.{answer.rule}")
        redacted = tuple(n for n in answer.redacted if not n.startswith(SET_PREFIX))
        mask_returning(facts.tree, rel, redacted)
        accesses.extend(facts.answer.accesses)
    accesses.extend(Access(ColumnRef(rel.schema, rel.name, c), tags_of(c), "write") for c in facts.assigned)  # type: ignore[arg-type]
    if facts.kind == "delete":
        accesses.append(Access(ColumnRef(rel.schema, rel.name, "*"), frozenset(), "write"))  # type: ignore[arg-type]
    text = facts.tree.sql(dialect="postgres", comments=False)
    reason = verdict.reason + (f"; RETURNING redacted: {', '.join(redacted)}" if redacted else "")
    decision = Decision("redact" if redacted else "allow", reason, rule=verdict.rule, redacted=redacted)
    target = WriteTarget(facts.kind, (rel.schema, rel.name), facts.assigned, facts.answer is not None)
    return StatementPlan("write", text, facts.kind.upper(), redacted, None, tuple(accesses), decision, (),
                         write=target)


def _purpose(profile: Profile) -> str:
    return f"purpose {profile.purpose}" if profile.purpose else "no stated purpose"
