"""Keep result column names as PostgreSQL would name them for the statement as written.

sqlglot normalises some calls when it prints them (``now()`` -> ``CURRENT_TIMESTAMP``), and
PostgreSQL names an unaliased result column after the function it sees. Where the printed name would
differ from the written one, the projection gets an explicit alias with the written name.
"""

from __future__ import annotations

from sqlglot import exp


def _written_name(node: exp.Expr, sql: str) -> str | None:
    meta = node.meta
    if "start" not in meta or "end" not in meta:
        return None
    text = sql[meta["start"] : meta["end"] + 1]
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    return text.lower()


def _printed_name(node: exp.Func) -> str:
    printed = node.sql(dialect="postgres")
    head = printed.split("(", 1)[0].strip()
    return head.strip('"').lower()


def preserve_output_names(tree: exp.Expr, sql: str) -> None:
    """Alias top-level projections whose printed function name would change the column name."""
    select = tree if isinstance(tree, exp.Select) else None
    if select is None:
        return
    for projection in list(select.expressions):
        if isinstance(projection, exp.Alias):
            continue
        inner = projection
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Cast):  # PostgreSQL names x::type after x when x has a name
            inner = inner.this
            while isinstance(inner, exp.Paren):
                inner = inner.this
        if not isinstance(inner, exp.Func) or isinstance(inner, (exp.Anonymous, exp.Cast)):
            continue
        written = _written_name(inner, sql)
        if written and written.isidentifier() and written != _printed_name(inner):
            projection.replace(exp.Alias(this=projection.copy(), alias=exp.to_identifier(written, quoted=True)))
