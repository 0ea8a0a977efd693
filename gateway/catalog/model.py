"""The live catalog as frozen values: relations, their columns and types, views and functions."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    type_sql: str  # format_type() output, schema-qualified when outside pg_catalog
    type_oid: int = 0
    not_null: bool = False


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    kind: str  # "table", "view", "matview", "foreign", "partitioned"
    columns: tuple[Column, ...]
    oid: int = 0
    view_definition: str | None = None  # pg_get_viewdef for views

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    kind: str  # "f" function, "a" aggregate, "w" window, "p" procedure
    security_definer: bool = False


@dataclass(frozen=True)
class Catalog:
    """Everything the analyzer needs to know about the database, loaded once and swapped whole."""

    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)
    functions: frozenset[tuple[str, str]] = frozenset()
    version: str = ""  # a digest of the catalog contents: part of every cache key

    def relation(self, schema: str, name: str) -> Relation | None:
        return self.relations.get((schema, name))

    def schemas(self) -> frozenset[str]:
        return frozenset(schema for schema, _ in self.relations)
