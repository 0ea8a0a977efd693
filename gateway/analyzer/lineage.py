"""Column lineage: which base columns each part of a statement reads, and how.

Runs on a qualified copy of the statement (``sqlglot.optimizer.qualify``), scope by scope. For every
column reference it finds the base column(s) behind it (through derived tables and CTEs) and the
*usage*: a bare projection that reaches the requester (``output``), or anything else that influences
the result (``where``, ``join``, ``function argument``...). Each use also says its *level*: ``row``
when it can change which rows come back or their order, ``column`` when it only shapes one output
column's value. Whatever it cannot place is refused (fail closed): every column node of the statement
must be accounted for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope, walk_in_scope

from gateway.analyzer.errors import not_understood
from gateway.catalog.model import Catalog
from gateway.policy.types import ColumnRef

Origins = dict[ColumnRef, str]  # base column -> "pass" (value passes unchanged) | "derived"

_CLAUSE_USAGE = {
    "where": "where",
    "joins": "join",
    "group": "group by",
    "having": "having",
    "order": "order by",
    "limit": "limit",
    "offset": "limit",
    "distinct": "distinct",
    "qualify": "where",
    "windows": "window",
    "from_": "function argument",
    "laterals": "lateral",
}


@dataclass(frozen=True)
class Use:
    column: ColumnRef
    usage: str
    level: str  # "output" | "column" | "row"
    output_name: str | None = None


@dataclass
class Lineage:
    uses: list[Use] = field(default_factory=list)
    outputs: list[tuple[str, Origins]] = field(default_factory=list)  # the statement's result columns


def _merge(into: Origins, more: Origins, kind: str | None = None) -> None:
    for ref, k in more.items():
        new = kind or k
        if into.get(ref) != "derived":
            into[ref] = new


def _projection_usage(path: list[exp.Expr]) -> str:
    """Usage of a column inside a projection, from the nodes between the projection and the column."""
    if not path:
        return "output"
    for node in path:
        if isinstance(node, exp.Window):
            return "window"
    for node in path:
        if isinstance(node, (exp.AggFunc, exp.Filter, exp.WithinGroup)):
            return "aggregate"
    for node in path:
        if isinstance(node, (exp.Case, exp.If)):
            return "case"
    for node in path:
        if isinstance(node, (exp.Cast, exp.TryCast)):
            return "cast"
    for node in path:
        if isinstance(node, exp.Func):
            return "function argument"
    return "expression"


class _Walker:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.lineage = Lineage()
        self.memo: dict[int, list[tuple[str, Origins]]] = {}
        self.traversed: dict[int, Scope] = {}
        self.traversed_ids: set[int] = set()
        self.seen: set[int] = set()

    # -- sources -------------------------------------------------------------------------------
    def _base_columns(self, table: exp.Table) -> list[tuple[str, ColumnRef | None]] | None:
        if not isinstance(table.this, exp.Identifier):
            # a table function: its arguments are analyzed where they stand; its columns carry
            # only what the arguments give (already counted as function-argument uses)
            alias = table.args.get("alias")
            if alias is not None and alias.columns:
                names = [c.name for c in alias.columns]
            else:
                names = [alias.name if alias is not None and alias.name else table.this.sql_name().lower()]
            return [(name, None) for name in names]
        relation = self.catalog.relation(table.args["db"].name, table.name)
        if relation is None:
            return None
        alias = table.args.get("alias")
        renamed = [c.name for c in alias.columns] if alias is not None and alias.columns else []
        out = []
        for i, col in enumerate(relation.columns):
            name = renamed[i] if i < len(renamed) else col.name
            out.append((name, ColumnRef(relation.schema, relation.name, col.name)))
        return out

    def source_outputs(self, source: object) -> list[tuple[str, Origins]]:
        if isinstance(source, Scope):
            return self.outputs_of(source)
        if isinstance(source, exp.Table):
            cols = self._base_columns(source)
            if cols is None:
                raise not_understood(f"relation {source.sql(dialect='postgres')} could not be resolved")
            return [(name, {ref: "pass"} if ref is not None else {}) for name, ref in cols]
        raise not_understood("an unsupported FROM item")

    def find_source(self, scope: Scope, name: str) -> object:
        current: Scope | None = scope
        while current is not None:
            if name in current.sources:
                return current.sources[name]
            current = current.parent
        raise not_understood(f'a reference to "{name}" could not be resolved')

    # -- scopes --------------------------------------------------------------------------------
    def outputs_of(self, scope: Scope) -> list[tuple[str, Origins]]:
        # a recursive CTE's self-reference is a scope sqlglot never traversed (no sources): the
        # anchor branch's traversed scope stands for it
        scope = self.traversed.get(id(scope.expression), scope) if id(scope) not in self.traversed_ids else scope
        key = id(scope)
        if key not in self.memo:
            self.memo[key] = []  # recursion guard (recursive CTEs)
            self.memo[key] = self._analyze(scope)
        return self.memo[key]

    def _analyze(self, scope: Scope) -> list[tuple[str, Origins]]:
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            return self._set_operation(scope)
        if isinstance(expression, exp.Select):
            return self._select(scope, expression)
        if isinstance(expression, exp.Values):
            self._check_leaf(scope, expression)
            width = len(expression.expressions[0].expressions) if expression.expressions else 0
            alias = expression.args.get("alias")
            names = [c.name for c in alias.columns] if alias is not None and alias.columns else []
            return [(names[i] if i < len(names) else f"column{i + 1}", {}) for i in range(width)]
        if isinstance(expression, exp.Lateral):
            return self._lateral(scope, expression)
        if isinstance(expression, exp.Unnest):  # FROM unnest(...): its arguments influence every row
            self._check_leaf(scope, expression)
            alias = expression.args.get("alias")
            if alias is not None and alias.columns:
                return [(c.name, {}) for c in alias.columns]
            return [(alias.name if alias is not None and alias.name else "unnest", {})]
        raise not_understood(f"unsupported query part ({type(expression).__name__})")

    def _lateral(self, scope: Scope, lateral: exp.Lateral) -> list[tuple[str, Origins]]:
        """``LATERAL (SELECT ...)``: a derived table that may refer to the FROM items before it."""
        inner = lateral.this.this if isinstance(lateral.this, exp.Subquery) else None
        source = next((s for s in scope.sources.values() if isinstance(s, Scope) and s.expression is inner), None)
        if inner is None or source is None:
            raise not_understood("a LATERAL item other than a subquery")
        outputs = self.outputs_of(source)
        alias = lateral.args.get("alias")
        renamed = [c.name for c in alias.columns] if alias is not None and alias.columns else []
        return [(renamed[i] if i < len(renamed) else name, origins) for i, (name, origins) in enumerate(outputs)]

    def _check_leaf(self, scope: Scope, expression: exp.Expr) -> None:
        for node in walk_in_scope(expression):
            if isinstance(node, (exp.Column, exp.TableColumn)):
                self._column(scope, node, "values", "row", None)

    def _set_operation(self, scope: Scope) -> list[tuple[str, Origins]]:
        branches = [self.outputs_of(child) for child in scope.set_operation_scopes]
        if not branches:
            raise not_understood("an empty set operation")
        result: list[tuple[str, Origins]] = []
        for i, (name, _) in enumerate(branches[0]):
            merged: Origins = {}
            for branch in branches:
                if i < len(branch):
                    _merge(merged, branch[i][1], "derived")
            for ref in merged:
                self.lineage.uses.append(Use(ref, "set operation", "row"))
            result.append((name, merged))
        # ORDER BY / LIMIT on the set operation itself
        for node in walk_in_scope(scope.expression):
            if isinstance(node, (exp.Column, exp.TableColumn)) and id(node) not in self.seen:
                self.seen.add(id(node))
                origins = next((o for n, o in result if n == node.name), None)
                if origins is None:
                    raise not_understood(f'"{node.name}" in a set operation could not be resolved')
                for ref in origins:
                    self.lineage.uses.append(Use(ref, "order by", "row"))
        return result

    def _select(self, scope: Scope, select: exp.Select) -> list[tuple[str, Origins]]:
        projections = list(select.expressions)
        proj_ids = {id(p): i for i, p in enumerate(projections)}
        proj_origins: list[Origins] = [{} for _ in projections]
        names = [p.alias_or_name for p in projections]
        is_root = scope.is_root
        distinct = select.args.get("distinct")
        plain_distinct = distinct is not None and not distinct.args.get("on")

        nodes = []
        clauses: dict[int, str] = {}  # id(node) -> its clause outside the projections: one walk up per node
        for node in walk_in_scope(select):
            if not isinstance(node, (exp.Column, exp.TableColumn)):
                continue
            if isinstance(node, exp.Column) and node.find_ancestor(exp.Column) is not None:
                continue
            clause, proj_index, path = _locate(node, select, proj_ids, clauses)
            nodes.append((clause != "expressions", clause, proj_index, path, node))
        nodes.sort(key=lambda item: item[0])  # projections first: aliases in ORDER BY refer to them
        for _, clause, proj_index, path, node in nodes:
            if clause == "expressions":
                usage = _projection_usage(path)
                level = "output" if usage == "output" else "column"
            else:
                usage = _CLAUSE_USAGE.get(clause or "", "expression")
                level = "row"
            if clause != "expressions" and isinstance(node, exp.Column) and not node.table and node.name in names:
                self.seen.add(id(node))  # a reference to an output column by its alias (ORDER BY s)
                for ref in proj_origins[names.index(node.name)]:
                    self.lineage.uses.append(Use(ref, usage, "row"))
                continue
            name = names[proj_index] if proj_index is not None else None
            origins = self._column(scope, node, usage, level, name, record=not (level == "output" and not is_root))
            if proj_index is not None:
                _merge(proj_origins[proj_index], origins, None if level == "output" else "derived")

        # subqueries used inside this select (scalar, EXISTS, IN, ARRAY(...)) influence it
        for child in scope.subquery_scopes:
            for _, origins in self.outputs_of(child):
                for ref in origins:
                    self.lineage.uses.append(Use(ref, "subquery", "row"))
                parent_proj = _enclosing_projection(child.expression, select, proj_ids)
                if parent_proj is not None:
                    _merge(proj_origins[parent_proj], origins, "derived")
        for child in scope.derived_table_scopes + scope.cte_scopes + scope.udtf_scopes:
            self.outputs_of(child)  # analyzed even when unused: their own clauses count
        if plain_distinct:
            for origins in proj_origins:
                for ref in origins:
                    self.lineage.uses.append(Use(ref, "distinct", "row"))
        return list(zip(names, proj_origins))

    def _column(self, scope: Scope, node: exp.Expr, usage: str, level: str, output_name: str | None,
                record: bool = True) -> Origins:
        self.seen.add(id(node))
        if isinstance(node, exp.TableColumn) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
            source_name = node.name if isinstance(node, exp.TableColumn) else node.table
            origins: Origins = {}
            for _, o in self.source_outputs(self.find_source(scope, source_name)):
                _merge(origins, o)
            for ref in origins:
                self.lineage.uses.append(Use(ref, "whole-row reference", "row" if level == "row" else "column", output_name))
            return {ref: "derived" for ref in origins}
        if not node.table:
            raise not_understood(f'column "{node.name}" could not be resolved')
        outputs = self.source_outputs(self.find_source(scope, node.table))
        origins = next((o for n, o in outputs if n == node.name), None)
        if origins is None:
            raise not_understood(f'column "{node.table}.{node.name}" could not be resolved')
        if record:
            for ref, kind in origins.items():
                use_usage = usage if (level != "output" or kind == "pass") else "expression"
                self.lineage.uses.append(Use(ref, use_usage, level if kind == "pass" else "column", output_name))
        return dict(origins)


def _locate(node: exp.Expr, select: exp.Select, proj_ids: dict[int, int],
            clauses: dict[int, str]) -> tuple[str, int | None, list[exp.Expr]]:
    """The clause of ``select`` that holds ``node``, its projection index, and the nodes in between
    (those only for a projection). ``clauses`` remembers the clause of the ancestors already walked
    outside the projections, so a long chain (``a = 1 OR b = 2 OR ...``) is walked up once, not once per
    column (that was quadratic)."""
    ancestors: list[exp.Expr] = []
    child, parent = node, node.parent
    known = None
    while parent is not None and parent is not select:
        known = clauses.get(id(parent))
        if known is not None:
            break
        ancestors.append(parent)
        child, parent = parent, parent.parent
    if known is None and parent is None:
        raise not_understood("a column outside its query")
    clause = known if known is not None else child.arg_key
    if clause != "expressions":
        for ancestor in ancestors:
            clauses[id(ancestor)] = clause
        return clause, None, []
    index = proj_ids.get(id(child))
    return clause, index, [a for a in ancestors if not isinstance(a, (exp.Alias, exp.Paren))]


def _enclosing_projection(node: exp.Expr, select: exp.Select, proj_ids: dict[int, int]) -> int | None:
    child, parent = node, node.parent
    while parent is not None and parent is not select:
        child, parent = parent, parent.parent
    if parent is select and child.arg_key == "expressions":
        return proj_ids.get(id(child))
    return None


def compute_lineage(qualified: exp.Expr, catalog: Catalog) -> Lineage:
    """Lineage of a qualified statement. Raises a refusal when any column cannot be placed."""
    root = build_scope(qualified)
    if root is None:
        raise not_understood("the statement has no query scope")
    walker = _Walker(catalog)
    scopes = list(root.traverse())
    walker.traversed = {id(s.expression): s for s in scopes}
    walker.traversed_ids = {id(s) for s in scopes}
    for scope in scopes:
        walker.outputs_of(scope)
    walker.lineage.outputs = walker.outputs_of(root)
    for node in qualified.walk():
        if isinstance(node, (exp.Column, exp.TableColumn)) and id(node) not in walker.seen:
            if isinstance(node, exp.Column) and node.find_ancestor(exp.Column) is not None:
                continue
            raise not_understood(f'column reference "{node.sql(dialect="postgres")}" could not be placed')
    return walker.lineage
