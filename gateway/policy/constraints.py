"""Frozen values that say how a statement constrains the rows of each relation it reads.

The analyzer builds them (``gateway/analyzer/anchors.py``); the policy reads them to decide whether
a statement names the individuals it is about (``gateway/policy/naming.py``). No SQL crosses: a
column is a relation reference and a name, a value is a literal's position or a parameter number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Value:
    kind: Literal["literal", "param", "token"]
    pos: int  # literal: character offset in the request; token: token index; param: its number ($n)
    text: str = ""  # literal: its text as analyzed (a shape-cached request resolves its own)
    cast: str = ""  # a cast right around the value: "int" (int2/4/8), "float8", "float4"; "" none or another


@dataclass(frozen=True)
class Col:
    ref: int  # index into Constraints.refs
    column: str


@dataclass(frozen=True)
class Equals:
    col: Col
    values: tuple[Value, ...]
    array: bool = False  # ``= ANY(x)`` with one array value: its length is known per request


@dataclass(frozen=True)
class Link:
    source: Col
    target: Col
    both: bool = True  # False: only ``target`` is restricted by ``source`` (LEFT JOIN ON, IN (SELECT))


@dataclass(frozen=True)
class Either:
    branches: tuple[tuple[Equals, ...], ...]


Atom = Equals | Link | Either


@dataclass(frozen=True)
class RelationRef:
    schema: str
    relation: str
    alias: str
    output_tags: frozenset[str] = frozenset()  # tags of this relation's columns that reach the answer

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.relation}"


@dataclass(frozen=True)
class Constraints:
    refs: tuple[RelationRef, ...] = ()
    atoms: tuple[Atom, ...] = ()


