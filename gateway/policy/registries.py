"""Registries with scope: governor authorizations and court orders received, as the policy file lists them.

An entry is live on a date when it has taken effect and not lapsed. A release of classified columns
under ``governor_authorized`` or ``court_order`` is granted only within the entry's :class:`Scope`
(schemas, tables, columns); the policy engine checks the scope against the statement's accesses,
never its SQL.

>>> scope = Scope.of(schemas=("public",), tables=("dmv.persons",), columns=("dmv.licenses.status",))
>>> from gateway.policy.types import ColumnRef
>>> scope.covers(ColumnRef("dmv", "persons", "first_name")), scope.covers(ColumnRef("dmv", "licenses", "status"))
(True, True)
>>> scope.covers(ColumnRef("dmv", "lawful_presence", "immigration_status"))
False
>>> scope.covers(ColumnRef("dmv", "licenses", "*"))
False
>>> str(scope)
'schema public; table dmv.persons; column dmv.licenses.status'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.policy.types import ColumnRef

_PART = r"[^.\s]+"
_NAMES = {1: "schemas", 2: "tables", 3: "columns"}
_SHAPES = {"schemas": re.compile(rf"^{_PART}$"), "tables": re.compile(rf"^{_PART}\.{_PART}$"),
           "columns": re.compile(rf"^{_PART}\.{_PART}\.{_PART}$")}  # fmt: skip


@dataclass(frozen=True)
class Scope:
    """What an entry covers: whole schemas, whole tables (``schema.table``), single columns."""

    schemas: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    columns: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *, schemas: tuple[str, ...] = (), tables: tuple[str, ...] = (), columns: tuple[str, ...] = ()) -> Scope:
        return cls(frozenset(schemas), frozenset(tables), frozenset(columns))

    def covers(self, column: ColumnRef) -> bool:
        """Whether ``column`` (``*`` for a whole row: only a whole schema or table covers it) is in scope."""
        if column.schema in self.schemas or f"{column.schema}.{column.relation}" in self.tables:
            return True
        return column.column != "*" and str(column) in self.columns

    @property
    def key(self) -> str:
        return "|".join(",".join(sorted(part)) for part in (self.schemas, self.tables, self.columns))

    def __str__(self) -> str:
        parts = [f"schema {s}" for s in sorted(self.schemas)] + [f"table {t}" for t in sorted(self.tables)]
        return "; ".join(parts + [f"column {c}" for c in sorted(self.columns)]) or "nothing"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ScopeSpec(_Strict):
    """``scope:`` of an entry: a mapping ``{schemas, tables, columns}``, or a list of dotted names
    (``dmv``, ``dmv.persons``, ``dmv.persons.first_name``) sorted into the three by their parts."""

    schemas: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            out: dict[str, list[str]] = {"schemas": [], "tables": [], "columns": []}
            for item in value:
                text = str(item).strip()
                kind = _NAMES.get(text.count(".") + 1)
                if kind is None or not _SHAPES[kind].match(text):
                    raise ValueError(f"{text!r} is not a schema, schema.table or schema.table.column")
                out[kind].append(text)
            return out
        return value

    @model_validator(mode="after")
    def _shapes(self) -> ScopeSpec:
        for kind in ("schemas", "tables", "columns"):
            for name in getattr(self, kind):
                if not _SHAPES[kind].match(name):
                    raise ValueError(f"{kind}: {name!r} has the wrong number of dotted parts")
        if not (self.schemas or self.tables or self.columns):
            raise ValueError("a scope names at least one schema, table or column")
        return self

    def build(self) -> Scope:
        return Scope.of(schemas=self.schemas, tables=self.tables, columns=self.columns)


class CourtOrder(_Strict):
    """A court-issued order received; ``order_reference`` must name one (by its docket number)."""

    reference: str = Field(min_length=1, validation_alias=AliasChoices("docket", "reference"))
    court: str = Field(min_length=1)
    judge: str = Field(min_length=1)
    issued_on: date = Field(validation_alias=AliasChoices("date", "issued_on"))
    scope: ScopeSpec
    valid_until: date | None = None
    description: str = ""

    @field_validator("reference", mode="before")
    @classmethod
    def _reference_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @property
    def label(self) -> str:
        return f"court order {self.reference} ({self.court}, Judge {self.judge}, {self.issued_on})"

    def lapse(self, today: date) -> str | None:
        """None when the order is live on ``today``, else why not."""
        if self.issued_on > today:
            return f"court order {self.reference} is dated {self.issued_on}, in the future"
        if self.valid_until is not None and self.valid_until < today:
            return f"court order {self.reference} expired on {self.valid_until}"
        return None


class Authorization(_Strict):
    """A governor authorization on file; ``authorization_id`` must name one live on the request date."""

    id: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    scope: ScopeSpec
    valid_from: date | None = Field(default=None, validation_alias=AliasChoices("valid_from", "issued_on"))
    valid_until: date
    description: str = ""

    @property
    def label(self) -> str:
        return f"authorization {self.id} ({self.issuer})"

    def lapse(self, today: date) -> str | None:
        if self.valid_from is not None and self.valid_from > today:
            return f"authorization {self.id} takes effect on {self.valid_from}"
        if self.valid_until < today:
            return f"authorization {self.id} expired on {self.valid_until}"
        return None


@dataclass(frozen=True)
class RegistryEntry:
    """The entry a release was granted under, as the profile and the request record carry it."""

    kind: str  # "authorization" | "court_order"
    id: str
    label: str
    scope: Scope

    def as_record(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "label": self.label, "scope": str(self.scope)}


def entry_of(item: CourtOrder | Authorization) -> RegistryEntry:
    if isinstance(item, CourtOrder):
        return RegistryEntry("court_order", item.reference, item.label, item.scope.build())
    return RegistryEntry("authorization", item.id, item.label, item.scope.build())
