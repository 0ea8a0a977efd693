"""Fail-closed syntax check: every node of a reading statement must be on the allowlist.

sqlglot turns what it does not understand into ``exp.Command`` and parses some writes as a
``Select`` (``SELECT ... INTO``, writable CTEs): both are refused here, as is every node type not
listed, every function not on the function allowlist, row locks and ``TABLESAMPLE`` (sampling is by
page, and pages depend on the widths of classified values).
"""

from __future__ import annotations

from sqlglot import exp

from gateway.analyzer.errors import not_understood, refused
from gateway.analyzer.functions import refusal

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


def check_statement(tree: exp.Expr, sql: str) -> None:
    """Raise a refusal for anything in ``tree`` that a reading statement may not contain."""
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
            if isinstance(node.this, exp.Identifier) and node.this.name.lower() == "pg_catalog" and isinstance(node.expression, exp.Func):
                continue
            raise not_understood("qualified function calls outside pg_catalog and field selection are not supported")
        if type(node) in _ALLOWED_TYPES:
            continue
        if isinstance(node, exp.Func):
            reason = refusal(node, sql)
            if reason:
                raise refused(reason, "function.allowlist")
            continue
        raise not_understood(f"unsupported syntax ({type(node).__name__})")
