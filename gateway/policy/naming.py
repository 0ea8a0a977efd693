"""Does a statement name the individuals it is about? (SPEC section 9, "Name the individual".)

A relation is *anchored* when its rows are restricted to named individuals: by equality to values
(``=``, ``IN``, ``= ANY``; at most ``max_values``) on a column of an identifying key, by equality on
every column of a combination (first name + last name + date of birth), by every branch of an
``OR`` doing one of those, or by an equality with a column of the same key on an anchored relation
(an equality join, ``USING``, ``IN (SELECT key ...)``). A statement whose answer carries the
individuals tag from a relation that is not anchored does not name its individuals.

>>> from gateway.policy.constraints import Col, Constraints, Equals, Link, RelationRef, Value
>>> naming = Naming.build("pii", {"person": ("dmv.persons.person_id", "dmv.licenses.person_id")},
...                       ("person",), ("person",), (), 25)
>>> refs = (RelationRef("dmv", "persons", "p", frozenset({"pii"})), RelationRef("dmv", "licenses", "l", frozenset({"pii"})))
>>> five = Equals(Col(0, "person_id"), (Value("literal", 40, "5"),))
>>> evaluate(Constraints(refs, (five, Link(Col(0, "person_id"), Col(1, "person_id")))), naming).problem
''
>>> evaluate(Constraints(refs, (five,)), naming).unanchored[0].alias
'l'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product

from gateway.errors import StatementTooComplex
from gateway.policy.constraints import Col, Constraints, Either, Equals, Link, RelationRef, Value

#: individuals one combination of value lists may name (``first_name IN (...) AND last_name IN (...)
#: AND date_of_birth IN (...)`` names every triple): the lists' product was built whole, cubic in the
#: statement: 40 values each named 64,000 individuals (1.8 s of analysis), 21 each 9,261 (60-100 ms of
#: event loop at every cache hit, then admit and the record). Past this the statement is refused
#: before anything is built (a personal-data answer is refused past ``max_values`` anyway)
MAX_COMBINATIONS = 1000


@dataclass(frozen=True)
class Naming:
    """The policy's definition of naming an individual (from the file's ``individuals`` section)."""

    tag: str
    key_columns: tuple[tuple[str, str], ...]  # (schema.relation.column, key)
    identifying: frozenset[str]
    joins: frozenset[str]
    combinations: tuple[tuple[str, ...], ...]
    max_values: int

    @classmethod
    def build(cls, tag: str, keys: Mapping[str, tuple[str, ...]], identifying: tuple[str, ...],
              joins: tuple[str, ...], combinations: tuple[tuple[str, ...], ...], max_values: int) -> Naming:
        pairs = tuple((column, key) for key, columns in keys.items() for column in columns)
        return cls(tag, pairs, frozenset(identifying), frozenset(joins), tuple(combinations), max_values)

    @cached_property
    def _key_of(self) -> dict[str, str]:
        return dict(self.key_columns)

    def key_of(self, qualified_column: str) -> str | None:
        return self._key_of.get(qualified_column)

    def hint(self, ref: RelationRef) -> str:
        """What would anchor ``ref``: its identifying columns, combinations and join keys."""
        prefix = ref.qualified + "."
        own = [c for c, k in self.key_columns if c.startswith(prefix) and k in self.identifying]
        combos = [" + ".join(c.removeprefix(prefix) for c in combo) for combo in self.combinations
                  if combo and combo[0].startswith(prefix)]
        links = sorted({f"{c.removeprefix(prefix)} ({k})" for c, k in self.key_columns
                        if c.startswith(prefix) and (k in self.joins or k in self.identifying)})
        ways = []
        if own:
            ways.append(f"equality (=, IN or = ANY, at most {self.max_values} values) on {' or '.join(own)}")
        if combos:
            ways.append(f"equality on {' and on '.join(combos)} together")
        if links:
            ways.append(f"an equality join on {', '.join(links)} with a relation that names its individuals")
        return "; or ".join(ways) if ways else "nothing: the policy names no key of this relation (bulk access only)"


@dataclass(frozen=True)
class Named:
    """One individual a statement names: a key (or combination) and its value(s)."""

    key: str  # the key's name in the policy (person, plate, ...) or "combination"
    columns: tuple[str, ...]  # qualified column(s), one per value
    values: tuple[Value, ...]
    array: bool = False  # one array value (``= ANY($1)``): each element names one individual
    kinds: tuple[str, ...] = ()  # per column: how its values compare (gateway/plan/keys.py; set by the plan stage)


@dataclass(frozen=True)
class NamingResult:
    unanchored: tuple[RelationRef, ...] = ()
    named: tuple[Named, ...] = ()
    problem: str = ""  # why the statement does not name its individuals ('' when it does)
    needs_naming: bool = False  # the answer carries the individuals tag


@dataclass
class _State:
    anchored: dict[int, str] = field(default_factory=dict)  # ref -> how
    named: list[Named] = field(default_factory=list)


def evaluate(constraints: Constraints, naming: Naming) -> NamingResult:
    refs = constraints.refs
    required = [i for i, r in enumerate(refs) if naming.tag in r.output_tags]
    if not required:  # nothing to anchor: still who it names, for the record and the notices (SPEC 10)
        return NamingResult(named=_mentioned(constraints, refs, naming))
    state = _State()
    too_long: list[str] = []
    equals = [a for a in constraints.atoms if isinstance(a, Equals)]
    for atom in equals:
        found = _direct(atom, refs, naming)
        if found is None:
            continue
        if len(atom.values) > naming.max_values:
            too_long.append(f"a list of {len(atom.values)} values on {found.columns[0]}")
            continue
        state.anchored.setdefault(atom.col.ref, "key")
        state.named.extend(_singles(found))
    for i in range(len(refs)):
        for combo, named in _combinations(i, equals, refs, naming):
            if len(named) > naming.max_values:
                too_long.append(f"{len(named)} combinations of {' + '.join(combo)}")
                continue
            state.anchored.setdefault(i, "combination")
            state.named.extend(named)
    for atom in constraints.atoms:
        if isinstance(atom, Either):
            _either(atom, refs, naming, state)
    links = [a for a in constraints.atoms if isinstance(a, Link)]
    changed = True
    while changed:
        changed = False
        for link in links:
            for src, dst in ((link.source, link.target), (link.target, link.source)) if link.both else ((link.source, link.target),):
                if src.ref in state.anchored and dst.ref not in state.anchored and _same_key(src, dst, refs, naming):
                    state.anchored[dst.ref] = f"join from {refs[src.ref].alias}"
                    changed = True
    unanchored = tuple(refs[i] for i in required if i not in state.anchored)
    named = tuple(dict.fromkeys(state.named))
    if unanchored:
        ref = unanchored[0]
        problem = (f"relation {ref.qualified} (as {ref.alias}) is not restricted to named individuals; "
                   f"it would be by {naming.hint(ref)}")
        if too_long:
            problem += f" (not counted: {', '.join(too_long)}; at most {naming.max_values} values)"
        return NamingResult(unanchored, named, problem, True)
    if sum(1 for n in named if not n.array) > naming.max_values:
        return NamingResult((), named, f"the statement names more than {naming.max_values} individuals", True)
    return NamingResult((), named, "", True)


def _mentioned(constraints: Constraints, refs: tuple[RelationRef, ...], naming: Naming) -> tuple[Named, ...]:
    """Every individual a statement whose answer carries no personal data names: ``SELECT
    immigration_status ... WHERE person_id = 15`` names person 15 in its WHERE clause, and a release
    under a court order owes that person a notice. Each value of a list (there is no 25-value rule
    to keep: nothing is anchored), each combination, and each branch of an ``OR``."""
    top = [a for a in constraints.atoms if isinstance(a, Equals)]
    groups = [top] + [[*top, *branch] for a in constraints.atoms if isinstance(a, Either) for branch in a.branches]
    named: list[Named] = []
    for equals in groups:  # a combination within one branch only (never first name of one, last of another)
        for atom in equals:
            found = _direct(atom, refs, naming)
            if found is not None:
                named.extend(_singles(found))
        for i in range(len(refs)):
            for _, combos in _combinations(i, equals, refs, naming):
                named.extend(combos)
    return tuple(dict.fromkeys(named))


def _qualified(col: Col, refs: tuple[RelationRef, ...]) -> str:
    return f"{refs[col.ref].qualified}.{col.column}"


def _direct(atom: Equals, refs: tuple[RelationRef, ...], naming: Naming) -> Named | None:
    column = _qualified(atom.col, refs)
    key = naming.key_of(column)
    if key is None or key not in naming.identifying:
        return None
    return Named(key, (column,), atom.values, atom.array)


def _singles(found: Named) -> list[Named]:
    return [Named(found.key, found.columns, (v,), found.array) for v in found.values]


def _combinations(ref: int, equals: list[Equals], refs: tuple[RelationRef, ...], naming: Naming):  # type: ignore[no-untyped-def]
    prefix = refs[ref].qualified + "."
    for combo in naming.combinations:
        if not combo or not combo[0].startswith(prefix):
            continue
        lists = []
        for column in combo:
            atom = next((a for a in equals if a.col.ref == ref and _qualified(a.col, refs) == column and not a.array), None)
            if atom is None:
                break
            lists.append(atom.values)
        else:
            total = 1
            for values in lists:
                total *= len(values)
            if total > MAX_COMBINATIONS:
                raise StatementTooComplex(
                    f"gateway: the statement names {total} individuals by {' + '.join(combo)}, more than "
                    f"{MAX_COMBINATIONS} (list fewer values)", rule="limits.combinations")
            yield combo, [Named("combination", combo, values) for values in product(*lists)]


def _either(atom: Either, refs: tuple[RelationRef, ...], naming: Naming, state: _State) -> None:
    for ref in range(len(refs)):
        if ref in state.anchored:
            continue
        named: list[Named] = []
        for branch in atom.branches:
            found = [n for a in branch if a.col.ref == ref and (n := _direct(a, refs, naming)) is not None
                     and len(a.values) <= naming.max_values]
            combos = [c for _, c in _combinations(ref, list(branch), refs, naming)]
            if not found and not combos:
                break
            named.extend(_singles(found[0]) if found else combos[0])
        else:
            if len(named) <= naming.max_values:
                state.anchored[ref] = "every OR branch"
                state.named.extend(named)


def _same_key(a: Col, b: Col, refs: tuple[RelationRef, ...], naming: Naming) -> bool:
    key_a, key_b = naming.key_of(_qualified(a, refs)), naming.key_of(_qualified(b, refs))
    return key_a is not None and key_a == key_b and (key_a in naming.joins or key_a in naming.identifying)
