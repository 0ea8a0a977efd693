"""Classification of every column the analyzer can meet: tables from the policy, views from their
definitions, system catalogs from the built-in rules.

A view column fed by a classified column carries its tags; a view whose *rows* depend on a
classified column (a WHERE, JOIN, GROUP BY... on it) carries those tags as row tags, and a requester
must be allowed them to read the view at all. A view the analyzer cannot understand is classified
``unclassified`` throughout (fail closed).
"""

from __future__ import annotations

from typing import Protocol

import sqlglot
from sqlglot.errors import SqlglotError

from gateway.analyzer.catalog_rules import CATALOG_STATISTICS, SYSTEM_SCHEMAS, masked_catalog_columns
from gateway.analyzer.trace import trace  # views are classified with the analyzer's own passes
from gateway.catalog.model import Catalog, Relation
from gateway.errors import GatewayError
from gateway.policy.types import UNCLASSIFIED, ColumnRef


class TagSource(Protocol):
    def tags_for(self, schema: str, relation: str, column: str) -> frozenset[str]: ...


class Classifier:
    def __init__(self, catalog: Catalog, policy: TagSource, search_path: tuple[str, ...]) -> None:
        self.catalog = catalog
        self.policy = policy
        self.search_path = search_path
        self._views: dict[tuple[str, str], tuple[dict[str, frozenset[str]], frozenset[str], str]] = {}

    def column_tags(self, ref: ColumnRef) -> frozenset[str]:
        if ref.schema in SYSTEM_SCHEMAS:
            return frozenset({CATALOG_STATISTICS}) if ref.column in masked_catalog_columns(ref.schema, ref.relation) else frozenset()
        relation = self.catalog.relation(ref.schema, ref.relation)
        if relation is not None and relation.kind in ("view", "matview") and relation.view_definition:
            columns, _, _ = self.view(relation)
            return columns.get(ref.column, frozenset({UNCLASSIFIED}))
        return self.policy.tags_for(ref.schema, ref.relation, ref.column)

    def row_tags(self, relation: Relation) -> tuple[frozenset[str], str]:
        """Tags the relation's row set depends on, and a note naming the columns behind them."""
        if relation.kind in ("view", "matview") and relation.view_definition and relation.schema not in SYSTEM_SCHEMAS:
            _, rows, note = self.view(relation)
            return rows, note
        return frozenset(), ""

    def view(self, relation: Relation) -> tuple[dict[str, frozenset[str]], frozenset[str], str]:
        key = (relation.schema, relation.name)
        if key not in self._views:
            self._views[key] = ({}, frozenset({UNCLASSIFIED}), "view is being classified")  # cycle guard
            self._views[key] = self._classify_view(relation)
        return self._views[key]

    def _classify_view(self, relation: Relation) -> tuple[dict[str, frozenset[str]], frozenset[str], str]:
        opaque = ({c.name: frozenset({UNCLASSIFIED}) for c in relation.columns}, frozenset({UNCLASSIFIED}))
        sql = relation.view_definition or ""
        try:
            statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
            if len(statements) != 1:
                return (*opaque, "its definition is not a single query")
            result = trace(statements[0], sql, self.catalog, self.search_path)
        except (GatewayError, SqlglotError) as exc:
            return (*opaque, f"its definition could not be analyzed: {exc}")
        columns: dict[str, frozenset[str]] = {}
        outputs = result.lineage.outputs
        for i, col in enumerate(relation.columns):
            origins = outputs[i][1] if i < len(outputs) else {}
            tags: set[str] = set()
            for ref in origins:
                tags |= self.column_tags(ref)
            columns[col.name] = frozenset(tags)
        row_tags: set[str] = set()
        row_cols: list[str] = []
        for use in result.lineage.uses:
            if use.level == "row":
                tags = self.column_tags(use.column)
                if tags:
                    row_tags |= tags
                    row_cols.append(f"{use.column} ({use.usage})")
        for table in result.tables:
            inner_rows, inner_note = self.row_tags(table.relation)
            if inner_rows:
                row_tags |= inner_rows
                row_cols.append(f"{table.relation.qualified}: {inner_note}")
        note = "its rows depend on " + ", ".join(sorted(set(row_cols))) if row_cols else ""
        return columns, frozenset(row_tags), note
