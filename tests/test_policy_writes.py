"""Write grants in the policy: profiles, the write decision, and check-policy against the law and the
live schema (``policy/writes.py``)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gateway.identity.requesters import load_requesters
from gateway.policy.lawcheck import law_problems
from gateway.policy.load import load_policy, parse_policy
from gateway.policy.types import PurposeClaim
from gateway.policy.writes import WriteRequest, decide_write
from tests.writes_support import ROOT, WRITE_GRANTS, policy_with_grants, requesters_with_writer, write_files

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _policy(grants: str):  # type: ignore[no-untyped-def]
    return parse_policy((ROOT / "policies/colorado-dmv.yaml").read_text() + grants)


def _requesters(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "requesters.yaml"
    path.write_text(requesters_with_writer())
    return load_requesters(str(path))


def test_shipped_policy_grants_no_write() -> None:
    policy = load_policy(ROOT / "policies/colorado-dmv.yaml")
    requesters = load_requesters(ROOT / "policies/requesters.example.yaml")
    assert policy.file.writes == ()
    for entry in ("dmv_clerk", "cbi_analyst", "ag_counsel", "gov_office", "ice_ero"):
        requester = requesters.lookup(entry).requester
        for purpose in sorted(requester.purposes):
            assert policy.profile_for(requester, PurposeClaim(purpose, case_number="CR-2026-0042",
                                                              legal_citation="C.R.S. 1-1-1",
                                                              order_reference="2026CV001234",
                                                              authorization_id="GOV-2026-0001"), NOW).writes == ()


def test_profiles_carry_the_grants_of_their_purpose(tmp_path: Path) -> None:
    policy = parse_policy(policy_with_grants())
    clerk = _requesters(tmp_path).lookup("dmv_clerk").requester
    service = policy.profile_for(clerk, PurposeClaim("service_delivery"), NOW)
    by_law = policy.profile_for(clerk, PurposeClaim("required_by_law", legal_citation="C.R.S. 42-2-107"), NOW)
    persons = {r.table: r for r in service.writes}[("dmv", "persons")]
    assert "place_of_birth" not in persons.update and "city" in persons.update
    assert "place_of_birth" in {r.table: r for r in by_law.writes}[("dmv", "persons")].update
    assert service.key != by_law.key  # the analysis caches keep them apart
    assert "immigration_status" in service.status_tags


def test_decide_write_rules(tmp_path: Path) -> None:
    policy = parse_policy(policy_with_grants())
    clerk = _requesters(tmp_path).lookup("dmv_clerk").requester
    service = policy.profile_for(clerk, PurposeClaim("service_delivery"), NOW)
    by_law = policy.profile_for(clerk, PurposeClaim("required_by_law", legal_citation="C.R.S. 42-2-107"), NOW)

    def tags(table: str):  # type: ignore[no-untyped-def]
        return lambda column: policy.tags_for("dmv", table, column)

    columns = tuple(policy.listed_columns("dmv", "persons"))
    city = WriteRequest("update", ("dmv", "persons"), ("city",), columns)
    birth = WriteRequest("update", ("dmv", "persons"), ("place_of_birth",), columns)
    name = WriteRequest("update", ("dmv", "persons"), ("first_name",), columns)
    delete = WriteRequest("delete", ("dmv", "persons"), (), columns)
    assert decide_write(city, service, tags("persons")).action == "allow"
    assert decide_write(birth, service, tags("persons")).rule == "write.24_74_104"
    assert decide_write(birth, by_law, tags("persons")).action == "allow"
    assert decide_write(name, service, tags("persons")).rule == "write.no_grant.update"
    assert decide_write(delete, by_law, tags("persons")).rule == "write.no_grant.delete"
    assert decide_write(delete, service, tags("persons")).rule == "write.24_74_104"  # persons holds status columns
    docs = WriteRequest("insert", ("dmv", "identity_documents"), ("document_id", "person_id", "document_type"),
                        tuple(policy.listed_columns("dmv", "identity_documents")))
    assert decide_write(docs, service, tags("identity_documents")).rule == "write.24_74_104"
    assert decide_write(docs, by_law, tags("identity_documents")).action == "allow"


def test_the_test_grants_are_lawful(tmp_path: Path) -> None:
    result = law_problems(parse_policy(policy_with_grants()), _requesters(tmp_path))
    assert not [p for p in result.problems if "writes[" in p], result.problems


@pytest.mark.parametrize("grant, expected", [
    ("  - {table: dmv.persons, requesters: [dmv_clerk], update: [place_of_birth]}\n", "24-74-104"),
    ("  - {table: dmv.identity_documents, requesters: [dmv_clerk], insert: [document_type]}\n", "24-74-104"),
    ("  - {table: dmv.lawful_presence, requesters: [dmv_clerk], purposes: [service_delivery], delete: true}\n",
     "24-74-104"),
    ("  - {table: dmv.persons, requesters: [dmv_clerk], purposes: [required_by_law, service_delivery], "
     "update: [country_of_citizenship]}\n", "24-74-104"),
    ("  - {table: dmv.persons, requesters: [cbi_analyst], update: [city]}\n", "not the agency's own staff"),
    ("  - {table: dmv.persons, kinds: [external], update: [city]}\n", "only the agency's own staff"),
    ("  - {table: dmv.persons, update: [city]}\n", "names no requester"),
    ("  - {table: dmv.persons, requesters: [dmv_clerk]}\n", "grants nothing"),
])
def test_check_policy_refuses_unlawful_grants(tmp_path: Path, grant: str, expected: str) -> None:
    result = law_problems(_policy("\nwrites:\n" + grant), _requesters(tmp_path))
    assert any(expected in p for p in result.problems), result.problems


def test_serve_refuses_to_start_with_an_unlawful_grant(tmp_path: Path) -> None:
    policy, requesters = write_files(tmp_path)
    policy.write_text(policy.read_text() + "  - {table: dmv.persons, requesters: [dmv_clerk], update: [place_of_birth]}\n")
    done = subprocess.run([sys.executable, "-m", "gateway", "check-policy", "--policy", str(policy),
                           "--requesters", str(requesters)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "24-74-104" in done.stdout, done.stdout + done.stderr


def test_check_policy_compares_grants_with_the_live_schema(tmp_path: Path, dmv_dsn: str) -> None:
    policy, requesters = write_files(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "gateway", "check-policy", "--policy", str(policy), "--requesters",
                         str(requesters), "--dsn", dmv_dsn], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    policy.write_text(policy.read_text() + "  - {table: dmv.driver_summary, requesters: [dmv_clerk], update: [full_name]}\n"
                      "  - {table: dmv.vehicles, requesters: [dmv_clerk], update: [colour]}\n"
                      "  - {table: dmv.nothing_here, requesters: [dmv_clerk], delete: true}\n")
    bad = subprocess.run([sys.executable, "-m", "gateway", "check-policy", "--policy", str(policy), "--requesters",
                          str(requesters), "--dsn", dmv_dsn], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "dmv.driver_summary is a view" in bad.stdout
    assert "no such column(s) in the database: colour" in bad.stdout
    assert "writes[6] (dmv.nothing_here): names no table in the database" in bad.stdout


def test_grants_section_is_documented() -> None:
    text = (ROOT / "policies/colorado-dmv.yaml").read_text()
    assert "# writes:" in text and "required_by_law" in text
    assert WRITE_GRANTS.strip().startswith("writes:")


def test_the_shipped_example_grant_is_lawful_once_uncommented(tmp_path: Path) -> None:
    text = (ROOT / "policies/colorado-dmv.yaml").read_text()
    head, example = text.split("# EXAMPLE (uncomment", 1)
    block = "\n".join(line[2:] for line in example.splitlines()[1:] if line.startswith("# "))
    policy = parse_policy(head + block + "\n")
    assert len(policy.file.writes) == 2
    result = law_problems(policy, _requesters(tmp_path))
    assert not [p for p in result.problems if "writes[" in p], result.problems
    clerk = load_requesters(ROOT / "policies/requesters.example.yaml").lookup("dmv_clerk").requester
    assert policy.profile_for(clerk, PurposeClaim("service_delivery"), NOW).writes
