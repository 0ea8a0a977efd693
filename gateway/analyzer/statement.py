"""What one parsed reading statement reads, as frozen values: the analyzer's answer to the policy.

``read_statement`` resolves, checks and traces the statement (``trace``), classifies every column
it uses, and returns :class:`StatementFacts`: the accesses the policy decides on, the relations read
(for the rewrite) and the qualified tree. It decides nothing and rewrites nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from gateway.analyzer.anchors import output_relation_tags, read_constraints
from gateway.analyzer.classify import Classifier
from gateway.analyzer.resolve import ResolvedTable
from gateway.analyzer.trace import trace
from gateway.catalog.model import Catalog
from gateway.policy.constraints import Constraints
from gateway.policy.types import Access, ColumnRef


@dataclass(frozen=True)
class StatementFacts:
    tree: exp.Expr  # the statement with qualified table names: the rewrite's input
    tables: tuple[ResolvedTable, ...]
    accesses: tuple[Access, ...]
    constraints: Constraints = Constraints()  # how each relation's rows are constrained (anchors.py)


def read_statement(tree: exp.Expr, sql: str, catalog: Catalog, classifier: Classifier,
                   search_path: tuple[str, ...]) -> StatementFacts:
    result = trace(tree, sql, catalog, search_path)
    accesses = [
        Access(use.column, classifier.column_tags(use.column), use.usage, use.output_name)  # type: ignore[arg-type]
        for use in result.lineage.uses
    ]
    for table in result.tables:
        row_tags, _note = classifier.row_tags(table.relation)
        if row_tags:
            accesses.append(Access(ColumnRef(table.relation.schema, table.relation.name, "*"), row_tags, "where"))
    qualified = result.qualified
    projections = list(qualified.expressions) if isinstance(qualified, exp.Select) else []
    tags = output_relation_tags(result.lineage.outputs, projections, classifier.column_tags)
    return StatementFacts(result.tree, tuple(result.tables), tuple(accesses), read_constraints(qualified, tags))
