"""A gateway subprocess with a policy and requesters of the test's own (copies of the shipped files,
edited), for the compliance tests (SPEC 10): registries with scope, certifications, notices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from gateway.audit.record import per_request
from tests.frontdoor_pg_support import ROOT, WireGateway, start_gateway

EXTRA_AUTHORIZATIONS = """
  - id: GOV-2026-0099
    issuer: Office of the Governor of Colorado
    valid_from: 2026-01-05
    valid_until: 2027-12-31
    scope: [public]
    description: Test authorization scoped to schema public only.
  - id: GOV-2026-0098
    issuer: Office of the Governor of Colorado
    valid_until: 2027-12-31
    scope:
      tables: [dmv.persons]
      columns: [dmv.lawful_presence.person_id]
    description: Test authorization scoped to one table and one column.
  - id: GOV-2025-0001
    issuer: Office of the Governor of Colorado
    valid_from: 2025-01-01
    valid_until: 2025-12-31
    scope: [dmv]
    description: Test authorization that lapsed.
"""


def write_files(folder: Path, *, policy_edit: Any = None, requesters_edit: Any = None) -> tuple[Path, Path]:
    """Copies of the shipped policy (with the test authorizations) and requesters in ``folder``."""
    policy = (ROOT / "policies/colorado-dmv.yaml").read_text() + EXTRA_AUTHORIZATIONS
    requesters = (ROOT / "policies/requesters.example.yaml").read_text()
    # cbi_analyst's certification lapsed: signed more than 365 days ago
    requesters = requesters.replace("      signed_on: 2026-10-01\n", "      signed_on: 2025-10-01\n", 1)
    if policy_edit:
        policy = policy_edit(policy)
    if requesters_edit:
        requesters = requesters_edit(requesters)
    (folder / "policy.yaml").write_text(policy)
    (folder / "requesters.yaml").write_text(requesters)
    return folder / "policy.yaml", folder / "requesters.yaml"


def compliance_gateway(dsn: str, folder: Path, **extra_env: str) -> Iterator[WireGateway]:
    policy, requesters = write_files(folder)
    yield from start_gateway(dsn, folder, GATEWAY_POLICY=str(policy), GATEWAY_REQUESTERS=str(requesters), **extra_env)


def records(gw: WireGateway, kind: str = "request") -> list[dict[str, Any]]:
    out = []
    for path in sorted(gw.audit_path.parent.glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in per_request(out) if r.get("type") == kind]  # outcomes read per request


def last_request(gw: WireGateway, requester: str) -> dict[str, Any]:
    return [r for r in records(gw) if r.get("requester") == requester][-1]


def http_query(gw: WireGateway, requester: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{gw.http_port}/v1/query", json=body,
                      headers={"Authorization": f"Bearer {requester}-demo-token"}, timeout=30)
