"""SPEC section 3 as a decision table: requester x purpose x justification -> profile or refusal."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from gateway.errors import PurposeRefused
from gateway.identity.requesters import load_requesters
from gateway.policy.load import load_policy
from gateway.policy.types import PURPOSES, Certification, PurposeClaim, Requester

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def policy():
    return load_policy(ROOT / "policies" / "colorado-dmv.yaml")


@pytest.fixture(scope="module")
def who():
    registry = load_requesters(ROOT / "policies" / "requesters.example.yaml")
    return {entry.requester.name: entry.requester for entry in registry}


def _sees(profile):
    return profile.action_for({"pii"}), profile.action_for({"immigration_status"}), profile.action_for({"unclassified"})


# (requester, claim fields, expected (pii, immigration_status, unclassified), rule, words in reason)
ALLOWED = [
    ("dmv_clerk", {}, ("allow", "redact", "redact"), "no_purpose", "no purpose"),
    ("dmv_clerk", {"purpose": "service_delivery"}, ("allow", "redact", "redact"), "purpose.service_delivery", "service_delivery"),
    ("dmv_clerk", {"purpose": "  "}, ("allow", "redact", "redact"), "no_purpose", "no purpose"),
    ("cbi_analyst", {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"},
     ("allow", "allow", "redact"), "purpose.criminal_law_enforcement", "criminal_law_enforcement, case CR-2026-0042"),
    # SPEC 9: outside the agency, no purpose means no personal identifying information
    ("cbi_analyst", {}, ("deny", "redact", "redact"), "no_purpose", "states a purpose to read personal data"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "2026CV001234"},
     ("allow", "allow", "redact"), "purpose.court_order", "order 2026CV001234 (Denver District Court)"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "Denver District Court, case 2026cv001234"},
     ("allow", "allow", "redact"), "purpose.court_order", "2026CV001234"),
    ("ag_counsel", {"purpose": "required_by_law", "legal_citation": "C.R.S. 24-74-105"},
     ("allow", "allow", "redact"), "purpose.required_by_law", "citing C.R.S. 24-74-105"),
    ("ag_counsel", {"purpose": "required_by_law", "legal_citation": "8 U.S.C. § 1373"},
     ("allow", "allow", "redact"), "purpose.required_by_law", "1373"),
    ("gov_office", {"purpose": "governor_authorized", "authorization_id": "GOV-2026-0001"},
     ("allow", "allow", "redact"), "purpose.governor_authorized", "authorization GOV-2026-0001"),
    # SPEC 9: an immigration agency is civil_immigration_enforcement whatever it states, none included
    ("ice_ero", {"purpose": "civil_immigration_enforcement"},
     ("deny", "deny", "deny"), "purpose.civil_immigration_enforcement.forced", "immigration agency"),
    ("ice_ero", {}, ("deny", "deny", "deny"), "purpose.civil_immigration_enforcement.forced", "stated: no purpose"),
    ("ice_ero", {"purpose": "service_delivery"}, ("deny", "deny", "deny"),
     "purpose.civil_immigration_enforcement.forced", "stated: service_delivery"),
    ("ice_ero", {"purpose": "court_order", "order_reference": "2026CV001234"}, ("deny", "deny", "deny"),
     "purpose.civil_immigration_enforcement.forced", "stated: court_order"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fields", "expected", "rule", "words"), ALLOWED)
def test_allowed(policy, who, name, fields, expected, rule, words):
    profile = policy.profile_for(who[name], PurposeClaim(**fields), NOW)
    assert _sees(profile) == expected
    assert profile.rule == rule
    assert words in profile.reason
    assert profile.requester == name
    assert profile.external == (not who[name].internal)


REFUSED = [
    ("cbi_analyst", {"purpose": "criminal_law_enforcement"}, "case_number is required"),
    ("cbi_analyst", {"purpose": "criminal_law_enforcement", "case_number": "   "}, "case_number is required"),
    ("cbi_analyst", {"purpose": "criminal_law_enforcement", "case_number": "just looking"}, "case_number 'just looking' is not a case number"),
    ("cbi_analyst", {"purpose": "service_delivery"}, "may not use purpose service_delivery"),
    ("cbi_analyst", {"purpose": "fishing"}, "unknown purpose 'fishing'"),
    ("cbi_analyst", {"purpose": "Criminal_Law_Enforcement", "case_number": "CR-2026-0042"}, "unknown purpose"),
    ("dmv_clerk", {"purpose": "criminal_law_enforcement", "case_number": "CR-2026-0042"}, "may not use purpose"),
    ("ag_counsel", {"purpose": "court_order"}, "order_reference is required"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "I-247 detainer"}, "SB21-131 requires a court-issued order"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "administrative subpoena"}, "administrative subpoena"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "ICE form I-200"}, "immigration warrant (I-200)"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "I-205 warrant of removal"}, "I-205"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "2026CV001234 and I-247A"}, "detainer"),
    ("ag_counsel", {"purpose": "court_order", "order_reference": "2025CV999999"}, "not a court order on file"),
    ("ag_counsel", {"purpose": "required_by_law"}, "legal_citation is required"),
    ("ag_counsel", {"purpose": "required_by_law", "legal_citation": "required by law"}, "does not name a statute"),
    ("ag_counsel", {"purpose": "required_by_law", "legal_citation": "federal law says so"}, "does not name a statute"),
    ("ag_counsel", {"purpose": "governor_authorized", "authorization_id": "GOV-2026-0001"}, "may not use purpose"),
    ("gov_office", {"purpose": "governor_authorized"}, "authorization_id is required"),
    ("gov_office", {"purpose": "governor_authorized", "authorization_id": "GOV-1999-0001"}, "not a governor authorization on file"),
    ("auditor", {"purpose": "service_delivery"}, "reads the request log and reports only"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fields", "words"), REFUSED)
def test_refused(policy, who, name, fields, words):
    with pytest.raises(PurposeRefused) as info:
        policy.profile_for(who[name], PurposeClaim(**fields), NOW)
    assert words in info.value.message
    assert info.value.message.startswith("gateway: ")
    assert info.value.sqlstate == "42501" and info.value.http_status == 403


def test_ice_ero_is_civil_immigration_enforcement_under_every_purpose(policy, who):
    for purpose in (*PURPOSES, None):
        profile = policy.profile_for(
            who["ice_ero"], PurposeClaim(purpose, "CR-2026-0042", "C.R.S. 1-1-1", "2026CV001234", "GOV-2026-0001"), NOW)
        assert profile.purpose == "civil_immigration_enforcement" and profile.kind == "immigration_agency"
        assert _sees(profile) == ("deny", "deny", "deny")


def test_auditor_gets_no_data(policy, who):
    profile = policy.profile_for(who["auditor"], PurposeClaim(), NOW)
    assert set(dict(profile.actions).values()) == {"deny"}
    assert profile.default_action == "deny"
    assert profile.rule == "requester.no_data"
    assert "no data" in profile.reason


def test_expired_certification_denies_pii(policy, who):
    stale = replace(who["cbi_analyst"], certification=_cert(date(2025, 11, 1)))
    profile = policy.profile_for(stale, PurposeClaim("criminal_law_enforcement", case_number="CR-2026-0042"), NOW)
    assert _sees(profile) == ("deny", "allow", "redact")
    assert "older than 365 days" in profile.reason
    fresh = replace(who["cbi_analyst"], certification=_cert(date(2025, 11, 26)))
    fresh_profile = policy.profile_for(fresh, PurposeClaim("criminal_law_enforcement", case_number="CR-2026-0042"), NOW)
    assert fresh_profile.action_for({"pii"}) == "allow"  # exactly 365 days


def test_future_certification_does_not_count(policy, who):
    early = replace(who["gov_office"], certification=_cert(date(2027, 1, 1)))
    profile = policy.profile_for(early, PurposeClaim("governor_authorized", authorization_id="GOV-2026-0001"), NOW)
    assert profile.action_for({"pii"}) == "deny"


def test_internal_requester_needs_no_certification(policy):
    clerk = Requester("clerk2", "Colorado DMV", internal=True, purposes=frozenset({"service_delivery"}))
    assert policy.profile_for(clerk, PurposeClaim("service_delivery"), NOW).action_for({"pii"}) == "allow"


def test_expired_authorization(policy, who):
    later = datetime(2028, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(PurposeRefused, match="authorization GOV-2026-0001 expired on 2027-12-31"):
        policy.profile_for(who["gov_office"], PurposeClaim("governor_authorized", authorization_id="GOV-2026-0001"), later)
    last_day = datetime(2027, 12, 31, 23, 0)
    policy.profile_for(who["gov_office"], PurposeClaim("governor_authorized", authorization_id="gov-2026-0001"), last_day)


def test_expired_court_order(policy, who):
    with pytest.raises(PurposeRefused, match="expired on 2027-12-31"):
        policy.profile_for(who["ag_counsel"], PurposeClaim("court_order", order_reference="2026CV001234"), datetime(2028, 2, 1))


def test_profile_keys_separate_visibility(policy, who):
    clerk = policy.profile_for(who["dmv_clerk"], PurposeClaim("service_delivery"), NOW)
    clerk_none = policy.profile_for(who["dmv_clerk"], PurposeClaim(), NOW)
    cbi = policy.profile_for(who["cbi_analyst"], PurposeClaim("criminal_law_enforcement", case_number="CR-2026-0042"), NOW)
    ice = policy.profile_for(who["ice_ero"], PurposeClaim("civil_immigration_enforcement"), NOW)
    assert clerk.actions == clerk_none.actions
    assert len({clerk.key, cbi.key, ice.key}) == 3


@pytest.mark.parametrize(
    "citation",
    ["C.R.S. 24-74-105", "section 24-74-105, C.R.S.", "CRS 42-1-206", "Colo. Rev. Stat. § 42-2-121",
     "8 U.S.C. § 1373", "8 USC 1373(a)", "28 C.F.R. § 16.32", "§ 24-74-105", "Section 7 of the act",
     "SB21-131", "HB 19-1124", "Pub. L. 109-13"],
)  # fmt: skip
def test_legal_citations_accepted(policy, who, citation):
    profile = policy.profile_for(who["ag_counsel"], PurposeClaim("required_by_law", legal_citation=citation), NOW)
    assert profile.action_for({"immigration_status"}) == "allow"


@pytest.mark.parametrize(
    "citation", ["required by law", "state law", "federal statute", "the law", "see statute", "CRS", "U.S.C.", "x"]
)
def test_vague_citations_refused(policy, who, citation):
    with pytest.raises(PurposeRefused, match="legal_citation .* does not name a statute"):
        policy.profile_for(who["ag_counsel"], PurposeClaim("required_by_law", legal_citation=citation), NOW)


@pytest.mark.parametrize("case", ["CR-2026-0042", "cr-2026-7", "INC-26-123456"])
def test_case_numbers_accepted(policy, who, case):
    policy.profile_for(who["cbi_analyst"], PurposeClaim("criminal_law_enforcement", case_number=case), NOW)


def test_justification_summary(policy):
    claim = PurposeClaim("court_order", order_reference=" 2026CV001234 ", case_number="")
    assert policy.justification_summary(claim) == "order_reference=2026CV001234"
    assert policy.justification_summary(PurposeClaim()) == ""


def test_statutory_request_flags(policy):
    assert policy.is_statutory_request("criminal_law_enforcement")
    assert not policy.is_statutory_request("service_delivery")
    assert not policy.is_statutory_request(None)


def _cert(signed_on: date, **changes: object) -> Certification:
    """A complete certification (signer, form version, both clauses) signed on ``signed_on``."""
    fields = dict(signed_on=signed_on, id=f"C-{signed_on}", signer="J. Doe", form_version="v1",
                  no_immigration_use=True, no_redisclosure=True)
    fields.update(changes)
    return Certification(**fields)  # type: ignore[arg-type]

