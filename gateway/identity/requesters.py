"""The requesters file: who may connect, with which secrets, for which purposes.

The file holds SCRAM-SHA-256 verifiers and token hashes, never plaintext secrets (``gateway passwd
NAME`` prints an entry). Loading is all or nothing, with line-numbered errors, like the policy file.

>>> reg = load_requesters("policies/requesters.example.yaml")
>>> reg.by_token("dmv_clerk-demo-token").requester.name
'dmv_clerk'
>>> reg.by_token("wrong") is None
True
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.identity.certifications import (
    CertificationSpec,
    apply_revocations,
    by_requester,
    current,
    read_side_file,
    side_file,
)
from gateway.identity.secrets import (
    ScramVerifier,
    SecretFormatError,
    check_token_hash,
    dummy_verifier,
    hash_token,
)
from gateway.policy.model import PurposeToken
from gateway.policy.types import Certification, Requester
from gateway.policy.yaml_lines import Loc, YamlDocument, parse_yaml, raise_errors, read_yaml, validate

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@-]{0,62}$")
KNOWN_ROLES = ("auditor",)
PLAINTEXT_KEYS = ("password", "token", "secret", "plaintext_password")


def example_password(name: str) -> str:
    """The documented example password of requester ``name`` (SPEC section 7)."""
    return f"{name}-demo-password"


def example_token(name: str) -> str:
    """The documented example bearer token of requester ``name``."""
    return f"{name}-demo-token"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RequesterSpec(_Strict):
    agency: str = Field(min_length=1)
    internal: bool | None = None  # kept for older files: true = kind internal, false = kind external
    kind: Literal["internal", "external", "immigration_agency"] | None = None
    purposes: tuple[PurposeToken, ...] = ()
    roles: tuple[Literal["auditor"], ...] = ()
    certification: CertificationSpec | None = None
    scram: str | None = None
    token_hash: str | None = None
    example: bool = False  # the entry uses documented example credentials: warn at start
    relay: Literal["switch", "vendor"] | None = None  # relays for other agencies: requests name their ORI
    description: str = ""

    @field_validator("scram")
    @classmethod
    def _scram(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ScramVerifier.parse(value)
            except SecretFormatError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("token_hash")
    @classmethod
    def _token_hash(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                return check_token_hash(value)
            except SecretFormatError as exc:
                raise ValueError(str(exc)) from None
        return value


class RequestersFile(_Strict):
    version: Literal[1] = 1
    requesters: dict[str, RequesterSpec]


@dataclass(frozen=True)
class RequesterEntry:
    """One requester with its stored secrets (either may be absent: no wire login / no HTTP login)."""

    requester: Requester
    scram: ScramVerifier | None
    token_hash: str | None
    certifications: tuple[Certification, ...] = ()  # every one on file, revoked and lapsed included


class Requesters:
    """An immutable registry of requesters, by name and by token hash."""

    def __init__(self, entries: Mapping[str, RequesterEntry], *, source: str = "", digest: str = "") -> None:
        self._entries = MappingProxyType(dict(entries))
        self._by_hash = MappingProxyType({e.token_hash: e for e in entries.values() if e.token_hash})
        self._dummy_secret = secrets.token_bytes(32)
        self.source = source
        self.digest = digest

    def lookup(self, name: str) -> RequesterEntry | None:
        """The entry for ``name`` (exact, case-sensitive, like PostgreSQL role names)."""
        return self._entries.get(name)

    def by_token(self, token: str) -> RequesterEntry | None:
        """The entry whose token hash matches ``token`` (hashed first: lookup time says nothing of the token)."""
        if not token:
            return None
        return self._by_hash.get(hash_token(token))

    def verifier_for(self, name: str) -> ScramVerifier:
        """The SCRAM verifier to serve for ``name``: the real one, or a stable dummy no password matches."""
        entry = self._entries.get(name)
        if entry is not None and entry.scram is not None:
            return entry.scram
        return dummy_verifier(name, self._dummy_secret)

    def example_credentials_in_use(self) -> list[str]:
        """Names of requesters that use the documented example secrets (or are flagged ``example``)."""
        return sorted(name for name, e in self._entries.items() if e.requester.is_example_credential)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[RequesterEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


def load_requesters(path: str | Path) -> Requesters:
    """Read and validate a requesters file; raises ConfigError naming each bad line."""
    return requesters_from_document(read_yaml(path))


def parse_requesters(text: str | bytes, source: str = "<requesters>") -> Requesters:
    """Like :func:`load_requesters` for text in memory."""
    return requesters_from_document(parse_yaml(text, source))


def requesters_from_document(doc: YamlDocument) -> Requesters:
    raise_errors(doc, _plaintext_problems(doc.data))
    model = validate(doc, RequestersFile, what="requesters file")
    raise_errors(doc, _semantic_problems(model))
    filed: Mapping[str, tuple[Certification, ...]] = {}
    revocations: tuple[Any, ...] = ()
    if doc.path and not doc.path.startswith("<"):
        side_doc, side = read_side_file(side_file(doc.path))
        filed = by_requester(side)
        revocations = side.revocations
        if side_doc is not None:
            raise_errors(side_doc, [
                (("certifications", i, "requester"), f"no requester {c.requester!r} in {doc.path}")
                for i, c in enumerate(side.certifications) if c.requester not in model.requesters
            ] + [
                (("certifications", i, "requester"), f"requester {c.requester} is internal: certifications are for "
                 "requesters outside the agency")
                for i, c in enumerate(side.certifications)
                if c.requester in model.requesters and model.requesters[c.requester].internal
            ])  # fmt: skip
    entries = {name: _entry(name, spec, filed.get(name, ()), revocations) for name, spec in model.requesters.items()}
    return Requesters(entries, source=doc.path, digest=doc.digest)


def _entry(name: str, spec: RequesterSpec, filed: tuple[Certification, ...] = (),
           revocations: tuple[Any, ...] = ()) -> RequesterEntry:
    scram = ScramVerifier.parse(spec.scram) if spec.scram else None
    example = (
        spec.example
        or (scram is not None and scram.verify_password(example_password(name)))
        or (spec.token_hash is not None and spec.token_hash == hash_token(example_token(name)))
    )
    certs = list(filed)
    if spec.certification is not None:
        certs.append(spec.certification.build(name))
    certs = list(apply_revocations(certs, revocations))
    kind = spec.kind or ("internal" if spec.internal else "external")
    requester = Requester(
        name=name,
        agency=spec.agency,
        internal=kind == "internal",
        kind=kind,
        purposes=frozenset(spec.purposes),
        roles=frozenset(spec.roles),
        certification=current(certs),
        relay=spec.relay,
        is_example_credential=example,
    )
    return RequesterEntry(requester=requester, scram=scram, token_hash=spec.token_hash, certifications=tuple(certs))


def _plaintext_problems(data: Any) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    requesters = data.get("requesters") if isinstance(data, dict) else None
    if isinstance(requesters, dict):
        for name, spec in requesters.items():
            for key in spec if isinstance(spec, dict) else ():
                if key in PLAINTEXT_KEYS:
                    problems.append(
                        (
                            ("requesters", name, key),
                            "plaintext secrets are not allowed: store `scram:` (a verifier) and `token_hash:`; "
                            f"run `gateway passwd {name}` (add --new-token for a token)",
                        )
                    )
    return problems


def _semantic_problems(model: RequestersFile) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    seen: dict[str, str] = {}
    for name, spec in model.requesters.items():
        if not NAME.match(name):
            problems.append((("requesters", name), "a requester name is letters, digits, _ . @ - (at most 63)"))
        if spec.token_hash:
            if spec.token_hash in seen:
                problems.append((("requesters", name, "token_hash"), f"same token as requester {seen[spec.token_hash]}"))
            seen[spec.token_hash] = name
        if "auditor" in spec.roles and spec.purposes:
            problems.append((("requesters", name, "purposes"), "an auditor reads the request log only: give it no purposes"))
        if spec.kind is None and spec.internal is None:
            problems.append((("requesters", name), "say who it is: `kind: internal | external | immigration_agency`"))
        if spec.kind is not None and spec.internal is not None and spec.internal != (spec.kind == "internal"):
            problems.append((("requesters", name, "internal"), f"internal: {str(spec.internal).lower()} contradicts kind: {spec.kind}"))
        if (spec.kind == "internal" or spec.internal) and spec.certification is not None:
            problems.append(
                (("requesters", name, "certification"), "certifications are for requesters outside the agency (internal: false)")
            )
        if spec.scram is None and spec.token_hash is None:
            problems.append((("requesters", name), "no credential: give it `scram:` and/or `token_hash:`"))
    return problems
