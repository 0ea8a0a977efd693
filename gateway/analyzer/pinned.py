"""Literals whose value the analysis read: *pinned*, so no cached plan is reused for another value.

The plan caches (``gateway.plan.cache``) reuse one analysis for every text of a statement's shape,
splicing each text's literals into the cached SQL. That is sound only for a literal whose value the
decision does not depend on. Where the analysis does read a value, the literal is pinned: its
source position is dropped, so ``plan.fresh._template`` does not make it a slot but keeps its exact
text among the template's fixed literals, and a text with another value there is planned afresh.

Pinned: the setting name of ``current_setting()`` / ``set_config()`` (which settings a requester
may read or change), every literal the column qualification consumed (``ORDER BY 2`` and
``GROUP BY 2`` name an output column by position), and the number of every parameter (``$2``: the
individuals a statement names are read from the parameters by number).
"""

from __future__ import annotations

from sqlglot import exp


def pin_literal(node: exp.Expr) -> None:
    """The analysis depends on the value of literal ``node``: never a template slot."""
    node.meta.pop("start", None)


def literal_starts(tree: exp.Expr) -> set[int]:
    """The source positions of the literals in ``tree`` (a literal the gateway made has none)."""
    return {int(lit.meta["start"]) for lit in tree.find_all(exp.Literal) if "start" in lit.meta}


def pin_parameters(tree: exp.Expr) -> None:
    """Pin the number of every ``$n`` in ``tree``: ``= ANY($1) AND $2 > 0`` is not ``= ANY($2) AND $1 > 0``."""
    for param in tree.find_all(exp.Parameter):
        if isinstance(param.this, exp.Literal):
            pin_literal(param.this)


def pin_consumed(tree: exp.Expr, before: set[int], after: set[int]) -> None:
    """Pin the literals of ``tree`` that the analysis consumed: present ``before`` it ran on a copy,
    gone ``after`` (a positional reference replaced by the column it names)."""
    gone = before - after
    if not gone:
        return
    for lit in list(tree.find_all(exp.Literal)):
        if lit.meta.get("start") in gone:
            pin_literal(lit)
