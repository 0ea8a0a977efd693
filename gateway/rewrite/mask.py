"""Mask classified columns where they enter the query: each table or view reference that carries a
column the requester may not see becomes a derived table in which that column is ``NULL::type``.

The value never enters the query, so predicates, whole-row references, functions and error channels
downstream see nothing: noninterference holds by construction, whatever the rest of the statement
does. The derived table keeps the relation's column names, order and types, and the reference's alias.

When the caller knows which columns of a relation the statement references (``referenced``), the
derived table lists only those (in the relation's order): PostgreSQL parses and plans a three-column
derived table on every simple query instead of a fifteen-column one. The caller passes ``None``
(every column) when a ``*``, a whole-row reference or a NATURAL/USING join makes the column list part
of the meaning. A reference the analyzer missed fails with "column does not exist" whatever the data,
so narrowing never lets a classified value in.
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


def masked_relation(relation: Relation, masked: frozenset[str], only: bool = False,
                    referenced: frozenset[str] | None = None) -> exp.Select:
    """``SELECT a, NULL::type AS b, ... FROM schema.relation`` with ``masked`` columns nulled; only the
    ``referenced`` columns when given (at least one column: a derived table of none is refused by
    older servers)."""
    projections: list[exp.Expr] = []
    columns = tuple(relation.columns)
    if referenced is not None:
        columns = tuple(c for c in columns if c.name in referenced) or columns[:1]
    for column in columns:
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


def apply_masks(tables: Iterable[TableReference], masked_for: Callable[[Relation], frozenset[str]],
                referenced: Callable[[Relation], frozenset[str] | None] = lambda relation: None) -> list[str]:
    """Replace each table reference that needs masking, in place. Returns the masked column names.
    ``referenced``: the columns of a relation the statement references (None: all of them)."""
    masked_names: list[str] = []
    for resolved in tables:
        masked = masked_for(resolved.relation)
        if not masked:
            continue
        node = resolved.node
        subquery = exp.Subquery(
            this=masked_relation(resolved.relation, masked, bool(node.args.get("only")), referenced(resolved.relation)),
            alias=node.args.get("alias").copy(),
        )
        if node.args.get("joins"):
            raise ValueError("unexpected joins on a table node")
        node.replace(subquery)
        masked_names.extend(f"{resolved.relation.qualified}.{c}" for c in sorted(masked))
    return masked_names


def needs_every_column(tree: exp.Expr) -> bool:
    """The statement's meaning depends on a relation's full column list: a ``*`` (other than
    ``count(*)``), a NATURAL join or a USING join anywhere in it."""
    for node in tree.walk():
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            return True
        if isinstance(node, exp.Join) and (node.args.get("method") or node.args.get("using")
                                           or str(node.args.get("kind") or "").upper() == "NATURAL"):
            return True
    return False
