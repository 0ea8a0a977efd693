"""Certifications on file (SB21-131, 24-74-105 C.R.S.), in the requesters file or beside it.

A requester outside the agency reads personal identifying information only with a certification,
signed within the policy's ``certification_valid_days``, carrying both clauses: it will not use the
data for immigration enforcement, and it will not pass it to anyone who does. A certification names
its signer, the date, the form version and both clauses. ``gateway certification add|list|revoke``
keeps them in ``certifications.yaml`` beside the requesters file (it never rewrites the requesters
file, whose comments are the DBA's); a requester's ``certification:`` entry in the requesters file
counts too.

>>> spec = CertificationSpec(signer="J. Doe", signed_on="2026-10-01", form_version="CDOR-105 v2",
...                          no_immigration_use=True, no_redisclosure=True)
>>> spec.build("cbi").complete, spec.build("cbi").id
(True, 'CERT-cbi-2026-10-01')
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from gateway.policy.types import Certification
from gateway.policy.yaml_lines import YamlDocument, raise_errors, read_yaml, validate

FILE_NAME = "certifications.yaml"
HEADER = (
    "# Certifications on file (SB21-131, 24-74-105 C.R.S.): written by `gateway certification add|revoke`.\n"
    "# Each one: requester, signer, signed_on, form_version, and both clauses (no_immigration_use: the data\n"
    "# will not be used for immigration enforcement; no_redisclosure: it will not be passed to anyone who\n"
    "# does). A revoked certification stays on file with revoked_on and revoked_reason.\n"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CertificationSpec(_Strict):
    """One certification as a file holds it (inside a requester's entry: no ``requester`` key)."""

    id: str = ""
    signer: str = Field(min_length=1)
    signed_on: date
    form_version: str = Field(min_length=1)
    no_immigration_use: bool
    no_redisclosure: bool
    document: str = ""
    revoked_on: date | None = None
    revoked_reason: str = ""

    def build(self, requester: str) -> Certification:
        return Certification(
            signed_on=self.signed_on, document=self.document, id=self.id or f"CERT-{requester}-{self.signed_on}",
            signer=self.signer, form_version=self.form_version, no_immigration_use=self.no_immigration_use,
            no_redisclosure=self.no_redisclosure, revoked_on=self.revoked_on, revoked_reason=self.revoked_reason,
        )  # fmt: skip


class FiledCertification(CertificationSpec):
    requester: str = Field(min_length=1)


class Revocation(_Strict):
    """A certification withdrawn (by id: one in this file or in the requesters file)."""

    id: str = Field(min_length=1)
    on: date
    reason: str = Field(min_length=1)


class CertificationsFile(_Strict):
    version: Literal[1] = 1
    certifications: tuple[FiledCertification, ...] = ()
    revocations: tuple[Revocation, ...] = ()


def apply_revocations(certs: Iterable[Certification], revocations: Iterable[Revocation]) -> tuple[Certification, ...]:
    """``certs`` with each revocation's date and reason applied to the certification it names."""
    table = {r.id: r for r in revocations}
    out = []
    for cert in certs:
        rev = table.get(cert.id)
        if rev is not None and (cert.revoked_on is None or rev.on < cert.revoked_on):
            cert = replace(cert, revoked_on=rev.on, revoked_reason=rev.reason)
        out.append(cert)
    return tuple(out)


def status(cert: Certification, today: date, valid_days: int, applied: Certification | None) -> str:
    """``current`` | ``superseded`` | ``expired`` | ``revoked`` | ``incomplete`` | ``not yet valid``."""
    if cert.revoked_on is not None and cert.revoked_on <= today:
        return "revoked"
    if not cert.complete:
        return "incomplete"
    if cert.signed_on > today:
        return "not yet valid"
    if (today - cert.signed_on).days > valid_days:
        return "expired"
    return "current" if applied is None or applied.id == cert.id else "superseded"


def summary(name: str, agency: str, certs: Iterable[Certification], applied: Certification | None,
            today: date, valid_days: int) -> list[dict[str, object]]:
    """One row per certification of requester ``name``, for ``certification list`` and the report."""
    rows = []
    for cert in sorted(certs, key=lambda c: (c.signed_on, c.id)):
        expiry = expires_on(cert, valid_days)
        rows.append({
            "requester": name, "agency": agency, "id": cert.id, "signer": cert.signer,
            "signed_on": cert.signed_on.isoformat(), "form_version": cert.form_version,
            "no_immigration_use": cert.no_immigration_use, "no_redisclosure": cert.no_redisclosure,
            "expires_on": expiry.isoformat(), "days_left": (expiry - today).days,
            "status": status(cert, today, valid_days, applied),
            "revoked_on": cert.revoked_on.isoformat() if cert.revoked_on else None,
            "revoked_reason": cert.revoked_reason or None,
        })  # fmt: skip
    return rows


def side_file(requesters_path: str | Path) -> Path:
    """Where ``gateway certification`` keeps certifications for the requesters file at ``requesters_path``."""
    return Path(requesters_path).with_name(FILE_NAME)


def read_side_file(path: Path) -> tuple[YamlDocument | None, CertificationsFile]:
    """The certifications file at ``path`` (empty when it does not exist); raises ConfigError."""
    if not path.exists():
        return None, CertificationsFile()
    doc = read_yaml(path)
    if doc.data is None:
        return doc, CertificationsFile()
    model = validate(doc, CertificationsFile, what="certifications file")
    seen: set[str] = set()
    problems = []
    for i, cert in enumerate(model.certifications):
        built = cert.build(cert.requester)
        if built.id in seen:
            problems.append((("certifications", i, "id"), f"certification {built.id!r} is listed twice"))
        seen.add(built.id)
    raise_errors(doc, problems)
    return doc, model


def current(certs: Iterable[Certification], today: date | None = None) -> Certification | None:
    """The certification that applies: the latest signed, unrevoked, with both clauses; failing
    that, the latest of any kind (so a refusal can say why it does not count)."""
    today = today or date.today()
    ordered = sorted(certs, key=lambda c: (c.signed_on, c.id))
    usable = [c for c in ordered if c.complete and (c.revoked_on is None or c.revoked_on > today)
              and c.signed_on <= today]  # fmt: skip
    if usable:
        return usable[-1]
    return ordered[-1] if ordered else None


def expires_on(cert: Certification, valid_days: int) -> date:
    """The last day ``cert`` counts (signed_on + valid_days)."""
    return cert.signed_on + timedelta(days=valid_days)


def by_requester(model: CertificationsFile) -> Mapping[str, tuple[Certification, ...]]:
    out: dict[str, list[Certification]] = {}
    for cert in model.certifications:
        out.setdefault(cert.requester, []).append(cert.build(cert.requester))
    return {name: tuple(items) for name, items in out.items()}


def write_side_file(path: Path, model: CertificationsFile) -> None:
    """Replace the file at ``path`` atomically (written beside it, fsynced, renamed)."""
    entries = []
    for cert in model.certifications:
        data = cert.model_dump(mode="json", exclude_defaults=False)
        entries.append({k: v for k, v in data.items() if v not in (None, "") or k in ("signer", "form_version")})
    revocations = [r.model_dump(mode="json") for r in model.revocations]
    body: dict[str, object] = {"version": 1, "certifications": entries}
    if revocations:
        body["revocations"] = revocations
    text = HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    fd, tmp = tempfile.mkstemp(prefix=".certifications-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
