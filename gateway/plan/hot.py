"""The plan stage's per-request work on a cache hit, compiled (mypyc, see ``setup.py``; the source is
the fallback, ``GATEWAY_PURE_PYTHON=1``): a skeleton hit's statements spliced from the cached ones,
the request's :class:`~gateway.plan.request.Plan`, and the individuals ``Gateway.admit`` binds.

Everything here builds the same frozen values the rest of the plan stage builds (``StatementPlan``,
``NamedValue``, ``Analysis``, ``Plan``), field for field, without their dataclass ``__init__`` (a
frozen dataclass sets each field through ``object.__setattr__``): a copy of the cached value's fields
with the request's own put in. The callers keep the decisions (which cache, which plan); this module
only assembles. Pure.
"""

from __future__ import annotations

from typing import Any

_new = object.__new__


class RequestIds:
    """Request ids ``<6 hex>-<7 digits>``: one prefix per process start, a counter after it (a native
    class when compiled: the increment runs without the interpreter, so threads never share a number)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count:07d}"


def skeleton_statements(statements: tuple[Any, ...], statement_cls: Any, named_cls: Any, literals: list[str],
                        values: list[str]) -> tuple[Any, ...]:
    """A skeleton hit's statements: each cached statement with this text's literals spliced into its
    template (``literals``: their texts as written, ``values``: their values). ``statements`` holds,
    per statement, (cached plan, template parts or None for a fixed statement, the literal number of
    each slot, the recipes of the individuals it names). A recipe is (the fields every individual
    of it shares, ((True, literal number) or (False, the part as is), ...))."""
    out: list[Any] = []
    for entry in statements:
        plan = entry[0]
        pieces = entry[1]
        if pieces is None:
            out.append(plan)
            continue
        slots: tuple[int, ...] = entry[2]
        recipes: tuple[Any, ...] = entry[3]
        text = [pieces[0]]
        slot_values: list[str] = []
        i = 1
        for k in slots:
            text.append(literals[k])  # a plain literal's text is its rendering
            text.append(pieces[i])
            slot_values.append(values[k])
            i += 1
        fields: dict[str, Any] = plan.__dict__.copy()
        fields["sql"] = "".join(text)
        fields["parts"] = pieces
        fields["slots"] = tuple(slot_values)
        if recipes:
            individuals: list[Any] = []
            for recipe in recipes:
                parts: list[Any] = []
                for is_literal, x in recipe[1]:
                    parts.append(values[x] if is_literal else x)
                value = _new(named_cls)
                named: dict[str, Any] = value.__dict__
                named.update(recipe[0])
                named["parts"] = tuple(parts)
                individuals.append(value)
            fields["individuals"] = tuple(individuals)
        else:
            fields["individuals"] = ()
        statement = _new(statement_cls)
        statement.__dict__.update(fields)
        out.append(statement)
    return tuple(out)


def skeleton_key(pkey: Any, parts: list[str]) -> tuple[Any, list[str]]:
    """The skeleton cache's key of a text split into ``parts`` (the text between the literals, which
    literals are strings) and the literals."""
    literals: list[str] = parts[1::2]
    kinds: list[bool] = []
    for lit in literals:
        kinds.append(lit[0] == "'")
    return (pkey, "\x00".join(parts[0::2]), tuple(kinds)), literals


def literal_values(literals: list[str]) -> list[str]:
    """The values of plain literals as the skeleton split finds them: a string unquoted, a number as written."""
    out: list[str] = []
    for lit in literals:
        out.append(lit[1:-1].replace("''", "'") if lit[0] == "'" else lit)
    return out


def with_fields(cls: Any, base: dict[str, Any], changes: dict[str, Any]) -> Any:
    """A new ``cls`` value with ``base``'s fields and ``changes`` over them (no ``__init__``)."""
    value = _new(cls)
    fields: dict[str, Any] = value.__dict__
    fields.update(base)
    fields.update(changes)
    return value


def request_plan(plan_cls: Any, defaults: dict[str, Any], request_id: str, sql: str, analysis: Any, profile: Any,
                 basis: Any) -> Any:
    """The request's Plan from its analysis (``Gateway._finish`` on the path without a refusal)."""
    fields: dict[str, Any] = dict(defaults)
    fields["request_id"] = request_id
    fields["sql"] = sql
    fields["statements"] = analysis.statements
    fields["decision"] = analysis.decision
    fields["error"] = analysis.error
    fields["profile"] = profile
    fields["cache"] = analysis.cache
    fields["tokens"] = analysis.tokens
    fields["literals"] = analysis.literals
    origin = analysis.origin
    fields["origin"] = origin if origin is not None else analysis
    fields["basis"] = basis
    plan = _new(plan_cls)
    plan.__dict__.update(fields)
    return plan


def named(statements: tuple[Any, ...], params: Any) -> tuple[str, ...]:
    """``Plan.named``: the individuals the statements name, parameters bound, once each, in order."""
    found: list[str] = []
    for st in statements:
        for value in st.individuals:
            found.extend(value.resolve(params))
    if len(found) < 2:
        return tuple(found)
    return tuple(dict.fromkeys(found))


def rebound(plan: Any, request_id: str, individuals: tuple[str, ...] | None) -> Any:
    """``plan`` again under another request id (and, not None, other individuals): a copy of its fields."""
    fresh = _new(plan.__class__)
    fields: dict[str, Any] = fresh.__dict__
    fields.update(plan.__dict__)
    fields["request_id"] = request_id
    if individuals is not None:
        fields["individuals"] = individuals
    return fresh


def bound(plan: Any, individuals: tuple[str, ...]) -> Any:
    """``plan`` naming ``individuals`` (admit): a copy of its fields."""
    fresh = _new(plan.__class__)
    fields: dict[str, Any] = fresh.__dict__
    fields.update(plan.__dict__)
    fields["individuals"] = individuals
    return fresh
