"""Frozen values the plan stage hands to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.analyzer.arrays import array_elements, binary_array_elements
from gateway.catalog.model import Catalog
from gateway.errors import GatewayError
from gateway.plan.hot import resolve_value, text_of
from gateway.plan.keys import canonical, key_kind
from gateway.policy.naming import Named
from gateway.policy.types import Access, Decision
from gateway.policy.writes import WriteTarget

_T = TypeVar("_T")


def evolve(value: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the frozen values of the plan stage, at a fraction of its cost (a
    frozen dataclass sets each field through ``object.__setattr__``: 4 µs for a StatementPlan on the
    hot path). Only for these plain frozen dataclasses: no ``__post_init__``, no slots, fields only."""
    new = object.__new__(type(value))
    fields = new.__dict__
    fields.update(value.__dict__)
    fields.update(changes)
    return new


@dataclass(frozen=True)
class StatementPlan:
    kind: str  # select | write | transaction | set | show | gateway_set | gateway_show | noop | empty
    sql: str
    command_tag: str
    redacted: tuple[str, ...] = ()
    setting: tuple[str, str | None] | None = None
    accesses: tuple[Access, ...] = ()
    decision: Decision | None = None
    masked: tuple[str, ...] = ()
    # the printed SQL as template parts and the literal values between them (shape-cached statements):
    # lets the request log hash the literals without tokenizing the printed SQL again
    parts: tuple[str, ...] | None = field(default=None, compare=False)
    slots: tuple[str, ...] = field(default=(), compare=False)
    # the individuals the statement names (SPEC 9): literal values by token index, parameters by number
    named: tuple[Named, ...] = ()
    personal: bool = False  # the answer carries personal data (the naming tag)
    anchored: bool = True  # every relation that personal data comes from names its individuals
    individuals: tuple[NamedValue, ...] = ()  # ``named`` resolved for this request's literals
    write: WriteTarget | None = None  # a staff write the policy allows (kind "write"): what it changes


@dataclass(frozen=True)
class NamedValue:
    """One individual a request names: its key and value parts (a literal's text, or ``$n``: the
    parameter numbered n, resolved when the request is bound)."""

    key: str
    parts: tuple[str | int, ...]  # str: a literal's text; int: a parameter number
    array: bool = False  # one array parameter: each element names one individual
    kinds: tuple[str, ...] = ()  # per part: the key column's canonical form (plan.keys; "": exact)

    def resolve(self, params: tuple[object, ...] | list[object] | None) -> list[str]:
        """``key:value`` texts of the individuals, with parameters bound (a combination's parts
        joined by ``|``); a parameter that is missing or NULL names nobody. Each value in the
        canonical form of its key column's type (``09``, ``'9'`` and ``9.0`` of an integer key: ``9``)."""
        return resolve_value(self, params)  # gateway.plan.hot (compiled)

    def resolve_array(self, params: tuple[object, ...] | list[object] | None) -> list[str]:
        """:meth:`resolve` of ``= ANY(x)``, one array part: each element of the array names one."""
        part = self.parts[0]
        if isinstance(part, int):
            if not params or part > len(params) or params[part - 1] is None:
                return []
            part = params[part - 1]  # type: ignore[assignment]
        kind = self.kinds[0] if self.kinds else ""
        return [f"{self.key}:{canonical(v, kind)}" for v in _elements(part) if v is not None]


def _elements(value: object) -> list[object]:
    """The elements of an array parameter (a list from a driver, or PostgreSQL's ``{a,b}`` text)."""
    if isinstance(value, (list, tuple)):  # a multidimensional array is nested lists: = ANY reads every leaf
        return [leaf for item in value for leaf in (_elements(item) if isinstance(item, (list, tuple)) else (item,))]
    if isinstance(value, (bytes, bytearray, memoryview)):  # a binary-format parameter (asyncpg sends arrays so)
        elements = binary_array_elements(bytes(value))
        if elements is not None:
            return list(elements)
    return array_elements(text_of(value))  # PostgreSQL's reading: [1:60]={...}, {{..},{..}}, "quoted"


def with_kinds(named: tuple[Named, ...], catalog: Catalog) -> tuple[Named, ...]:
    """``named`` with each value's canonical form (:mod:`gateway.plan.keys`), from its key column's
    type in ``catalog`` (a column the catalog does not know: exact text)."""
    out = []
    for item in named:
        kinds = []
        for i, qualified in enumerate(item.columns):
            schema, _, rest = qualified.partition(".")
            relation_name, _, column_name = rest.rpartition(".")
            relation = catalog.relation(schema, relation_name)
            column = relation.column(column_name) if relation is not None else None
            kind = key_kind(column.type_sql) if column is not None else ""
            cast = item.values[i].cast if i < len(item.values) else ""
            if kind == "int" and cast:  # compared after the cast: 9.4::bigint is 9, 9.0000000000000001::float8 is 9.0
                kind = f"int-{cast}" if not item.array or cast != "int" else kind
            kinds.append(kind)
        out.append(Named(item.key, item.columns, item.values, item.array, tuple(kinds)))
    return tuple(out)


def resolve_named(named: tuple[Named, ...], tokens: list[object]) -> tuple[NamedValue, ...]:
    """Give each named individual this request's literal texts (tokens by index)."""
    return resolve_named_texts(named, [t.text for t in tokens])  # type: ignore[attr-defined]


def resolve_named_texts(named: tuple[Named, ...], texts: list[str]) -> tuple[NamedValue, ...]:
    """:func:`resolve_named` from the tokens' texts."""
    out = []
    for item in named:
        parts: list[str | int] = []
        for value in item.values:
            if value.kind == "param":
                parts.append(value.pos)
            elif value.kind == "token" and 0 <= value.pos < len(texts):
                parts.append(texts[value.pos])
            else:
                parts.append(value.text)
        out.append(NamedValue(item.key, tuple(parts), item.array, item.kinds))
    return tuple(out)


@dataclass(frozen=True)
class Analysis:
    statements: tuple[StatementPlan, ...]
    decision: Decision
    error: GatewayError | None = None
    cache: str = "miss"  # "exact" | "skeleton" | "shape" | "miss"
    # on a shape hit, the tokens of the analyzed text: the request log hashes its literals without
    # tokenizing it again (never pickled across to an analysis worker: only set by the cache)
    tokens: Any = field(default=None, compare=False, repr=False)
    # on a skeleton hit instead: the text between the literals and the literal values (the request
    # log hashes the values into the text: the same result as hashing from the tokens)
    literals: tuple[list[str], tuple[str, ...]] | None = field(default=None, compare=False, repr=False)
    # on a shape or skeleton hit: the cached analysis whose statements these copy with other literals
    # (the same accesses, masks and kinds objects), so what the request log says of them is the same
    origin: Any = field(default=None, compare=False, repr=False)
    # a refused statement's named individuals (its literals; a refusal has no statements to carry them):
    # a refusal still owes the persons it named a subject notice (SPEC 10)
    refused_individuals: tuple[NamedValue, ...] = ()
    refused_accesses: tuple[Access, ...] = ()  # ... and what it tried to read (what the notice says was asked)

    @property
    def redacted(self) -> tuple[str, ...]:
        return redacted_columns(self.statements)


def redacted_columns(statements: tuple[StatementPlan, ...]) -> tuple[str, ...]:
    """Every redacted output column of ``statements``, once each, in order."""
    return tuple(dict.fromkeys(c for st in statements for c in st.redacted))


def denied(error: GatewayError) -> Analysis:
    return Analysis((), Decision("deny", error.message.removeprefix("gateway: "), rule=error.rule or ""), error,
                    refused_individuals=getattr(error, "individuals", ()), refused_accesses=getattr(error, "accesses", ()))
