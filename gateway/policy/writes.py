"""Staff writes the policy allows: grants per requester (or kind, or role), table and column.

SPEC 4/5: only reading statements reach the database for external requesters; what other statements
agency staff may run is policy. The ``writes:`` section of the policy file lists grants; a requester
gets, under its stated purpose, the union of the grants that name it (:func:`rights_for`), carried in
its :class:`~gateway.policy.types.Profile`. :func:`decide_write` is the policy's answer for one write
the analyzer has read (``analyzer/writes.py``): it never sees SQL.

24-74-104 C.R.S.: a write that adds or changes place of birth, citizenship or immigration documents
(the columns the policy classifies with a status tag) is allowed only under ``required_by_law`` (whose
``legal_citation`` the purpose check requires). Deleting a row of a table holding such columns counts.

>>> grant = WriteGrant(table="dmv.persons", requesters=("dmv_clerk",), update=("city", "zip"))
>>> right = WriteRight.of(grant)
>>> right.table, sorted(right.update), right.delete
(('dmv', 'persons'), ['city', 'zip'], False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from gateway.policy.types import ColumnRef, Decision, Profile, Purpose

#: the one purpose under which 24-74-104 lets a write add or change status columns
REQUIRED_BY_LAW = "required_by_law"


class WriteGrant(BaseModel):
    """One grant in the policy file's ``writes:`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    table: str = Field(pattern=r"^[^.\s]+\.[^.\s]+$")  # schema.table, a base table of the live schema
    requesters: tuple[str, ...] = ()  # requester names
    kinds: tuple[str, ...] = ()  # requester kinds (only "internal" may write)
    roles: tuple[str, ...] = ()  # requester roles
    purposes: tuple[Purpose, ...] = ()  # empty: whatever purpose (or none) the requester states
    insert: tuple[str, ...] = ()  # columns an INSERT may name
    update: tuple[str, ...] = ()  # columns an UPDATE may set
    delete: bool = False  # DELETE of rows of the table
    description: str = ""

    def names(self, name: str, kind: str, roles: Iterable[str]) -> bool:
        return name in self.requesters or kind in self.kinds or bool(set(roles) & set(self.roles))


@dataclass(frozen=True)
class WriteRight:
    """What a profile may write in one table (grants merged)."""

    table: tuple[str, str]
    insert: frozenset[str] = frozenset()
    update: frozenset[str] = frozenset()
    delete: bool = False

    @classmethod
    def of(cls, grant: WriteGrant) -> WriteRight:
        schema, name = grant.table.split(".", 1)
        return cls((schema, name), frozenset(grant.insert), frozenset(grant.update), grant.delete)

    def merge(self, other: WriteRight) -> WriteRight:
        return WriteRight(self.table, self.insert | other.insert, self.update | other.update, self.delete or other.delete)

    @property
    def key(self) -> str:
        return (f"{self.table[0]}.{self.table[1]}:i={','.join(sorted(self.insert))}:u={','.join(sorted(self.update))}"
                f":d={int(self.delete)}")


def rights_for(grants: Iterable[WriteGrant], name: str, kind: str, roles: Iterable[str], internal: bool,
               purpose: str | None) -> tuple[WriteRight, ...]:
    """The write rights of one requester under one purpose: only the agency's own staff ever write."""
    if not internal or kind != "internal":
        return ()
    roles = tuple(roles)
    merged: dict[tuple[str, str], WriteRight] = {}
    for grant in grants:
        if not grant.names(name, kind, roles):
            continue
        if grant.purposes and purpose not in grant.purposes:
            continue
        right = WriteRight.of(grant)
        merged[right.table] = merged[right.table].merge(right) if right.table in merged else right
    return tuple(sorted(merged.values(), key=lambda r: r.table))


@dataclass(frozen=True)
class WriteRequest:
    """What the analyzer read from one write, as the policy needs it (no SQL)."""

    kind: str  # "insert" | "update" | "delete"
    table: tuple[str, str]
    assigned: tuple[str, ...]  # columns the write sets (INSERT's column list, UPDATE's SET)
    table_columns: tuple[str, ...]  # every column of the table


@dataclass(frozen=True)
class WriteTarget:
    """What the execution of an allowed write needs to know (the constraint check, the command tag)."""

    kind: str
    table: tuple[str, str]
    assigned: tuple[str, ...]
    returning: bool = False


def _deny(reason: str, rule: str) -> Decision:
    return Decision("deny", reason, rule=rule)


def decide_write(write: WriteRequest, profile: Profile, tags_of: Callable[[str], frozenset[str]]) -> Decision:
    """Allow or deny one write: a grant must cover it, each column it sets must be one the requester sees
    whole under its purpose, and a status column (24-74-104) needs ``required_by_law``."""
    schema, table = write.table
    name = f"{schema}.{table}"
    who = f"requester {profile.requester}"
    under = f"purpose {profile.purpose}" if profile.purpose else "no stated purpose"
    if profile.external or profile.kind != "internal":
        return _deny(f"{who} is outside the agency: only reading statements reach the database for it",
                     "write.external")
    status = profile.status_tags
    touched = [c for c in write.assigned if tags_of(c) & status]
    if write.kind == "delete":
        touched = [c for c in write.table_columns if tags_of(c) & status]
    if touched and profile.purpose != REQUIRED_BY_LAW:
        what = "deletes rows holding" if write.kind == "delete" else "adds or changes"
        return _deny(f"this write {what} {', '.join(f'{name}.{c}' for c in touched)}: place of birth, citizenship "
                     f"or immigration documents may be added or changed only under required_by_law with its "
                     f"legal_citation (24-74-104 C.R.S.); stated: {under}", "write.24_74_104")
    right = next((r for r in profile.writes if r.table == write.table), None)
    if right is None:
        return _deny(f"{who} has no write grant on {name} under {under}; the policy allows staff writes per table "
                     "and column (writes: in the policy file)", "write.no_grant")
    if write.kind == "delete" and not right.delete:
        return _deny(f"{who} may not DELETE from {name} under {under} (no delete grant)", "write.no_grant.delete")
    allowed = right.insert if write.kind == "insert" else right.update
    outside = [c for c in write.assigned if c not in allowed]
    if outside:
        verb = "INSERT" if write.kind == "insert" else "UPDATE"
        return _deny(f"{who} may not {verb} column(s) {', '.join(outside)} of {name} under {under} "
                     f"(granted: {', '.join(sorted(allowed)) or 'none'})", f"write.no_grant.{write.kind}")
    entry = profile.entry
    for column in write.assigned:
        tags = tags_of(column)
        if entry is not None and tags and not entry.scope.covers(ColumnRef(schema, table, column)):
            return _deny(f"column {name}.{column} is outside the scope of {entry.label} (scope: {entry.scope}): "
                         "nothing classified is written beyond it", f"registry.out_of_scope.{entry.kind}")
        action = profile.action_for(tags)
        if action != "allow":
            return _deny(f"column {name}.{column} is classified {', '.join(sorted(tags))} and is not visible to {who} "
                         f"under {under}: a write may set only columns the requester sees", "write.hidden_column")
    return Decision("allow", f"write on {name} allowed by the policy's grant to {profile.requester} under {under}",
                    rule=f"write.allow.{write.kind}")


def grant_problems(grants: Iterable[WriteGrant], tags_of: Callable[[str, str, str], frozenset[str]],
                   status_tags: frozenset[str], columns_of: Callable[[str, str], Iterable[str]],
                   requester: Callable[[str], object | None] | None = None) -> list[str]:
    """check-policy against the law: each grant names someone, only staff, grants something, and a
    write of a status column (24-74-104) is limited to ``purposes: [required_by_law]``. ``columns_of``
    gives a table's columns (the policy's listing, or the live schema's); ``requester`` looks a name up
    in the requesters file (``kind`` and ``internal`` read from what it returns)."""
    problems: list[str] = []
    for i, grant in enumerate(grants):
        label = f"writes[{i}] ({grant.table})"
        schema, table = grant.table.split(".", 1)
        if not (grant.requesters or grant.kinds or grant.roles):
            problems.append(f"{label}: names no requester, kind or role")
        bad_kinds = [k for k in grant.kinds if k != "internal"]
        if bad_kinds:
            problems.append(f"{label}: only the agency's own staff (kind internal) may write, not {', '.join(bad_kinds)} "
                            "(SPEC 5: only reading statements reach the database for anyone else)")
        if requester is not None:
            for name in grant.requesters:
                found = requester(name)
                if found is not None and (getattr(found, "kind", "") != "internal" or not getattr(found, "internal", False)):
                    problems.append(f"{label}: requester {name} is not the agency's own staff (kind "
                                    f"{getattr(found, 'kind', '?')}): it may never write")
        if not (grant.insert or grant.update or grant.delete):
            problems.append(f"{label}: grants nothing (insert, update or delete)")
        named = sorted({*grant.insert, *grant.update})
        status_cols = [c for c in named if tags_of(schema, table, c) & status_tags]
        if grant.delete:
            status_cols += [f"{c} (by delete)" for c in columns_of(schema, table) if tags_of(schema, table, c) & status_tags]
        if status_cols and tuple(grant.purposes) != (REQUIRED_BY_LAW,):
            problems.append(f"{label}: grants a write of {', '.join(status_cols)} (place of birth, citizenship or "
                            "immigration documents) without limiting it to purposes: [required_by_law] "
                            "(24-74-104 C.R.S.)")
    return problems


def grant_schema_problems(grants: Iterable[WriteGrant], relation: Callable[[str, str], object | None]) -> list[str]:
    """check-policy against the live schema: each grant names a base table and columns it has."""
    problems: list[str] = []
    for i, grant in enumerate(grants):
        label = f"writes[{i}] ({grant.table})"
        schema, table = grant.table.split(".", 1)
        rel = relation(schema, table)
        if rel is None:
            problems.append(f"{label}: names no table in the database")
            continue
        kind = getattr(rel, "kind", "table")
        if kind not in ("table", "partitioned") or schema in ("pg_catalog", "information_schema"):
            problems.append(f"{label}: {grant.table} is a {kind}{' of the system catalog' if schema.startswith(('pg_', 'information')) else ''}; "
                            "writes go to base tables only")
        live = {c.name for c in getattr(rel, "columns", ())}
        missing = sorted({c for c in (*grant.insert, *grant.update) if c not in live})
        if missing:
            problems.append(f"{label}: no such column(s) in the database: {', '.join(missing)}")
    return problems


@dataclass(frozen=True)
class TableRule:
    """A fact of the live schema that can make a write's answer depend on other rows' values: a unique
    index or exclusion constraint (``complex``: on expressions or partial), a CHECK constraint, a foreign
    key out of the table or into it, a trigger or rule. ``columns`` are the target table's."""

    kind: str  # unique | check | fk_out | fk_in | trigger | default | generated
    columns: tuple[str, ...] = ()
    other: tuple[str, str] | None = None  # the other table of a foreign key
    other_columns: tuple[str, ...] = ()  # its columns; for a generated column, the columns it is made of
    complex: bool = False
    name: str = ""


def constraint_refusal(target: WriteTarget, rules: Iterable[TableRule], all_columns: tuple[str, ...],
                       hidden: Callable[[tuple[str, str]], frozenset[str] | None]) -> str | None:
    """Why the write's answer (its errors) could depend on values the requester may not see, or None.

    A unique key, exclusion or CHECK constraint over a hidden column, or a foreign key from or to hidden
    columns, answers with an error that depends on those values (an insert conflicting with a stored
    document number reveals it); triggers and rules can do anything. Such a write is refused, whatever the
    data, so the refusal itself reveals nothing."""
    def hidden_of(table: tuple[str, str], columns: Iterable[str]) -> set[str]:
        found = hidden(table)
        return set(columns) if found is None else set(columns) & found  # unknown relation: all hidden

    mine = hidden_of(target.table, all_columns)
    assigned = set(target.assigned)
    changes_rows = target.kind in ("insert", "update")
    name = f"{target.table[0]}.{target.table[1]}"
    for rule in rules:
        cols = set(all_columns if rule.complex else rule.columns)
        if rule.kind == "trigger":
            return (f"{name} has a trigger or rule ({rule.name}) the gateway cannot analyze: writes to it are refused "
                    "(its effects and errors could depend on values the requester may not see)")
        if rule.kind == "unique" and cols & mine and (target.kind == "insert" or (target.kind == "update" and cols & assigned)):
            return (f"{name}'s unique or exclusion constraint {rule.name} covers {', '.join(sorted(cols & mine))}, "
                    "not visible to the requester: whether the write conflicts would reveal it")
        if rule.kind == "check" and changes_rows and cols & mine:
            return (f"{name}'s CHECK constraint {rule.name} reads {', '.join(sorted(cols & mine))}, not visible to the "
                    "requester: whether the write passes it would reveal it")
        if rule.kind == "fk_out" and rule.other is not None and changes_rows and (target.kind == "insert" or cols & assigned):
            far = hidden_of(rule.other, rule.other_columns)
            if far or cols & mine:
                return (f"{name}'s foreign key {rule.name} refers to columns not visible to the requester: whether the "
                        "write passes it would reveal them")
        if rule.kind == "fk_in" and rule.other is not None and (target.kind == "delete" or (target.kind == "update" and cols & assigned)):
            far = hidden_of(rule.other, rule.other_columns)
            if far:
                return (f"{rule.other[0]}.{rule.other[1]}'s foreign key {rule.name} into {name} is made of columns not "
                        "visible to the requester: whether the write passes it would reveal them")
    return None


def implicit_status_refusal(target: WriteTarget, rules: Iterable[TableRule], status: frozenset[str]) -> str | None:
    """Why the write would add or change a status column it does not name (24-74-104), or None.

    ``status`` are the target's status columns the requester's purpose may not write (empty under
    ``required_by_law``). An INSERT fills every column it does not list with its default (or identity);
    a stored generated column is computed on INSERT and recomputed when a column it is made of is set.
    Either writes place of birth, citizenship or immigration documents as surely as naming the column.

    >>> t = WriteTarget("insert", ("dmv", "r"), ("id",))
    >>> implicit_status_refusal(t, [TableRule("default", ("country",))], frozenset({"country"})) is not None
    True
    >>> implicit_status_refusal(t, [TableRule("default", ("country",))], frozenset()) is None
    True
    """
    if not status or target.kind == "delete":
        return None
    name = f"{target.table[0]}.{target.table[1]}"
    assigned = set(target.assigned)
    for rule in rules:
        if rule.kind not in ("default", "generated"):
            continue
        column = rule.columns[0] if rule.columns else rule.name
        if column not in status or column in assigned:
            continue
        if rule.kind == "default" and target.kind != "insert":
            continue
        if rule.kind == "generated" and target.kind == "update" and not (set(rule.other_columns) & assigned):
            continue
        how = "its default" if rule.kind == "default" else "a generated column's expression"
        return (f"this write sets {name}.{column} through {how}: place of birth, citizenship or immigration "
                "documents may be added or changed only under required_by_law with its legal_citation "
                "(24-74-104 C.R.S.)")
    return None
