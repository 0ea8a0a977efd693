"""Test copies of the shipped policy and requesters with staff write grants enabled (the shipped
policy keeps writes off; docs/staff-writes.md)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WRITE_GRANTS = """
writes:
  - table: dmv.persons
    requesters: [dmv_clerk]
    description: A clerk updates a person's address and contact details.
    update: [address_line1, city, county, zip, email, phone]
    insert: [person_id, first_name, last_name, date_of_birth, sex, email, phone, address_line1, city, county, zip]
  - table: dmv.vehicles
    requesters: [dmv_clerk]
    insert: [vehicle_id, owner_person_id, vin, plate, make, model, model_year]
    update: [plate]
    delete: true
  - table: dmv.persons
    requesters: [dmv_clerk]
    purposes: [required_by_law]
    description: Place of birth and citizenship, only under required_by_law (24-74-104 C.R.S.).
    update: [place_of_birth, country_of_citizenship]
  - table: dmv.identity_documents
    requesters: [dmv_clerk]
    purposes: [required_by_law]
    insert: [document_id, person_id, document_type, issuing_country, document_number, verified_on]
"""


#: a table of the test's own (the harness may add tables): a unique key over a status column
PERMITS_DDL = """
CREATE TABLE dmv.permits (permit_id bigint PRIMARY KEY, person_id bigint NOT NULL,
                          holder_country text NOT NULL DEFAULT 'US', UNIQUE (person_id, holder_country))
"""
#: another: a status column filled by its DEFAULT, one computed from a column the clerk may set
RESIDENCY_DDL = """
CREATE TABLE dmv.residency (residency_id bigint PRIMARY KEY, person_id bigint NOT NULL, reference text,
                            birth_country text DEFAULT 'US',
                            document_ref text GENERATED ALWAYS AS ('DOC-' || reference) STORED)
"""
PERMITS_CLASSIFICATION = """  dmv.permits:
    permit_id: [pii]
    person_id: [pii]
    holder_country: [immigration_status]
  dmv.residency:
    residency_id: [pii]
    person_id: [pii]
    reference: [pii]
    birth_country: [immigration_status]
    document_ref: [immigration_status]
"""
PERMITS_GRANT = """  - table: dmv.permits
    requesters: [dmv_clerk]
    insert: [permit_id, person_id]
    update: [person_id]
  - table: dmv.residency
    requesters: [dmv_clerk]
    insert: [residency_id, person_id, reference]
    update: [person_id, reference]
"""


def policy_with_grants(permits: bool = False) -> str:
    text = (ROOT / "policies/colorado-dmv.yaml").read_text() + WRITE_GRANTS
    if permits:
        assert "\nclassification:\n" in text
        text = text.replace("\nclassification:\n", "\nclassification:\n" + PERMITS_CLASSIFICATION, 1) + PERMITS_GRANT
    return text


def requesters_with_writer() -> str:
    """dmv_clerk may also state required_by_law (a clerk recording documents a statute requires)."""
    text = (ROOT / "policies/requesters.example.yaml").read_text()
    marker = "    kind: internal\n    purposes: [service_delivery]\n"
    assert marker in text
    return text.replace(marker, "    kind: internal\n    purposes: [service_delivery, required_by_law]\n", 1)


def write_files(folder: Path, permits: bool = False) -> tuple[Path, Path]:
    policy, requesters = folder / "policy.yaml", folder / "requesters.yaml"
    policy.write_text(policy_with_grants(permits))
    requesters.write_text(requesters_with_writer())
    return policy, requesters
