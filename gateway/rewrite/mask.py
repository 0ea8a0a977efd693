"""Mask classified columns where they enter the query: each table or view reference that carries a
column the requester may not see becomes a derived table in which that column is ``NULL::type``.

The value never enters the query, so predicates, whole-row references, functions and error channels
downstream see nothing: noninterference holds by construction, whatever the rest of the statement
does. The derived table keeps the relation's column names, order and types, and the reference's alias.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from sqlglot import exp

from gateway.catalog.model import Relation


class TableReference(Protocol):
    """A table node of the statement and the catalog relation it names (the analyzer's ResolvedTable)."""

    @property
    def node(self) -> exp.Table: ...

    @property
    def relation(self) -> Relation: ...


def _null_of(type_sql: str) -> exp.Expr:
    try:
        data_type = exp.DataType.build(type_sql, dialect="postgres", udt=True)
    except Exception:  # noqa: BLE001 - an unusual type name is kept verbatim
        data_type = exp.DataType.build(type_sql, dialect="postgres", udt=True)
    return exp.Cast(this=exp.Null(), to=data_type)


def masked_relation(relation: Relation, masked: frozenset[str], only: bool = False) -> exp.Select:
    """``SELECT a, NULL::type AS b, ... FROM schema.relation`` with ``masked`` columns nulled."""
    projections: list[exp.Expr] = []
    for column in relation.columns:
        ident = exp.to_identifier(column.name, quoted=True)
        if column.name in masked:
            projections.append(exp.Alias(this=_null_of(column.type_sql), alias=ident))
        else:
            projections.append(exp.Column(this=ident))
    table = exp.Table(
        this=exp.to_identifier(relation.name, quoted=True),
        db=exp.to_identifier(relation.schema, quoted=True),
    )
    if only:
        table.set("only", True)
    return exp.select(*projections).from_(table)


def apply_masks(tables: Iterable[TableReference], masked_for: Callable[[Relation], frozenset[str]]) -> list[str]:
    """Replace each table reference that needs masking, in place. Returns the masked column names."""
    masked_names: list[str] = []
    for resolved in tables:
        masked = masked_for(resolved.relation)
        if not masked:
            continue
        node = resolved.node
        subquery = exp.Subquery(
            this=masked_relation(resolved.relation, masked, bool(node.args.get("only"))),
            alias=node.args.get("alias").copy(),
        )
        if node.args.get("joins"):
            raise ValueError("unexpected joins on a table node")
        node.replace(subquery)
        masked_names.extend(f"{resolved.relation.qualified}.{c}" for c in sorted(masked))
    return masked_names
