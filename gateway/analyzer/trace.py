"""Resolve, check and trace one parsed reading statement: the analyzer's pure core.

``trace`` mutates the tree it is given only to qualify table names (so the caller keeps that tree
for the rewrite) and runs lineage on a qualified copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from gateway.analyzer.errors import not_understood
from gateway.analyzer.lineage import Lineage, compute_lineage
from gateway.analyzer.pinned import literal_starts, pin_consumed, pin_parameters
from gateway.analyzer.resolve import ResolvedTable, resolve_tables
from gateway.analyzer.safety import check_statement
from gateway.catalog.model import Catalog


@dataclass
class Trace:
    tree: exp.Expr  # the statement with qualified table names (rewrite input)
    tables: list[ResolvedTable]
    lineage: Lineage
    qualified: exp.Expr  # the qualified copy lineage ran on (every column names its source)


def _strip_column_schemas(tree: exp.Expr) -> None:
    """``dmv.persons.first_name`` -> ``persons.first_name`` (tables now carry an alias)."""
    for column in tree.find_all(exp.Column):
        if column.args.get("catalog"):
            raise not_understood("four-part column names are not supported")
        if column.args.get("db"):
            column.set("db", None)


def trace(tree: exp.Expr, sql: str, catalog: Catalog, search_path: tuple[str, ...]) -> Trace:
    check_statement(tree, sql)
    tables = resolve_tables(tree, catalog, search_path)
    _strip_column_schemas(tree)
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for table in tables:
        rel = table.relation
        mapping.setdefault(rel.schema, {})[rel.name] = {c.name: "TEXT" for c in rel.columns}
    analysis_tree = tree.copy()
    before = literal_starts(analysis_tree)
    if isinstance(analysis_tree, exp.Values):  # a top-level VALUES has no scope of its own
        analysis_tree = exp.select("*").from_(exp.Subquery(this=analysis_tree, alias=exp.TableAlias(this=exp.to_identifier("_values"))))
    try:
        qualified = qualify(
            analysis_tree,
            schema=MappingSchema(mapping, dialect="postgres", normalize=False),
            dialect="postgres",
            validate_qualify_columns=True,
            quote_identifiers=False,
            expand_alias_refs=True,
            identify=False,
        )
    except OptimizeError as exc:
        raise not_understood(f"a column could not be resolved ({exc})") from None
    except SqlglotError as exc:
        raise not_understood(f"the statement could not be analyzed ({exc})") from None
    pin_consumed(tree, before, literal_starts(qualified))  # ORDER BY 2: the plan depends on the 2
    pin_parameters(tree)  # which parameter names the individuals
    return Trace(tree, tables, compute_lineage(qualified, catalog), qualified)
