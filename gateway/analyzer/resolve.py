"""Resolve every relation a statement names against the live catalog, the way PostgreSQL would.

Unquoted names fold to lower case; a name without a schema is a CTE in scope, else the first match
on ``pg_catalog`` then the configured search path. Every resolved table node is rewritten in place to
its quoted, schema-qualified name, so the backend (whose ``search_path`` is pinned to ``pg_catalog``)
reads exactly the relation the gateway analyzed. An unknown relation is refused (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from gateway.analyzer.catalog_rules import SYSTEM_SCHEMAS, catalog_refusal
from gateway.analyzer.errors import not_understood, refused
from gateway.catalog.model import Catalog, Relation


def ident_name(node: exp.Identifier | None) -> str:
    """PostgreSQL's reading of an identifier: unquoted names fold to lower case."""
    if node is None:
        return ""
    if not isinstance(node, exp.Identifier):  # e.g. `WITH $ c AS ...` reads as a Parameter (found by fuzzing)
        raise not_understood(f"{node.sql(dialect='postgres')!r} is not a name")
    return node.this if node.quoted else node.this.lower()


@dataclass(frozen=True)
class ResolvedTable:
    node: exp.Table
    relation: Relation
    alias: str  # the name columns use to refer to it


def _visible_ctes(table: exp.Table) -> set[str]:
    """Names of the CTEs visible from ``table`` (PostgreSQL scoping, including RECURSIVE)."""
    names: set[str] = set()
    child: exp.Expr = table
    parent = table.parent
    while parent is not None:
        with_ = parent.args.get("with_") if isinstance(parent, exp.Query) else None
        if isinstance(parent, exp.With):
            with_ = parent
        if with_ is not None:
            ctes = list(with_.expressions)
            recursive = bool(with_.args.get("recursive"))
            inside = next((i for i, cte in enumerate(ctes) if cte is child), None)
            if isinstance(parent, exp.With) and inside is not None:
                visible = ctes[: inside + (1 if recursive else 0)]
            elif isinstance(parent, exp.With):
                visible = ctes
            elif child is with_:
                visible = []  # handled when we reach the With node itself
            else:
                visible = ctes
            names.update(ident_name(cte.args["alias"].this) for cte in visible)
        child, parent = parent, parent.parent
    return names


def resolve_tables(tree: exp.Expr, catalog: Catalog, search_path: tuple[str, ...]) -> list[ResolvedTable]:
    """Resolve and qualify every base relation in ``tree`` (in place); CTE references are skipped."""
    resolved: list[ResolvedTable] = []
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            if isinstance(table.this, exp.Func):
                continue  # a table function, checked by the function allowlist
            raise not_understood("an unsupported FROM item")
        if table.args.get("catalog"):
            raise refused("three-part names (database.schema.table) are not supported", "relation.cross_database")
        name = ident_name(table.this)
        schema = ident_name(table.args.get("db")) if table.args.get("db") else None
        if schema is None and name in _visible_ctes(table):
            continue
        relation = _lookup(catalog, schema, name, search_path)
        if relation is None:
            shown = f"{schema}.{name}" if schema else name
            raise refused(f'relation "{shown}" does not exist or is not available', "relation.unknown")
        if relation.schema in SYSTEM_SCHEMAS:
            reason = catalog_refusal(relation.schema, relation.name)
            if reason:
                raise refused(reason, "relation.catalog")
        alias_node = table.args.get("alias")
        alias = ident_name(alias_node.this) if alias_node is not None and alias_node.this else relation.name
        table.set("db", exp.to_identifier(relation.schema, quoted=True))
        table.set("this", exp.to_identifier(relation.name, quoted=True))
        if alias_node is None:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        resolved.append(ResolvedTable(table, relation, alias))
    _system_tableoid(tree, resolved)
    return resolved


def _system_tableoid(tree: exp.Expr, tables: list[ResolvedTable]) -> None:
    """``c.tableoid`` of a system catalog (never inherited) is that catalog's own oid: written as a
    constant, the analyzer need not know system columns (psql's ``\\dd`` joins on it)."""
    catalogs = {t.alias: t.relation for t in tables if t.relation.schema == "pg_catalog" and t.relation.kind == "table"}
    if not catalogs:
        return
    for column in list(tree.find_all(exp.Column)):
        if column.name == "tableoid" and not column.this.quoted and column.table in catalogs:
            rel = catalogs[column.table]
            constant = exp.Cast(this=exp.Cast(this=exp.Literal.string(f"pg_catalog.{rel.name}"),
                                              to=exp.DataType.build("regclass", udt=True)),
                                to=exp.DataType.build("oid", udt=True))
            column.replace(exp.Alias(this=constant, alias=exp.to_identifier("tableoid"))
                           if isinstance(column.parent, exp.Select) else constant)


def _lookup(catalog: Catalog, schema: str | None, name: str, search_path: tuple[str, ...]) -> Relation | None:
    if schema is not None:
        return catalog.relation(schema, name)
    for candidate in ("pg_catalog", *search_path):
        relation = catalog.relation(candidate, name)
        if relation is not None:
            return relation
    return None
