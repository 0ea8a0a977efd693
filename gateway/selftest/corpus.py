"""SQL case files: blocks of ``-- key: value`` meta lines and one SQL text, with the expected
decision per profile. Used by the shipped adversarial corpus (``gateway self-test``) and by the
test suite's fixture files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from gateway.identity.requesters import Requesters
from gateway.policy.policy import Policy
from gateway.policy.types import Profile, PurposeClaim

CORPUS = Path(__file__).with_name("bypasses.sql")

#: Short profile names used in case files -> (requester, claim).
PROFILES: dict[str, tuple[str, PurposeClaim]] = {
    "clerk": ("dmv_clerk", PurposeClaim("service_delivery")),
    "clerk0": ("dmv_clerk", PurposeClaim()),
    "cbi": ("cbi_analyst", PurposeClaim("criminal_law_enforcement", case_number="CR-2026-0042")),
    "ag": ("ag_counsel", PurposeClaim("court_order", order_reference="2026CV001234")),
    "gov": ("gov_office", PurposeClaim("governor_authorized", authorization_id="GOV-2026-0001")),
    "ice": ("ice_ero", PurposeClaim("civil_immigration_enforcement")),
    "ice0": ("ice_ero", PurposeClaim()),
    "ice_sd": ("ice_ero", PurposeClaim("service_delivery")),
    "ice_co": ("ice_ero", PurposeClaim("court_order", order_reference="2026CV001234")),
    "cbi0": ("cbi_analyst", PurposeClaim()),
    "ag_law": ("ag_counsel", PurposeClaim("required_by_law", legal_citation="C.R.S. 24-74-105")),
    "auditor": ("auditor", PurposeClaim()),
}


@dataclass(frozen=True)
class Case:
    sql: str
    profiles: tuple[str, ...]
    expect: str
    line: int
    source: str
    meta: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return f"{Path(self.source).name}:{self.line}"

    @property
    def redacted(self) -> tuple[str, ...] | None:
        value = self.meta.get("redacted")
        return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def parse_cases(text: str, source: str = "<cases>") -> list[Case]:
    """Read a case file: blocks separated by blank lines; blocks without ``as`` are comments."""
    cases: list[Case] = []
    meta: dict[str, str] = {}
    sql_lines: list[str] = []
    start = 0

    def flush() -> None:
        nonlocal meta, sql_lines
        if "as" in meta and sql_lines:
            profiles = tuple(p.strip() for p in meta["as"].split(",") if p.strip())
            unknown = [p for p in profiles if p not in PROFILES]
            if unknown or "expect" not in meta:
                raise ValueError(f"{source}:{start}: bad case (unknown profile {unknown} or no expect)")
            cases.append(Case("\n".join(sql_lines).strip().rstrip(";"), profiles, meta["expect"], start, source, dict(meta)))
        meta, sql_lines = {}, []

    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            flush()
            continue
        if stripped.startswith("--") and not sql_lines:
            body = stripped[2:].strip()
            if ":" in body:
                key, _, value = body.partition(":")
                if key.strip().replace("_", "").isalnum():
                    if not meta:
                        start = number
                    meta[key.strip()] = value.strip()
            continue
        if not sql_lines and not meta:
            start = number
        sql_lines.append(line)
    flush()
    return cases


def load_cases(path: Path = CORPUS) -> list[Case]:
    return parse_cases(path.read_text(encoding="utf-8"), str(path))


def profile_named(name: str, policy: Policy, requesters: Requesters, now: datetime | None = None) -> Profile:
    requester_name, claim = PROFILES[name]
    entry = requesters.lookup(requester_name)
    if entry is None:
        raise KeyError(f"requester {requester_name} is not in the requesters file")
    return policy.profile_for(entry.requester, claim, now or datetime.now(timezone.utc))
