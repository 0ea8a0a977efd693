"""Read one write statement (INSERT, UPDATE, DELETE) as the reads it is made of.

A write's answer is its command tag's row count, its errors and its RETURNING rows. So the analyzer
reads it as two reading statements and hands both to the usual passes:

* the *effect*: ``SELECT <each SET expression / VALUES row> FROM target WHERE <where>``: every column
  it uses decides which rows change and what they get, so each must be one the requester may see
  whole (the policy denies anything else, redaction included);
* the *answer*: ``SELECT <RETURNING items> FROM target``: decided like any SELECT's output; a redacted
  item (a bare column) becomes ``NULL::type`` in the write itself.

Supported: ``INSERT INTO t (columns) VALUES (...), ...``, ``UPDATE [ONLY] t [AS a] SET c = e, ...
[WHERE ...]``, ``DELETE FROM [ONLY] t [AS a] [WHERE ...]``, each with ``RETURNING``. Refused, clearly:
INSERT without a column list, ``INSERT ... SELECT``, ``DEFAULT VALUES``, ``ON CONFLICT``, ``WITH``,
``UPDATE ... FROM``, ``DELETE ... USING``, ``SET (a, b) = ...``, writes to views, catalogs and
anything but a base table, ``MERGE``. The analyzer decides nothing; it only reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from gateway.analyzer.catalog_rules import SYSTEM_SCHEMAS
from gateway.analyzer.classify import Classifier
from gateway.analyzer.errors import not_understood, refused
from gateway.analyzer.resolve import ident_name, resolve_tables
from gateway.analyzer.statement import StatementFacts, read_statement
from gateway.catalog.model import Catalog, Relation

WRITE_ROOTS = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
WRITE_HEADS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})  # first words of a write
SET_PREFIX = "__gw_set_"

_ALLOWED_ARGS = {
    exp.Insert: {"this", "expression", "returning"},
    exp.Update: {"this", "expressions", "where", "returning"},
    exp.Delete: {"this", "where", "returning"},
}
_KIND = {exp.Insert: "insert", exp.Update: "update", exp.Delete: "delete"}


@dataclass(frozen=True)
class WriteFacts:
    kind: str  # insert | update | delete
    relation: Relation
    assigned: tuple[str, ...]
    effect: StatementFacts  # the read that decides which rows change and to what
    answer: StatementFacts | None  # the read of the RETURNING items (None: no RETURNING)
    tree: exp.Expr  # the write, table names qualified: what reaches the backend (after masking RETURNING)


def _refuse_shape(tree: exp.Expr) -> None:
    if isinstance(tree, exp.Merge):
        raise refused("MERGE is not supported; write with INSERT, UPDATE or DELETE", "write.unsupported")
    kind = _KIND[type(tree)]
    extra = sorted(k for k, v in tree.args.items() if v not in (None, False, []) and k not in _ALLOWED_ARGS[type(tree)])
    if not extra:
        return
    names = {"with_": "WITH", "conflict": "ON CONFLICT", "from_": "UPDATE ... FROM", "using": "DELETE ... USING",
             "default": "DEFAULT VALUES", "overwrite": "OVERWRITE", "where": "WHERE"}
    shown = ", ".join(names.get(k, k) for k in extra)
    raise refused(f"{kind.upper()} with {shown} is not supported for writes; the gateway runs plain INSERT ... "
                  "VALUES, UPDATE ... SET ... WHERE and DELETE ... WHERE (with RETURNING)", "write.unsupported")


def _target(tree: exp.Expr) -> exp.Table:
    node = tree.this
    if isinstance(tree, exp.Insert):
        if not isinstance(node, exp.Schema) or not node.expressions:
            raise refused("INSERT must name its columns: INSERT INTO t (a, b) VALUES (...)", "write.insert_columns")
        node = node.this
    if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
        raise not_understood("the target of the write is not a table")
    return node


def _assigned(tree: exp.Expr, target: exp.Table, relation: Relation) -> tuple[list[str], list[exp.Expr]]:
    """The columns the write sets and, for UPDATE, their expressions."""
    alias_node = target.args.get("alias")
    names_ok = {relation.name, ident_name(alias_node.this) if alias_node is not None and alias_node.this else relation.name}
    columns: list[str] = []
    values: list[exp.Expr] = []
    if isinstance(tree, exp.Insert):
        columns = [ident_name(c) if isinstance(c, exp.Identifier) else "" for c in tree.this.expressions]
        if not all(columns):
            raise not_understood("an INSERT column list entry is not a plain column name")
    elif isinstance(tree, exp.Update):
        for item in tree.expressions:
            if not isinstance(item, exp.EQ) or not isinstance(item.this, exp.Column):
                raise refused("UPDATE ... SET (a, b) = ... is not supported; set each column on its own", "write.unsupported")
            col = item.this
            if col.args.get("db") or (col.table and col.table not in names_ok and col.table.lower() not in names_ok):
                raise not_understood(f"SET target {col.sql(dialect='postgres')} is not a column of the table")
            columns.append(ident_name(col.this))
            values.append(item.expression)
    for name in columns:
        if relation.column(name) is None:
            raise refused(f'column "{name}" of relation "{relation.qualified}" does not exist', "write.unknown_column")
    if len(set(columns)) != len(columns):
        raise refused("a column is assigned more than once", "write.duplicate_column")
    return columns, values


def _relation(target: exp.Table, catalog: Catalog, search_path: tuple[str, ...]) -> Relation:
    probe = exp.select("1").from_(target.copy())
    tables = resolve_tables(probe, catalog, search_path)
    relation = tables[0].relation
    if relation.schema in SYSTEM_SCHEMAS:
        raise refused(f"{relation.qualified} is a system catalog: writes to it are never allowed", "write.catalog")
    if relation.kind not in ("table", "partitioned"):
        raise refused(f"{relation.qualified} is a {relation.kind}: writes go to base tables only", "write.not_a_table")
    return relation


def read_write(tree: exp.Expr, sql: str, catalog: Catalog, classifier: Classifier,
               search_path: tuple[str, ...]) -> WriteFacts:
    """The write's facts; raises a refusal for any shape it does not support."""
    _refuse_shape(tree)
    target = _target(tree)
    relation = _relation(target, catalog, search_path)
    columns, set_values = _assigned(tree, target, relation)
    kind = _KIND[type(tree)]
    where = tree.args.get("where")

    # the effect, as a read
    if isinstance(tree, exp.Insert):
        rows = tree.expression
        if not isinstance(rows, exp.Values):
            raise refused("INSERT ... SELECT is not supported; insert VALUES rows", "write.insert_select")
        for row in rows.expressions:
            width = len(row.expressions) if isinstance(row, exp.Tuple) else 1
            if width != len(columns):
                raise refused(f"INSERT has {len(columns)} column(s) but a VALUES row has {width}", "write.insert_width")
        alias = exp.TableAlias(this=exp.to_identifier("__gw_values"),
                               columns=[exp.to_identifier(f"{SET_PREFIX}{i}") for i in range(len(columns))])
        effect_tree: exp.Expr = exp.select("*").from_(exp.Subquery(this=rows.copy(), alias=alias))
    else:
        projections = [exp.alias_(v.copy(), f"{SET_PREFIX}{i}") for i, v in enumerate(set_values)] or \
            [exp.alias_(exp.Literal.number(1), f"{SET_PREFIX}0")]
        effect_tree = exp.Select(expressions=projections, from_=exp.From(this=target.copy()))
        if where is not None:
            effect_tree.set("where", where.copy())
    effect = read_statement(effect_tree, sql, catalog, classifier, search_path)

    # the write itself, table names qualified (subqueries of its WHERE and SET included)
    resolve_tables(tree, catalog, search_path)
    for column in tree.find_all(exp.Column):
        if column.args.get("db"):
            column.set("db", None)
    returning = tree.args.get("returning")
    answer = None
    if returning is not None:
        items = _expand_star(returning.expressions, _target(tree))
        returning.set("expressions", items)
        probe_target = _target(tree).copy()
        answer_tree = exp.Select(expressions=[i.copy() for i in items], from_=exp.From(this=probe_target))
        answer = read_statement(answer_tree, sql, catalog, classifier, search_path)
    return WriteFacts(kind, relation, tuple(columns), effect, answer, tree)


def _expand_star(items: list[exp.Expr], target: exp.Table) -> list[exp.Expr]:
    """``RETURNING *`` and ``RETURNING t.*`` as one star (the target is the only relation of a supported
    write); ``mask_returning`` expands it to the columns when one of them is redacted."""
    return [exp.Star() if isinstance(i, exp.Star) or (isinstance(i, exp.Column) and isinstance(i.this, exp.Star))
            else i for i in items]


def mask_returning(tree: exp.Expr, relation: Relation, redacted: tuple[str, ...]) -> None:
    """Expand ``RETURNING *`` to the relation's columns and make each redacted output ``NULL::type``.
    A redacted output that is not a bare column of the target is refused (fail closed)."""
    returning = tree.args.get("returning")
    if returning is None:
        return
    items: list[exp.Expr] = []
    for item in returning.expressions:
        if isinstance(item, exp.Star):
            items.extend(exp.Column(this=exp.to_identifier(c.name, quoted=True)) for c in relation.columns)
        else:
            items.append(item)
    wanted = set(redacted)
    masked: set[str] = set()
    out: list[exp.Expr] = []
    for item in items:
        inner = item.this if isinstance(item, exp.Alias) else item
        while isinstance(inner, exp.Paren):
            inner = inner.this
        # the output name as PostgreSQL gives it: ``(c)`` is named ``c`` (sqlglot names a Paren "")
        name = item.alias if isinstance(item, exp.Alias) else inner.alias_or_name
        if name not in wanted:
            out.append(item)
            continue
        masked.add(name)
        column = relation.column(inner.name) if isinstance(inner, exp.Column) else None
        if column is None:
            raise refused(f"RETURNING item {name} would have to be redacted but is not a plain column", "write.returning")
        null = exp.Cast(this=exp.Null(), to=exp.DataType.build(column.type_sql, dialect="postgres", udt=True))
        out.append(exp.Alias(this=null, alias=exp.to_identifier(name, quoted=True)))
    if wanted - masked:  # a redacted output no item was found for: never send it unmasked (fail closed)
        raise refused(f"RETURNING item(s) {', '.join(sorted(wanted - masked))} would have to be redacted but could "
                      "not be placed", "write.returning")
    returning.set("expressions", out)
