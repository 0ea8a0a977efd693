"""Fail-closed syntax check: every node of a reading statement must be on the allowlist.

sqlglot turns what it does not understand into ``exp.Command`` and parses some writes as a
``Select`` (``SELECT ... INTO``, writable CTEs): both are refused here, as is every node type not
listed, every function not on the function allowlist, row locks and ``TABLESAMPLE`` (sampling is by
page, and pages depend on the widths of classified values).
"""

from __future__ import annotations

from sqlglot import exp

from gateway.analyzer.errors import not_understood, refused
from gateway.analyzer.functions import QUALIFIED_FUNCTIONS, refusal

QUERY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values, exp.Subquery)

_ALLOWED = (
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values, exp.From, exp.Join, exp.Where,
    exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Fetch, exp.LimitOptions,
    exp.Distinct, exp.With, exp.CTE, exp.TableAlias, exp.Table, exp.Subquery, exp.Column,
    exp.Identifier, exp.Star, exp.Alias, exp.Literal, exp.Null, exp.Boolean, exp.Parameter,
    exp.Placeholder, exp.Paren, exp.Tuple, exp.Array, exp.Bracket, exp.Interval, exp.DataType,
    exp.DataTypeParam, exp.Var, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.DPipe,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is,
    exp.Not, exp.And, exp.Or, exp.Neg, exp.Like, exp.ILike, exp.SimilarTo, exp.In, exp.Between,
    exp.Exists, exp.Any, exp.All, exp.Case, exp.If, exp.Window, exp.WindowSpec, exp.Filter,
    exp.WithinGroup, exp.Lateral, exp.Unnest, exp.Escape, exp.BitwiseAnd, exp.BitwiseOr,
    exp.BitwiseXor, exp.BitwiseNot, exp.BitwiseLeftShift, exp.BitwiseRightShift, exp.ArrayContainsAll,
    exp.ArrayContainedBy, exp.ArrayOverlaps, exp.Collate, exp.AtTimeZone, exp.Slice, exp.Rollup,
    exp.Cube, exp.GroupingSets, exp.TableColumn, exp.JSONPath, exp.JSONPathRoot, exp.JSONPathKey,
    exp.JSONPathSubscript, exp.RegexpILike, exp.Kwarg, exp.PivotAlias, exp.ColumnDef, exp.Cast, exp.TryCast,
    exp.ByteString, exp.HexString, exp.BitString, exp.RawString, exp.National, exp.UnicodeString,
)
_ALLOWED_TYPES = frozenset(_ALLOWED)


_OPERATORS: dict[str, type[exp.Expr] | None] = {}


def _operator(node: exp.Operator) -> exp.Expr | None:
    """``a OPERATOR(pg_catalog.~) b`` as the node ``a ~ b`` parses into (None: not a known operator)."""
    op = str(node.args.get("operator") or "")
    schema, _, name = op.rpartition(".")
    if schema.strip().strip('"').lower() not in ("", "pg_catalog") or not name.strip():
        return None
    name = name.strip()
    if name not in _OPERATORS:
        from gateway.analyzer.dialect import DIALECT

        try:
            parsed = DIALECT.parse(f"SELECT a {name} b")[0].expressions[0]
        except Exception:  # noqa: BLE001 - an operator sqlglot cannot read stays refused
            parsed = None
        ok = parsed is not None and isinstance(parsed.this, exp.Column) and isinstance(parsed.args.get("expression"), exp.Column)
        _OPERATORS[name] = type(parsed) if ok else None
    cls = _OPERATORS[name]
    return cls(this=node.this, expression=node.expression) if cls is not None else None


#: Set-returning functions of one column: ``FROM f(...) x`` names that column ``x``, as PostgreSQL does.
_ONE_COLUMN = frozenset({"unnest", "explode", "generate_series", "generate_subscripts", "regexp_split_to_table",
                         "string_to_table", "json_array_elements", "jsonb_array_elements",
                         "json_array_elements_text", "jsonb_array_elements_text", "json_object_keys",
                         "jsonb_object_keys"})


#: Catalog set-returning functions of several columns: the names PostgreSQL gives them.
_COLUMNS = {"pg_get_keywords": ("word", "catcode", "barelabel", "catdesc", "baredesc"),
            "pg_options_to_table": ("option_name", "option_value")}


def _table_function(table: exp.Table) -> None:
    db = table.args.get("db")
    if db is not None:
        if db.name.lower() != "pg_catalog":
            raise refused("table functions outside pg_catalog are not allowed", "function.allowlist")
        table.set("db", None)  # the backend's search_path is pg_catalog: the same function
    func = table.this
    name = (str(func.name) if isinstance(func, exp.Anonymous) else func.sql_name()).lower()
    alias = table.args.get("alias")
    one_arg = len([a for a in func.iter_expressions()]) == 1
    if name in _COLUMNS and (alias is None or not alias.columns):
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias.name if alias is not None and alias.name else name),
                                          columns=[exp.to_identifier(c) for c in _COLUMNS[name]]))
        return
    if alias is not None and alias.this and not alias.columns and name in _ONE_COLUMN \
            and (one_arg or name not in ("unnest", "explode")):
        alias.set("columns", [exp.to_identifier(alias.name)])


def normalize(tree: exp.Expr) -> exp.Expr:
    """PostgreSQL spellings psql and drivers use, as the nodes the rest of the analyzer knows:
    ``OPERATOR(pg_catalog.op)``, ``COLLATE pg_catalog.default``, ``::pg_catalog.type``,
    ``pg_catalog.f(...)`` (the backend's search_path is pg_catalog: the same function), ``<> ALL(array)``."""
    for node in list(tree.walk()):
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
            _table_function(node)
        if isinstance(node, exp.Operator):
            replacement = _operator(node)
            if replacement is not None:
                node.replace(replacement)
        elif isinstance(node, exp.Collate) and isinstance(node.expression, exp.Column):
            col = node.expression
            if not col.table or col.table.lower() == "pg_catalog":
                node.set("expression", exp.to_identifier(col.name, quoted=True))
        elif isinstance(node, exp.DataType) and isinstance(node.args.get("kind"), exp.Dot):
            dot = node.args["kind"]
            if isinstance(dot.this, exp.Identifier) and dot.this.name.lower() == "pg_catalog" \
                    and isinstance(dot.expression, exp.Identifier):
                from gateway.analyzer.dialect import DIALECT

                node.replace(exp.DataType.build(dot.expression.name, dialect=DIALECT, udt=True))
        elif isinstance(node, exp.Dot) and isinstance(node.this, exp.Identifier) and isinstance(node.expression, exp.Func):
            if node.this.name.lower() == "pg_catalog" and node.parent is not None:
                node.replace(node.expression)
        elif isinstance(node, exp.Anonymous) and str(node.name).upper() in ("ALL", "ANY", "SOME") \
                and len(node.expressions) == 1:
            cls = exp.All if str(node.name).upper() == "ALL" else exp.Any
            node.replace(cls(this=exp.Paren(this=node.expressions[0])))
    return tree


def check_statement(tree: exp.Expr, sql: str) -> None:
    """Raise a refusal for anything in ``tree`` that a reading statement may not contain."""
    normalize(tree)
    if not isinstance(tree, QUERY_ROOTS):
        raise not_understood(f"statement type {type(tree).__name__} is not a plain read")
    for node in tree.walk():
        if isinstance(node, exp.Command):
            raise not_understood("the statement contains syntax the parser could not read")
        if isinstance(node, exp.Select):
            if node.args.get("into"):
                raise refused("SELECT ... INTO creates a table; only reads are allowed", "statement.select_into")
            if node.args.get("locks"):
                raise refused("row locks (FOR UPDATE/SHARE) are not allowed; only reads are", "statement.locks")
        if isinstance(node, exp.CTE) and not isinstance(node.this, QUERY_ROOTS):
            raise refused("a WITH clause may only hold reads (no writable CTEs)", "statement.writable_cte")
        if isinstance(node, exp.Table) and node.args.get("sample"):
            raise refused("TABLESAMPLE is not allowed (sampling by page depends on classified values)", "statement.tablesample")
        if isinstance(node, exp.Dot):
            if isinstance(node.this, exp.Identifier) and isinstance(node.expression, exp.Anonymous) \
                    and (node.this.name.lower(), str(node.expression.name).lower()) in QUALIFIED_FUNCTIONS:
                continue
            if isinstance(node.this, exp.Paren) and isinstance(node.expression, exp.Identifier):
                continue  # (expr).field: a field of a composite value (its expression is checked as usual)
            raise not_understood("qualified function calls outside pg_catalog and field selection are not supported")
        if type(node) in _ALLOWED_TYPES:
            continue
        if isinstance(node, exp.Func):
            reason = refusal(node, sql)
            if reason:
                raise refused(reason, "function.allowlist")
            continue
        raise not_understood(f"unsupported syntax ({type(node).__name__})")
