"""check-policy against the law: each unlawful policy refused by name, by check-policy and by serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.identity.requesters import load_requesters
from gateway.policy.lawcheck import law_problems
from gateway.policy.load import parse_policy

ROOT = Path(__file__).resolve().parents[1]
POLICY = (ROOT / "policies/colorado-dmv.yaml").read_text()
REQUESTERS = (ROOT / "policies/requesters.example.yaml").read_text()

CIVIL_BLOCK = """    default_action: deny
    grants:
      pii: deny
      immigration_status: deny"""


def _edit(old: str, new: str, text: str = POLICY) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


UNLAWFUL = {
    "civil reads pii": (_edit(CIVIL_BLOCK, CIVIL_BLOCK.replace("pii: deny", "pii: allow")),
                        "lets civil immigration enforcement read pii"),
    "civil reads status by default": (_edit(CIVIL_BLOCK, CIVIL_BLOCK.replace("default_action: deny", "default_action: allow")
                                            .replace("\n      immigration_status: deny", "")),
                                      "read immigration_status"),
    "court order without order_reference": (_edit("    requires: [order_reference]", "    requires: []"),
                                            "purpose court_order does not require order_reference"),
    "authorization without its id": (_edit("    requires: [authorization_id]", "    requires: []"),
                                     "purpose governor_authorized does not require authorization_id"),
    "case without number": (_edit("    requires: [case_number]", "    requires: []"),
                            "does not require case_number"),
    "detainer accepted": (_edit("      - pattern: '\\bI-?\\s?247[A-Z]?\\b|\\bdetainer\\b'\n        names: an immigration detainer (I-247)\n", ""),
                          "would accept an immigration detainer (I-247)"),
    "service delivery reads status": (_edit("      pii: allow\n      immigration_status: redact", "      pii: allow\n      immigration_status: allow"),
                                      "purpose service_delivery releases immigration status"),
    "certifications last two years": (_edit("certification_valid_days: 365", "certification_valid_days: 730"),
                                      "at most 365 days"),
    "no certification needed": (_edit("  without_certification:\n    pii: deny", "  without_certification:\n    pii: allow"),
                                "leaves pii readable"),
}


def test_the_shipped_policy_is_lawful() -> None:
    result = law_problems(parse_policy(POLICY), load_requesters(ROOT / "policies/requesters.example.yaml"))
    assert result.problems == ()


@pytest.mark.parametrize("case", sorted(UNLAWFUL))
def test_each_unlawful_policy_is_named(case: str) -> None:
    text, expected = UNLAWFUL[case]
    result = law_problems(parse_policy(text))
    assert any(expected in p for p in result.problems), result.problems


def _requesters_problems(tmp_path: Path, text: str) -> tuple[str, ...]:
    path = tmp_path / "requesters.yaml"
    path.write_text(text)
    return law_problems(parse_policy(POLICY), load_requesters(path)).problems


def test_immigration_agency_may_state_no_other_purpose(tmp_path: Path) -> None:
    text = _edit("    purposes: [civil_immigration_enforcement]", "    purposes: [civil_immigration_enforcement, criminal_law_enforcement]",
                 REQUESTERS)
    problems = _requesters_problems(tmp_path, text)
    assert any("ice_ero" in p and "immigration agency" in p and "criminal_law_enforcement" in p for p in problems)


def test_immigration_agency_with_a_certification(tmp_path: Path) -> None:
    cert = ("    certification:\n      signer: x\n      signed_on: 2026-10-01\n      form_version: v1\n"
            "      no_immigration_use: true\n      no_redisclosure: true\n")
    text = _edit("    purposes: [civil_immigration_enforcement]\n", "    purposes: [civil_immigration_enforcement]\n" + cert,
                 REQUESTERS)
    problems = _requesters_problems(tmp_path, text)
    assert any("ice_ero" in p and "cannot certify" in p for p in problems)


def _gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False, env=dict(os.environ, **(env or {})))


def test_check_policy_reads_the_requesters_file(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(UNLAWFUL["court order without order_reference"][0])
    stale = REQUESTERS.replace("      signed_on: 2026-10-01\n", "      signed_on: 2025-10-01\n", 1)
    (tmp_path / "requesters.yaml").write_text(stale)
    done = _gateway("check-policy", "--policy", str(tmp_path / "policy.yaml"), "--requesters",
                    str(tmp_path / "requesters.yaml"), env={"GATEWAY_BACKEND_DSN": ""})
    assert done.returncode == 1
    assert "PROBLEM: purpose court_order does not require order_reference" in done.stdout
    assert "WARNING: requester cbi_analyst: certification CBI_ANALYST-CERT-2026 expired on 2026-10-01" in done.stdout
    clean = _gateway("check-policy", env={"GATEWAY_BACKEND_DSN": ""})
    assert clean.returncode == 0 and "0 problem(s) against the law" in clean.stdout


def test_serve_refuses_an_unlawful_policy(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(UNLAWFUL["civil reads pii"][0])
    done = _gateway("serve", env={
        "GATEWAY_BACKEND_DSN": "postgresql://nobody:x@127.0.0.1:1/none", "GATEWAY_POLICY": str(tmp_path / "policy.yaml"),
        "GATEWAY_REQUESTERS": str(ROOT / "policies/requesters.example.yaml"),
        "GATEWAY_AUDIT_PATH": str(tmp_path / "requests.jsonl"), "GATEWAY_PG_LISTEN": "127.0.0.1:0",
        "GATEWAY_HTTP_LISTEN": "127.0.0.1:0"})
    assert done.returncode == 1
    assert "refusing to start: the policy breaks the law" in done.stderr
    assert "lets civil immigration enforcement read pii" in done.stderr
    assert "Traceback" not in done.stderr
