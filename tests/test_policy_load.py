"""The shipped policy file loads, carries SPEC section 2's classification, and bad files name their line."""

from __future__ import annotations

import doctest
import hashlib
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.policy import policy as policy_module
from gateway.policy import purposes as purposes_module
from gateway.policy.load import load_policy, parse_policy
from gateway.policy.types import PURPOSES

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "colorado-dmv.yaml"

IMMIGRATION_STATUS = {
    ("lawful_presence", "immigration_status"),
    ("lawful_presence", "verification_method"),
    ("lawful_presence", "save_case_number"),
    ("lawful_presence", "verified_on"),
    ("licenses", "credential_type"),
    ("licenses", "federal_limits_apply"),
    ("licenses", "limited_term"),
    ("identity_documents", "document_type"),
    ("identity_documents", "issuing_country"),
    ("identity_documents", "document_number"),
    ("persons", "country_of_citizenship"),
    ("persons", "place_of_birth"),
    ("persons", "itin"),
}
SCHEMA = {
    "persons": "person_id first_name last_name date_of_birth sex place_of_birth country_of_citizenship ssn itin "
    "email phone address_line1 city county zip",
    "licenses": "license_id person_id license_number license_class credential_type federal_limits_apply "
    "limited_term issue_date expiry_date status",
    "identity_documents": "document_id person_id document_type issuing_country document_number verified_on",
    "lawful_presence": "person_id immigration_status verification_method save_case_number verified_on",
    "vehicles": "vehicle_id owner_person_id vin plate make model model_year",
    "violations": "violation_id person_id license_id offense_code offense_date county fine_cents disposition",
}
IDENTIFYING = {
    ("persons", c)
    for c in "person_id first_name last_name date_of_birth ssn email phone address_line1 city zip".split()
} | {
    ("licenses", "license_id"), ("licenses", "person_id"), ("licenses", "license_number"),
    ("identity_documents", "document_id"), ("identity_documents", "person_id"),
    ("lawful_presence", "person_id"),
    ("vehicles", "vehicle_id"), ("vehicles", "owner_person_id"), ("vehicles", "vin"), ("vehicles", "plate"),
    ("violations", "violation_id"), ("violations", "person_id"), ("violations", "license_id"),
}  # fmt: skip


@pytest.fixture(scope="module")
def policy():
    return load_policy(POLICY)


def test_shipped_policy_loads(policy):
    assert policy.search_path == ("dmv", "public")
    assert policy.covered_relations() == {("dmv", t) for t in SCHEMA}
    assert policy.digest == hashlib.sha256(POLICY.read_bytes()).hexdigest()
    assert set(policy.file.purposes) == set(PURPOSES)
    assert ("dmv", "driver_summary") not in policy.covered_relations()  # views come from their definitions


@pytest.mark.parametrize(("table", "column"), sorted(IMMIGRATION_STATUS))
def test_immigration_status_columns(policy, table, column):
    assert "immigration_status" in policy.tags_for("dmv", table, column)


@pytest.mark.parametrize(("table", "column"), sorted(IDENTIFYING))
def test_identifying_columns_are_pii(policy, table, column):
    assert "pii" in policy.tags_for("dmv", table, column)


def test_every_schema_column_is_classified(policy):
    """No column of the reference schema falls to `unclassified`; none but the listed ones is status."""
    for table, columns in SCHEMA.items():
        for column in columns.split():
            tags = policy.tags_for("dmv", table, column)
            assert "unclassified" not in tags, (table, column)
            assert ("immigration_status" in tags) == ((table, column) in IMMIGRATION_STATUS), (table, column)


def test_untagged_and_uncovered(policy):
    assert policy.tags_for("dmv", "vehicles", "make") == frozenset()
    assert policy.tags_for("dmv", "violations", "fine_cents") == frozenset()
    assert policy.tags_for("dmv", "persons", "new_column") == {"unclassified"}
    assert policy.tags_for("dmv", "lawful_presence", "new_column") == {"immigration_status"}  # "*" default
    assert policy.tags_for("dmv", "driver_summary", "full_name") == {"unclassified"}
    assert policy.tags_for("public", "persons", "first_name") == {"unclassified"}
    assert policy.tags_for("dmv", "persons", "*") >= {"pii", "immigration_status", "unclassified"}


def test_known_channels_documented():
    text = POLICY.read_text()
    for channel in ("ssn: [pii, immigration_status]", "expiry_date: [immigration_status]", "identity documents"):
        assert channel in text


def test_policy_is_frozen(policy):
    with pytest.raises(AttributeError):
        policy.digest = "x"
    with pytest.raises(TypeError):
        policy._columns[("dmv", "x")] = {}  # type: ignore[index]


def test_doctests(monkeypatch):
    monkeypatch.chdir(ROOT)
    for module in (policy_module, purposes_module):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# -- broken files: each error names its line ------------------------------------------------------

MINIMAL = """\
tags:
  pii: {description: personal}
classification:
  dmv.persons:
    first_name: [pii]
purposes:
  service_delivery: {grants: {pii: allow}}
  criminal_law_enforcement: {requires: [case_number], grants: {pii: allow}}
  required_by_law: {requires: [legal_citation], grants: {pii: allow}}
  court_order: {requires: [order_reference], grants: {pii: allow}}
  governor_authorized: {requires: [authorization_id], grants: {pii: allow}}
  civil_immigration_enforcement: {grants: {pii: deny}}
no_purpose:
  grants: {pii: allow}
justification:
  legal_citation:
    statute_patterns: ['C\\.R\\.S\\.']
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "p.yaml")
    return str(info.value)


def test_minimal_policy_loads():
    policy = parse_policy(MINIMAL)
    assert policy.tags == {"pii", "unclassified"}


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("    first_name: [pii]\n", "    first_name: [pii]\n    typo_key: [pi]\n", 6, "unknown tag 'pi'"),
        ("  service_delivery: {grants: {pii: allow}}", "  service_delivery: {grants: {pii: maybe}}", 7, "allow, redact"),
        ("no_purpose:\n", "no_purpose:\n  colour: red\n", 14, "unknown key 'colour'"),
        ("  civil_immigration_enforcement: {grants: {pii: deny}}\n", "", 6, "missing: civil_immigration_enforcement"),
        ("  dmv.persons:\n", "  persons:\n", 4, "schema.table"),
        ("['C\\.R\\.S\\.']", "['C\\.R(']", 17, "regular expression"),
        ("  pii: {description: personal}\n", "  pii: {description: personal}\n  pii: {description: twice}\n", 3, "duplicate key"),
        ("    first_name: [pii]\n", "    first_name: [pii\n", 6, "invalid YAML"),
        ("  criminal_law_enforcement: {requires: [case_number]", "  criminal_law_enforcement: {requires: [case_no]", 8, "case_no"),
        ("tags:\n", "tags:\n  unclassified: {description: x}\n", 2, "built in"),
        ("  court_order: {requires", "  shopping: {grants: {pii: allow}}\n  court_order: {requires", 10, "shopping"),
    ],
)
def test_broken_file_names_line(old, new, line, words):
    assert old in MINIMAL
    message = _error(MINIMAL.replace(old, new, 1))
    assert message.startswith(f"p.yaml:{line}:"), message
    assert words in message, message


def test_missing_key_points_at_parent():
    message = _error(MINIMAL.replace("no_purpose:\n  grants: {pii: allow}\n", "no_purpose:\n  description: x\n"))
    assert message.startswith("p.yaml:13: no_purpose.grants: this key is required"), message


def test_several_errors_all_reported_in_file_order():
    text = MINIMAL.replace("{pii: allow}}", "{pii: nope}}").replace("no_purpose:\n", "no_purpose:\n  extra: 1\n")
    lines = _error(text).splitlines()
    assert len(lines) >= 6
    numbers = [int(line.split(":")[1]) for line in lines]
    assert numbers == sorted(numbers)


def test_unreadable_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        parse_policy("- a\n- b\n")
    with pytest.raises(ConfigError, match="tags: this key is required"):
        parse_policy("")


@pytest.mark.parametrize("name", ["colorado-dmv.yaml", "requesters.example.yaml"])
def test_the_libyaml_parser_reads_files_as_the_python_parser_does(name: str) -> None:
    """parse_yaml reads with libyaml when PyYAML has it (and words errors with the Python parser):
    the same data and the same line of every key and item as the Python parser alone."""
    import yaml

    from gateway.policy import yaml_lines

    if yaml_lines._FAST is None:
        pytest.skip("PyYAML without libyaml: the Python parser is the only one")
    raw = (ROOT / "policies" / name).read_bytes()
    text = raw.decode()
    fast = yaml_lines._parse(yaml_lines._FAST(text), text, name, "d")
    slow = yaml_lines._parse(yaml.SafeLoader(text), text, name, "d")
    assert (fast.data, dict(fast.lines)) == (slow.data, dict(slow.lines))
    assert yaml_lines.parse_yaml(raw, name).data == slow.data
