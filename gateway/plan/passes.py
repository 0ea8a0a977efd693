"""The passes of the plan stage, run in order on each reading statement.

Each pass is ``f(work, env, profile) -> work``: ``analyze`` asks the analyzer what the statement
reads, ``decide`` asks the policy what may be returned (raising the policy's refusal), ``mask`` and
``names`` rewrite the tree. None does I/O; the tree is the only thing they change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from gateway.analyzer.classify import Classifier
from gateway.analyzer.identity import answer_identity
from gateway.analyzer.statement import StatementFacts, read_statement
from gateway.catalog.model import Catalog, Relation
from gateway.errors import PolicyDenied
from gateway.plan.types import with_kinds
from gateway.policy.decide import decide_statement
from gateway.policy.naming import Named
from gateway.policy.types import ColumnRef, Decision, Profile
from gateway.rewrite.mask import apply_masks, needs_every_column
from gateway.rewrite.names import preserve_output_names


@dataclass(frozen=True)
class PlanEnv:
    """What the passes read besides the statement: one catalog snapshot and its classifier."""

    catalog: Catalog
    classifier: Classifier
    search_path: tuple[str, ...]


@dataclass
class StatementWork:
    """One statement on its way through the passes."""

    tree: exp.Expr
    sql: str  # the whole request text (token positions refer to it)
    facts: StatementFacts | None = None
    decision: Decision | None = None
    named: tuple[Named, ...] = ()  # the individuals the statement names (values by position)
    personal: bool = False  # the answer carries the naming tag (personal data)
    anchored: bool = True  # ... and every relation it comes from names its individuals
    masked: tuple[str, ...] = field(default=())


Pass = Callable[[StatementWork, PlanEnv, Profile], StatementWork]


def identity(work: StatementWork, env: PlanEnv, profile: Profile) -> StatementWork:
    schemas = env.catalog.schemas() | {"public"}
    work.tree = answer_identity(work.tree, profile.requester, tuple(s for s in env.search_path if s in schemas),
                                env.catalog)
    return work


def analyze(work: StatementWork, env: PlanEnv, profile: Profile) -> StatementWork:
    work.facts = read_statement(work.tree, work.sql, env.catalog, env.classifier, env.search_path)
    work.tree = work.facts.tree
    return work


def decide(work: StatementWork, env: PlanEnv, profile: Profile) -> StatementWork:
    assert work.facts is not None
    decision, naming = decide_statement(work.facts.accesses, bool(work.facts.tables), profile, work.facts.constraints)
    work.named = with_kinds(naming.named, env.catalog) if naming.named else ()
    if decision.action == "deny":
        raise PolicyDenied(f"gateway: {decision.reason}", rule=decision.rule)
    work.decision = decision
    work.personal, work.anchored = naming.needs_naming, not naming.problem
    return work


def mask(work: StatementWork, env: PlanEnv, profile: Profile) -> StatementWork:
    assert work.facts is not None

    def masked_for(relation: Relation) -> frozenset[str]:
        return frozenset(
            c.name for c in relation.columns
            if profile.action_for(env.classifier.column_tags(ColumnRef(relation.schema, relation.name, c.name))) != "allow"
        )

    # the columns each relation is referenced by (whole-row references count every column)
    used: dict[tuple[str, str], set[str]] | None = None
    if not needs_every_column(work.tree):
        used = {}
        for access in work.facts.accesses:
            used.setdefault((access.column.schema, access.column.relation), set()).add(access.column.column)

    def referenced(relation: Relation) -> frozenset[str] | None:
        columns = used.get((relation.schema, relation.name)) if used is not None else None
        if not columns or "*" in columns and len(columns) == 1:
            return None  # nothing known of it (a view traced to its tables, a row tag only): every column
        return frozenset(columns)

    work.masked = tuple(apply_masks(work.facts.tables, masked_for, referenced))
    if work.tree.parent is not None:  # the statement's own node was replaced: print from the root
        work.tree = work.tree.root()
    return work


def names(work: StatementWork, env: PlanEnv, profile: Profile) -> StatementWork:
    preserve_output_names(work.tree, work.sql)
    return work


PASSES: tuple[Pass, ...] = (identity, analyze, decide, mask, names)
