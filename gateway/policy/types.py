"""Frozen values that cross the policy boundary.

The analyzer turns SQL into :class:`Access` values; the policy engine turns accesses and a
:class:`Profile` into a :class:`Decision`. Neither side sees the other's internals: the policy never
sees SQL text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from gateway.policy.naming import Naming
    from gateway.policy.registries import RegistryEntry
    from gateway.policy.writes import WriteRight

Action = Literal["allow", "redact", "deny"]

#: Order of strictness: the most restrictive action over a set of tags wins.
ACTION_RANK: dict[str, int] = {"allow": 0, "redact": 1, "deny": 2}

#: Tag given to anything the policy does not classify (fail closed).
UNCLASSIFIED = "unclassified"

Purpose = Literal[
    "service_delivery",
    "criminal_law_enforcement",
    "required_by_law",
    "court_order",
    "governor_authorized",
    "civil_immigration_enforcement",
]
#: The purpose tokens (SPEC 3), in order: derived from :data:`Purpose`.
PURPOSES: tuple[str, ...] = get_args(Purpose)

#: Kinds of requester in the requesters file: the agency's own staff, anyone else, and an immigration
#: agency (treated as ``civil_immigration_enforcement`` whatever purpose it states).
RequesterKind = Literal["internal", "external", "immigration_agency"]
REQUESTER_KINDS: tuple[str, ...] = ("internal", "external", "immigration_agency")
#: who a switch or vendor relays for: the originating agency (NCIC ORI) and the end user there
ORIGIN_FIELDS = ("ori", "end_user")


@dataclass(frozen=True)
class PurposeClaim:
    """What a requester states for a request: the purpose and its justification fields."""

    purpose: str | None = None
    case_number: str | None = None
    legal_citation: str | None = None
    order_reference: str | None = None
    authorization_id: str | None = None
    ori: str | None = None  # originating agency, for requesters that relay (switches, vendors)
    end_user: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


#: The claim's fields, each a ``gateway.NAME`` session setting (SPEC 4): derived from :class:`PurposeClaim`.
CLAIM_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PurposeClaim))
#: The justification fields: every claim field but the purpose itself and the origin (ori, end_user).
JUSTIFICATION_FIELDS: tuple[str, ...] = tuple(f for f in CLAIM_FIELDS if f != "purpose" and f not in ORIGIN_FIELDS)
#: ``gateway.purpose``, ``gateway.case_number``...
GATEWAY_SETTINGS: tuple[str, ...] = tuple(f"gateway.{f}" for f in CLAIM_FIELDS)


@dataclass(frozen=True)
class Certification:
    """A signed certification (SB21-131, 24-74-105 C.R.S.): the requester will neither use the data
    for immigration enforcement (``no_immigration_use``) nor pass it to anyone who does
    (``no_redisclosure``). It counts only with both clauses, unrevoked, signed within the policy's
    ``certification_valid_days``."""

    signed_on: date
    document: str = ""
    id: str = ""
    signer: str = ""
    form_version: str = ""
    no_immigration_use: bool = False
    no_redisclosure: bool = False
    revoked_on: date | None = None
    revoked_reason: str = ""

    @property
    def label(self) -> str:
        return self.id or self.document or f"signed {self.signed_on}"

    @property
    def complete(self) -> bool:
        return self.no_immigration_use and self.no_redisclosure


@dataclass(frozen=True)
class Requester:
    """An authenticated requester, as the requesters file defines it."""

    name: str
    agency: str
    internal: bool
    purposes: frozenset[str]
    roles: frozenset[str] = frozenset()
    certification: Certification | None = None
    is_example_credential: bool = False
    kind: str = ""  # RequesterKind; empty: derived from ``internal``

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", "internal" if self.internal else "external")
    relay: str | None = None  # "switch" | "vendor": relays for other agencies, each request names its ORI

    @property
    def is_auditor(self) -> bool:
        return "auditor" in self.roles


@dataclass(frozen=True)
class Caps:
    """Caps and rate limits for one requester and purpose (None: no cap)."""

    rows_per_answer: int | None = None
    individuals_per_day: int | None = None
    requests_per_minute: int | None = None
    bulk_access: bool = True  # False: must name individuals; COPY, cursors and exports refused


@dataclass(frozen=True)
class Profile:
    """What one requester, with one stated purpose, may see: the analyzer's only input from policy.

    ``actions`` maps a classification tag to its action; tags not named get ``default_action``.
    ``key`` identifies the profile's visibility and the requester (the analysis answers
    ``current_user`` for the requester): two profiles with the same key get the same analysis for
    the same SQL, so it is part of every cache key.
    """

    requester: str
    purpose: str | None
    actions: tuple[tuple[str, Action], ...]
    default_action: Action = "redact"
    external: bool = False
    reason: str = ""
    rule: str = ""
    no_data: bool = False  # reads no table at all (the auditor)
    #: the authorization or court order the purpose named: classified columns outside its scope are denied
    entry: RegistryEntry | None = None
    #: an external requester's certification: the id that applied, or why none did
    certification: str = ""
    certification_lapse: str = ""  # "certification_missing" | "certification_expired" | ""
    lapse_tags: frozenset[str] = frozenset()  # tags made stricter by the lapse
    exception: bool = False  # an exception purpose: every released answer carries the use notice
    kind: str = "internal"  # the requester's kind (RequesterKind)
    naming: Naming | None = None  # the policy's definition of naming an individual (SPEC 9)
    must_name: bool = False  # an answer carrying the naming tag must name its individuals
    caps: Caps = Caps()
    #: staff writes the policy grants this requester under this purpose (policy/writes.py)
    writes: tuple[WriteRight, ...] = ()
    #: the tags of immigration status (24-74-104: writes of them need required_by_law)
    status_tags: frozenset[str] = frozenset()
    key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.key:
            body = ",".join(f"{t}={a}" for t, a in sorted(self.actions))
            key = (f"{body};default={self.default_action};ext={int(self.external)};nodata={int(self.no_data)}"
                   f";who={self.requester};name={int(self.must_name)}")
            if self.entry is not None:
                key += f";entry={self.entry.kind}:{self.entry.id}:{self.entry.scope.key}"
            if self.writes:
                key += f";writes={'|'.join(r.key for r in self.writes)};kind={self.kind};purpose={self.purpose}"
            if self.certification_lapse:
                key += f";lapse={self.certification_lapse}:{','.join(sorted(self.lapse_tags))}"
            object.__setattr__(self, "key", key)

    def action_for(self, tags: frozenset[str] | tuple[str, ...]) -> Action:
        """The most restrictive action over ``tags`` (no tags: allow)."""
        table = dict(self.actions)
        best: Action = "allow"
        for tag in tags:
            action = table.get(tag, self.default_action)
            if ACTION_RANK[action] > ACTION_RANK[best]:
                best = action
        return best


#: How a column is used in a statement. ``output`` is a bare projection that reaches the requester;
#: every other usage influences the result in another way.
Usage = Literal[
    "output",
    "where",
    "join",
    "group by",
    "having",
    "order by",
    "window",
    "distinct",
    "case",
    "function argument",
    "aggregate",
    "expression",
    "subquery",
    "cte",
    "set operation",
    "limit",
    "cast",
    "whole-row reference",
    "values",
    "lateral",
    "write",  # a column a write sets (or ``*``: the rows a DELETE removes)
]


@dataclass(frozen=True)
class ColumnRef:
    """A base column: a column of a table or view in the live catalog."""

    schema: str
    relation: str
    column: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.relation}.{self.column}"


@dataclass(frozen=True)
class Access:
    """One use of one base column (or a whole row when ``column`` is ``*``) by a statement."""

    column: ColumnRef
    tags: frozenset[str]
    usage: Usage
    output_name: str | None = None  # the result column name, for ``output`` usages


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one statement."""

    action: Literal["allow", "redact", "deny"]
    reason: str
    rule: str = ""
    redacted: tuple[str, ...] = ()  # output column names that come back as NULL
    masked: frozenset[ColumnRef] = frozenset()  # base columns replaced by NULL in the rewrite
