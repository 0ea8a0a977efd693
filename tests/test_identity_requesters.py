"""The requesters file: the six reference requesters, token and name lookup, example credentials, errors."""

from __future__ import annotations

import doctest
from datetime import date
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.identity import requesters as requesters_module
from gateway.identity.requesters import load_requesters, parse_requesters
from gateway.identity.secrets import ScramVerifier, hash_token

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "policies" / "requesters.example.yaml"
NAMES = ["ag_counsel", "auditor", "cbi_analyst", "dmv_clerk", "gov_office", "ice_ero"]


@pytest.fixture(scope="module")
def registry():
    return load_requesters(EXAMPLE)


def test_reference_requesters(registry):
    assert registry.names() == NAMES
    purposes = {e.requester.name: e.requester.purposes for e in registry}
    assert purposes == {
        "dmv_clerk": {"service_delivery"},
        "cbi_analyst": {"criminal_law_enforcement"},
        "ag_counsel": {"required_by_law", "court_order"},
        "gov_office": {"governor_authorized"},
        "ice_ero": {"civil_immigration_enforcement"},
        "auditor": set(),
    }
    assert registry.lookup("auditor").requester.is_auditor
    assert registry.lookup("dmv_clerk").requester.internal
    for name in ("cbi_analyst", "ag_counsel", "gov_office"):
        requester = registry.lookup(name).requester
        assert not requester.internal
        assert requester.certification is not None and requester.certification.signed_on.year == 2026
    assert registry.lookup("ice_ero").requester.certification is None
    assert "Immigration" in registry.lookup("ice_ero").requester.agency


def test_example_secrets(registry):
    for name in NAMES:
        entry = registry.lookup(name)
        assert entry.scram.verify_password(f"{name}-demo-password")
        assert registry.by_token(f"{name}-demo-token") is entry
    assert registry.example_credentials_in_use() == NAMES
    text = EXAMPLE.read_text()
    assert "demo-password" in text.split("version:")[0]  # documented in the header
    body = text.split("version:", 1)[1]
    assert "demo-password" not in body and "demo-token" not in body  # never stored in the clear


def test_lookups_miss(registry):
    assert registry.lookup("DMV_CLERK") is None
    assert registry.lookup("nobody") is None
    assert registry.by_token("") is None
    assert registry.by_token("dmv_clerk-demo-password") is None


def test_verifier_for_unknown_user_is_a_stable_dummy(registry):
    real = registry.verifier_for("dmv_clerk")
    assert real is registry.lookup("dmv_clerk").scram
    ghost = registry.verifier_for("ghost")
    assert ghost == registry.verifier_for("ghost")
    assert ghost.iterations == real.iterations and len(ghost.salt) == len(real.salt)
    assert not ghost.verify_password("ghost-demo-password")


def _file(entries: str) -> str:
    return "version: 1\nrequesters:\n" + entries


GOOD_SCRAM = str(ScramVerifier.create("a-strong-password", salt=b"0123456789abcdef"))
GOOD = f"""\
  alice:
    agency: Colorado DMV
    internal: true
    purposes: [service_delivery]
    scram: "{GOOD_SCRAM}"
    token_hash: "{hash_token('alice-private-token')}"
"""


def test_real_credentials_are_not_examples():
    registry = parse_requesters(_file(GOOD))
    assert registry.example_credentials_in_use() == []
    assert registry.by_token("alice-private-token").requester.name == "alice"
    flagged = parse_requesters(_file(GOOD + "    example: true\n"))
    assert flagged.example_credentials_in_use() == ["alice"]
    demo = GOOD.replace(GOOD_SCRAM, str(ScramVerifier.create("alice-demo-password")))
    assert parse_requesters(_file(demo)).example_credentials_in_use() == ["alice"]


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("    internal: true\n", "    internal: true\n    password: hunter2\n", 6, "plaintext secrets are not allowed"),
        ("    internal: true\n", "    internal: true\n    token: abc\n", 6, "gateway passwd alice"),
        ("[service_delivery]", "[service_delivry]", 6, "must be one of"),
        (f'"{GOOD_SCRAM}"', '"md5deadbeef"', 7, "not a SCRAM-SHA-256 verifier"),
        ("    token_hash: \"sha256:", "    token_hash: \"sha1:", 8, "not a token hash"),
        ("    agency: Colorado DMV\n", "    agency: Colorado DMV\n    colour: blue\n", 5, "unknown key 'colour'"),
        ("    internal: true\n", "", 3, "say who it is: `kind: internal | external | immigration_agency`"),
        ("    internal: true\n", "    internal: true\n    certification: {signed_on: 2026-01-01, signer: x, form_version: v1, no_immigration_use: true, no_redisclosure: true}\n", 6, "outside the agency"),
        ("    internal: true\n", "    internal: true\n    roles: [admin]\n", 6, "must be one of auditor"),
    ],
)
def test_broken_file_names_line(old, new, line, words):
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        parse_requesters(_file(GOOD.replace(old, new, 1)), "r.yaml")
    message = str(info.value)
    assert message.startswith(f"r.yaml:{line}:"), message
    assert words in message, message


def test_whole_file_checks():
    twin = GOOD.replace("alice", "bob", 1).replace("alice-private-token", "bob-token")
    with pytest.raises(ConfigError, match=r"r.yaml:\d+: requesters.bob.token_hash: same token as requester alice"):
        parse_requesters(_file(GOOD + twin.replace("bob-token", "alice-private-token")), "r.yaml")
    auditor = "  aud:\n    agency: x\n    internal: true\n    roles: [auditor]\n    purposes: [service_delivery]\n"
    with pytest.raises(ConfigError, match="give it no purposes"):
        parse_requesters(_file(auditor + f'    scram: "{GOOD_SCRAM}"\n'))
    with pytest.raises(ConfigError, match="no credential"):
        parse_requesters(_file("  carol:\n    agency: x\n    internal: false\n"))
    with pytest.raises(ConfigError, match="requester name"):
        parse_requesters(_file(GOOD.replace("alice:", "'al ice':")))


def test_certification_dates():
    entry = ("  cbi:\n    agency: CBI\n    internal: false\n    certification: {signed_on: 2026-03-02, document: C-1, "
             "signer: J. Doe, form_version: v1, no_immigration_use: true, no_redisclosure: true}\n")
    registry = parse_requesters(_file(entry + f'    scram: "{GOOD_SCRAM}"\n'))
    cert = registry.lookup("cbi").requester.certification
    assert cert.signed_on == date(2026, 3, 2) and cert.complete and cert.signer == "J. Doe"
    with pytest.raises(ConfigError, match="no_redisclosure"):  # both clauses must be stated
        parse_requesters(_file(entry.replace(", no_redisclosure: true", "") + f'    scram: "{GOOD_SCRAM}"\n'))


def test_doctests(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(requesters_module)
    assert result.failed == 0 and result.attempted > 0
