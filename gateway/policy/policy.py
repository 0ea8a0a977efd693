"""A loaded policy: column classification and the profile a requester gets for a stated purpose.

A :class:`Policy` is built once by :func:`gateway.policy.load.load_policy` and never changes; a new
file makes a new Policy that the caller swaps in whole.

>>> from gateway.policy.load import load_policy
>>> policy = load_policy("policies/colorado-dmv.yaml")
>>> sorted(policy.tags_for("dmv", "lawful_presence", "immigration_status"))
['immigration_status']
>>> sorted(policy.tags_for("dmv", "no_such_table", "x"))
['unclassified']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from types import MappingProxyType

from gateway.errors import PurposeRefused
from gateway.policy.limits import caps_for
from gateway.policy.model import NoPurposeSpec, PolicyFile, PurposeSpec
from gateway.policy.naming import Naming
from gateway.policy.purposes import JustificationChecker, field_value, justification_summary
from gateway.policy.writes import rights_for
from gateway.policy.types import ACTION_RANK, PURPOSES, UNCLASSIFIED, Action, Profile, PurposeClaim, Requester

ALL_COLUMNS = "*"
IMMIGRATION_PURPOSE = "civil_immigration_enforcement"
_UNCLASSIFIED = frozenset({UNCLASSIFIED})


@dataclass(frozen=True, eq=False)
class Policy:
    """An immutable, validated policy. Build it with :func:`gateway.policy.load.load_policy`."""

    file: PolicyFile
    source: str  # the path it was loaded from
    digest: str  # sha256 hex of the file bytes: goes in the request log
    tags: frozenset[str]  # declared tags plus "unclassified"
    _columns: Mapping[tuple[str, str], Mapping[str, frozenset[str]]]
    _defaults: Mapping[tuple[str, str], frozenset[str]]
    _checker: JustificationChecker

    @classmethod
    def build(cls, model: PolicyFile, *, source: str, digest: str) -> Policy:
        """Index a validated :class:`PolicyFile` (``load_policy`` has already checked it)."""
        columns: dict[tuple[str, str], Mapping[str, frozenset[str]]] = {}
        defaults: dict[tuple[str, str], frozenset[str]] = {}
        for qualified, listing in model.classification.items():
            schema, relation = qualified.split(".", 1)
            columns[(schema, relation)] = MappingProxyType(
                {col: frozenset(tags) for col, tags in listing.items() if col != ALL_COLUMNS}
            )
            if ALL_COLUMNS in listing:
                defaults[(schema, relation)] = frozenset(listing[ALL_COLUMNS])
        return cls(
            file=model,
            source=source,
            digest=digest,
            tags=frozenset(model.tags) | _UNCLASSIFIED,
            _columns=MappingProxyType(columns),
            _defaults=MappingProxyType(defaults),
            _checker=JustificationChecker.from_file(model),
        )

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Pickled as its validated file (a worker process rebuilds the indexes)."""
        return (_rebuild, (self.file, self.source, self.digest))

    # -- classification -------------------------------------------------------------------------

    @property
    def search_path(self) -> tuple[str, ...]:
        """Schemas that resolve unqualified table names, in order."""
        return self.file.search_path

    def tags_for(self, schema: str, relation: str, column: str) -> frozenset[str]:
        """Tags of one column; ``{"unclassified"}`` for anything the policy does not cover.

        ``column == "*"`` (a whole-row reference) gives the union over the relation's listed columns
        and its default, plus ``unclassified`` when the relation has no ``"*"`` default.
        """
        listing = self._columns.get((schema, relation))
        if listing is None:
            return _UNCLASSIFIED
        default = self._defaults.get((schema, relation), _UNCLASSIFIED)
        if column == ALL_COLUMNS:
            return frozenset().union(default, *listing.values())
        return listing.get(column, default)

    def covered_relations(self) -> frozenset[tuple[str, str]]:
        """``(schema, relation)`` pairs the classification lists."""
        return frozenset(self._columns)

    def listed_columns(self, schema: str, relation: str) -> Mapping[str, frozenset[str]]:
        """The columns listed for one relation (empty when the relation is not covered)."""
        return self._columns.get((schema, relation), MappingProxyType({}))

    # -- purposes -------------------------------------------------------------------------------

    def purpose(self, token: str) -> PurposeSpec | None:
        """The purpose's entry in the file (None for an unknown token)."""
        return self.file.purposes.get(token)  # type: ignore[call-overload]

    def is_statutory_request(self, token: str | None) -> bool:
        """Whether a request under ``token`` counts as a request for status in the quarterly report."""
        spec = self.purpose(token) if token else None
        return bool(spec and spec.statutory_request)

    def justification_summary(self, claim: PurposeClaim) -> str:
        """The justification fields of ``claim`` as ``field=value; ...`` for the request log."""
        return justification_summary(claim)

    def profile_for(self, requester: Requester, claim: PurposeClaim, now: datetime) -> Profile:
        """What ``requester`` may see under ``claim`` on ``now``'s date; raises PurposeRefused."""
        today = now.date()
        token = (claim.purpose or "").strip() or None
        if requester.is_auditor:
            return self._no_data_profile(requester, token)
        origin = self._origin(requester, claim)
        entry = None
        forced = ""
        if requester.kind == "immigration_agency":
            stated = token or "no purpose"
            token = IMMIGRATION_PURPOSE
            forced = f"; {requester.name} is an immigration agency: treated as {token} (stated: {stated})"
        if token is None:
            spec: PurposeSpec | NoPurposeSpec = self.file.no_purpose
            rule, reason = "no_purpose", "no purpose stated"
        elif forced:
            spec = self.purpose(token)  # type: ignore[assignment]
            rule, reason = f"purpose.{token}.forced", f"{token}{forced}"
        else:
            spec = self._allowed_purpose(requester, token)
            rule = f"purpose.{token}"
            details = [self._checker.check(field, claim, today) for field in spec.requires]
            reason = ", ".join([token, *details])
            entry = self._checker.registry_entry(spec.requires, claim)
        if origin:
            reason = f"{reason}; {origin}"
        default = spec.default_action or self.file.default_action
        actions = self._actions(spec.grants, default)
        certification, lapse_code, lapse_tags = "", "", frozenset()
        if not requester.internal:
            lapse = self._certification_lapse(requester, today)
            if lapse:
                lapse_code, certification = lapse
                stricter = set()
                for tag, action in self.file.external_requesters.without_certification.items():
                    if ACTION_RANK[action] > ACTION_RANK[actions[tag]]:
                        actions[tag] = action
                        stricter.add(tag)
                lapse_tags = frozenset(stricter)
                stripped = ", ".join(
                    f"{t} {a}" for t, a in sorted(self.file.external_requesters.without_certification.items())
                )
                reason = f"{reason}; external requester {certification} ({lapse_code}): {stripped}"
            else:
                assert requester.certification is not None
                certification = requester.certification.label
            if token is None:
                without = self.file.external_requesters.without_purpose
                for tag, action in without.items():
                    if ACTION_RANK[action] > ACTION_RANK[actions[tag]]:
                        actions[tag] = action
                stripped = ", ".join(f"{t} {a}" for t, a in sorted(without.items()))
                reason = f"{reason}; a requester outside the agency states a purpose to read personal data: {stripped}"
        caps = caps_for(self.file.limits, kind=requester.kind, requester=requester.name, purpose=token)
        return Profile(
            requester=requester.name,
            purpose=token,
            actions=tuple(sorted(actions.items())),
            default_action=_never_allow(default),
            external=not requester.internal,
            reason=reason,
            rule=rule,
            entry=entry,
            certification=certification,
            certification_lapse=lapse_code,
            lapse_tags=lapse_tags,
            exception=bool(getattr(spec, "exception", False)),
            kind=requester.kind,
            naming=self.naming,
            must_name=not caps.bulk_access,
            caps=caps,
            writes=rights_for(self.file.writes, requester.name, requester.kind, requester.roles, requester.internal,
                              token) if self.file.writes else (),
            status_tags=self.status_tags if self.file.writes else frozenset(),
        )

    @cached_property
    def status_tags(self) -> frozenset[str]:
        """The tags that hold immigration status (read from the policy: see ``lawcheck.tag_roles``)."""
        from gateway.policy.lawcheck import tag_roles

        return tag_roles(self)[0]

    @cached_property
    def naming(self) -> Naming:
        """The file's definition of naming an individual (``individuals``)."""
        ind = self.file.individuals
        return Naming.build(ind.tag, ind.keys, ind.identifying, ind.joins, ind.combinations, ind.max_values)

    def _origin(self, requester: Requester, claim: PurposeClaim) -> str:
        """For a requester that relays (switch, vendor): the ORI and end user it names, checked."""
        if requester.relay is None:
            return ""
        ori, end_user = field_value(claim, "ori"), field_value(claim, "end_user")
        rules = self.file.originating_agencies
        if ori is None or end_user is None:
            missing = " and ".join(f"gateway.{n}" for n, v in (("ori", ori), ("end_user", end_user)) if v is None)
            raise PurposeRefused(
                f"gateway: purpose refused: requester {requester.name} is a {requester.relay} relaying for other "
                f"agencies: each request names its originating agency and end user; set {missing}",
                rule="origin.missing")
        if not re.match(rules.ori_pattern, ori.upper()):
            raise PurposeRefused(f"gateway: purpose refused: {ori!r} is not an originating agency identifier (ORI)",
                                 rule="origin.not_an_ori")
        if any(re.search(p, ori, re.IGNORECASE) for p in rules.immigration_agency_oris):
            raise PurposeRefused(
                f"gateway: purpose refused: ORI {ori.upper()} is an immigration agency's: SB21-131 bars providing "
                "personal identifying information or immigration status for civil immigration enforcement",
                rule="origin.immigration_agency")
        return f"via {requester.relay} {requester.name} for ORI {ori.upper()} (end user {end_user})"

    def _allowed_purpose(self, requester: Requester, token: str) -> PurposeSpec:
        spec = self.purpose(token)
        if spec is None or token not in PURPOSES:
            raise PurposeRefused(
                f"gateway: purpose refused: unknown purpose {token!r} (known: {', '.join(PURPOSES)})",
                rule="purpose.unknown",
            )
        if token not in requester.purposes:
            allowed = ", ".join(sorted(requester.purposes)) or "none"
            raise PurposeRefused(
                f"gateway: purpose refused: requester {requester.name} may not use purpose {token} "
                f"(allowed: {allowed})",
                rule="purpose.not_allowed",
            )
        return spec

    def _actions(self, grants: Mapping[str, Action], default: Action) -> dict[str, Action]:
        actions: dict[str, Action] = {tag: grants.get(tag, default) for tag in self.tags}
        if UNCLASSIFIED not in grants:  # never allowed unless the file names it
            actions[UNCLASSIFIED] = _never_allow(default)
        return actions

    def _certification_lapse(self, requester: Requester, today: date) -> tuple[str, str] | None:
        """None when an external requester's certification is current, else (code, why not)."""
        cert = requester.certification
        days = self.file.external_requesters.certification_valid_days
        if cert is None:
            return "certification_missing", "has no certification on file"
        if cert.revoked_on is not None and cert.revoked_on <= today:
            return "certification_missing", f"certification {cert.label} was revoked on {cert.revoked_on}"
        if not cert.complete:
            return "certification_missing", (
                f"certification {cert.label} does not carry both clauses (no use for immigration enforcement, "
                "no passing on to anyone who does)")
        if cert.signed_on > today:
            return "certification_missing", f"certification {cert.label} is dated {cert.signed_on}, in the future"
        if (today - cert.signed_on).days > days:
            return "certification_expired", f"certification {cert.label} signed {cert.signed_on} is older than {days} days"
        return None

    def _no_data_profile(self, requester: Requester, token: str | None) -> Profile:
        if token is not None:
            raise PurposeRefused(
                f"gateway: purpose refused: requester {requester.name} reads the request log and reports only; "
                f"it may not state a data purpose ({token})",
                rule="purpose.not_allowed",
            )
        return Profile(
            requester=requester.name,
            purpose=None,
            actions=tuple(sorted((tag, "deny") for tag in self.tags)),
            default_action="deny",
            external=not requester.internal,
            reason=f"{requester.name} is an auditor: it reads the request log and reports, no data (every tag denied)",
            rule="requester.no_data",
            no_data=True,
        )


def _never_allow(action: Action) -> Action:
    return "redact" if action == "allow" else action


def _rebuild(model: PolicyFile, source: str, digest: str) -> Policy:
    return Policy.build(model, source=source, digest=digest)
