"""How a statement constrains the rows of each relation it reads: the facts the policy needs to
decide whether a statement names the individuals it is about (SPEC section 9).

The analyzer records, without judging them, the comparisons that restrict rows:

* :class:`Equals` - a column equal to values: ``c = 5``, ``c = $1``, ``c IN (...)``,
  ``c = ANY(ARRAY[...])``, ``c = ANY($1)`` (an array whose length is known per request);
* :class:`Link` - a column equal to another column (an equality join, ``USING``, a correlated
  equality) or to the output of a subquery (``c IN (SELECT k ...)``, ``c = (SELECT k ...)``);
* :class:`Either` - an ``OR`` whose every branch is a conjunction of ``Equals``.

Every column is placed on a base *relation reference* (a table or view node of the statement):
a column of a derived table or CTE is followed to the base column it passes unchanged, when the
derived query is a plain projection read once (no grouping, aggregate, DISTINCT, LIMIT, window,
set operation, recursion); otherwise the comparison is dropped, which can only leave a relation
unconstrained (fail closed). Comparisons under ``NOT``, in ``HAVING``, in a ``RIGHT``/``FULL``
join's ``ON`` or on the preserved side of a ``LEFT`` join's ``ON`` are not recorded either.
Values are literal tokens (by character offset in the request) or parameters (by number): which
individuals are named is resolved per request, so one analysis serves a whole statement shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, build_scope

from gateway.policy.constraints import Atom, Col, Constraints, Either, Equals, Link, RelationRef, Value
from gateway.policy.types import ColumnRef


@dataclass
class _Builder:
    refs: list[RelationRef] = field(default_factory=list)
    ref_of: dict[int, int] = field(default_factory=dict)  # id(table node) -> index
    atoms: list[Atom] = field(default_factory=list)
    scope_of: dict[int, Scope] = field(default_factory=dict)  # id(query expression) -> scope
    uses: dict[int, int] = field(default_factory=dict)  # id(scope) -> how many FROM items read it


def read_constraints(qualified: exp.Expr, output_tags: dict[tuple[str, str], frozenset[str]]) -> Constraints:
    """The constraints of a qualified statement. ``output_tags`` maps (schema, relation) to the tags
    of its columns that reach the statement's answer."""
    root = build_scope(qualified)
    if root is None:
        return Constraints()
    b = _Builder()
    scopes = list(root.traverse())
    for scope in scopes:
        b.scope_of[id(scope.expression)] = scope
        for source in scope.sources.values():
            if isinstance(source, Scope):
                b.uses[id(source)] = b.uses.get(id(source), 0) + 1
    for scope in scopes:
        for alias, source in scope.sources.items():
            if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier) and source.args.get("db"):
                key = (source.args["db"].name, source.name)
                b.ref_of[id(source)] = len(b.refs)
                b.refs.append(RelationRef(key[0], key[1], alias, output_tags.get(key, frozenset())))
    for scope in scopes:
        if isinstance(scope.expression, exp.Select):
            _select(b, scope, scope.expression)
    return Constraints(tuple(b.refs), tuple(b.atoms))


def _select(b: _Builder, scope: Scope, select: exp.Select) -> None:
    where = select.args.get("where")
    if where is not None:
        _conjuncts(b, scope, where.this, None)
    for join in select.args.get("joins") or ():
        on = join.args.get("on")
        if on is None:
            continue
        side = (join.args.get("side") or "").upper()
        if side == "":
            _conjuncts(b, scope, on, None)
        elif side == "LEFT":
            _conjuncts(b, scope, on, join.this.alias_or_name)


def _conjuncts(b: _Builder, scope: Scope, node: exp.Expr, only: str | None) -> None:
    """Record the atoms of a condition's top-level conjunction. ``only``: the alias of a LEFT JOIN's
    joined side, the one relation its ON restricts."""
    node = _unparen(node)
    if isinstance(node, exp.And):
        _conjuncts(b, scope, node.this, only)
        _conjuncts(b, scope, node.expression, only)
        return
    if isinstance(node, exp.Or):
        branches = []
        for branch in _flatten_or(node):
            parts: list[exp.Expr] = []
            _flatten_and(branch, parts)
            found = tuple(a for p in parts if isinstance(a := _atom(b, scope, p, only), Equals))
            if not found:
                return  # a branch that constrains nothing: the OR constrains nothing
            branches.append(found)
        b.atoms.append(Either(tuple(branches)))
        return
    atom = _atom(b, scope, node, only)
    if atom is not None:
        b.atoms.append(atom)


def _atom(b: _Builder, scope: Scope, node: exp.Expr, only: str | None) -> Equals | Link | None:
    node = _unparen(node)
    if isinstance(node, exp.EQ):
        left, right = _unparen(node.this), _unparen(node.expression)
        if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
            left, right = right, left
        if not isinstance(left, exp.Column):
            return None
        if isinstance(right, exp.Column):
            if only is not None:
                if left.table == only and right.table != only:
                    left, right = right, left
                if right.table != only or left.table == only:
                    return None
                src, dst = _col(b, scope, left), _col(b, scope, right)
                return Link(src, dst, both=False) if src and dst else None
            src, dst = _col(b, scope, left), _col(b, scope, right)
            return Link(src, dst) if src and dst and src.ref != dst.ref else None
        if only is not None and left.table != only:
            return None
        col = _col(b, scope, left)
        if col is None:
            return None
        if isinstance(right, exp.Any):
            return _any(col, _unparen(right.this))
        if isinstance(right, exp.Subquery):
            return _subquery_link(b, right.this, col)
        value = _value(right)
        return Equals(col, (value,)) if value is not None else None
    if isinstance(node, exp.In) and isinstance(_unparen(node.this), exp.Column):
        column = _unparen(node.this)
        if only is not None and column.table != only:
            return None
        col = _col(b, scope, column)
        if col is None:
            return None
        query = node.args.get("query")
        if query is not None:
            return _subquery_link(b, query.this if isinstance(query, exp.Subquery) else query, col)
        values = [_value(v) for v in node.expressions]
        if not values or any(v is None for v in values):
            return None
        return Equals(col, tuple(v for v in values if v is not None))
    return None


def _any(col: Col, inner: exp.Expr) -> Equals | None:
    if isinstance(inner, exp.Array):
        values = [_value(v) for v in inner.expressions]
        if not values or any(v is None for v in values):
            return None
        return Equals(col, tuple(v for v in values if v is not None))
    value = _value(inner)
    return Equals(col, (value,), array=True) if value is not None else None


def _subquery_link(b: _Builder, query: exp.Expr, target: Col) -> Link | None:
    scope = b.scope_of.get(id(query))
    if scope is None or not isinstance(query, exp.Select) or len(query.expressions) != 1:
        return None
    projection = _unalias(query.expressions[0])
    if not isinstance(projection, exp.Column):
        return None
    source = _col(b, scope, projection)
    return Link(source, target, both=False) if source is not None else None


_CASTS = {exp.DataType.Type.BIGINT: "int", exp.DataType.Type.INT: "int", exp.DataType.Type.SMALLINT: "int",
          exp.DataType.Type.DOUBLE: "float8", exp.DataType.Type.FLOAT: "float4"}


def _value(node: exp.Expr) -> Value | None:
    node = _unparen(node)
    cast = ""
    if isinstance(node, exp.Cast):
        # how the backend compares the value with the key (9.4::bigint is 9; 9.0000000000000001::float8 is 9.0)
        to = node.to
        if to.this == exp.DataType.Type.ARRAY and to.expressions:
            to = to.expressions[0]
        cast = _CASTS.get(to.this, "") if isinstance(to, exp.DataType) else ""
        node = _unparen(node.this)
    if isinstance(node, exp.Literal):
        return Value("literal", int(node.meta.get("start", -1)), node.this, cast)
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return Value("param", int(node.this.this), cast=cast)
    return None


def _col(b: _Builder, scope: Scope, column: exp.Column) -> Col | None:
    """The base relation reference and column ``column`` reads, or None when it is not a base column
    passed through unchanged."""
    for _ in range(64):
        source = _find_source(scope, column.table)
        if isinstance(source, exp.Table):
            index = b.ref_of.get(id(source))
            return Col(index, column.name) if index is not None else None
        if not isinstance(source, Scope) or not _plain(b, source):
            return None
        select = source.expression
        projection = next((p for p in select.expressions if p.alias_or_name == column.name), None)
        inner = _unalias(projection) if projection is not None else None
        if not isinstance(inner, exp.Column) or not inner.table:
            return None
        scope, column = source, inner
    return None


def _find_source(scope: Scope, name: str) -> object:
    current: Scope | None = scope
    while current is not None:
        if name in current.sources:
            return current.sources[name]
        current = current.parent
    return None


def _plain(b: _Builder, scope: Scope) -> bool:
    """A derived query whose rows are rows of its sources, read by one FROM item only."""
    select = scope.expression
    if not isinstance(select, exp.Select) or b.uses.get(id(scope), 0) != 1:
        return False
    if any(select.args.get(k) for k in ("group", "having", "distinct", "limit", "offset", "qualify", "windows")):
        return False
    if select.find(exp.AggFunc, exp.Window) is not None:
        return False
    with_ = scope.parent.expression.args.get("with_") if scope.parent is not None else None
    return not (with_ is not None and with_.args.get("recursive"))


def _unparen(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _unalias(node: exp.Expr) -> exp.Expr:
    return _unparen(node.this) if isinstance(node, exp.Alias) else _unparen(node)


def _flatten_or(node: exp.Expr) -> list[exp.Expr]:
    node = _unparen(node)
    if isinstance(node, exp.Or):
        return _flatten_or(node.this) + _flatten_or(node.expression)
    return [node]


def _flatten_and(node: exp.Expr, into: list[exp.Expr]) -> None:
    node = _unparen(node)
    if isinstance(node, exp.And):
        _flatten_and(node.this, into)
        _flatten_and(node.expression, into)
    else:
        into.append(node)


def output_relation_tags(outputs: list[tuple[str, dict[ColumnRef, str]]], projections: list[exp.Expr],
                         tags_of: object) -> dict[tuple[str, str], frozenset[str]]:
    """Tags of each relation's columns that reach the answer; a bare ``count(...)`` carries none."""
    out: dict[tuple[str, str], set[str]] = {}
    for i, (_name, origins) in enumerate(outputs):
        if i < len(projections) and isinstance(_unalias(projections[i]), exp.Count):
            continue
        for ref in origins:
            tags = tags_of(ref)  # type: ignore[operator]
            if tags:
                out.setdefault((ref.schema, ref.relation), set()).update(tags)
    return {k: frozenset(v) for k, v in out.items()}
