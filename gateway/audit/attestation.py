"""The law's rules, re-checked on every granted request from its record alone (SB21-131, 24-74-103/105).

The attestation must not trust the policy that was in force: a loosened policy could have tagged a
status column as nothing, let ``civil_immigration_enforcement`` read, or accepted a detainer as a
court order. :func:`law_violation` therefore reads only what the record says - the purpose, who asked
(requester kind, or the agency's name), the justification, the columns that reached the requester,
the registry entry and certification named - and applies the law's own lists: which columns of the
reference schema hold immigration status or identify a person (besides whatever the record's tags
say), which documents are not court-issued orders. Pure: no I/O.

>>> rec = {"decision": "allow", "purpose": "court_order", "justification": {"order_reference": "ICE I-247A detainer"},
...        "accesses": [{"column": "dmv.lawful_presence.immigration_status", "tags": [], "usage": ["output"]}]}
>>> law_violation(rec)
'a court_order release on an immigration detainer (I-247): not a court-issued order (SB21-131, 24-74-103)'
"""

from __future__ import annotations

import re
from typing import Any

from gateway.policy.law import CIVIL, EXCEPTIONS

#: immigration status and what reveals it, in the reference schema (SPEC 2), whatever a policy tagged
LAW_STATUS_COLUMNS = frozenset({
    "dmv.lawful_presence.immigration_status", "dmv.lawful_presence.verification_method",
    "dmv.lawful_presence.save_case_number", "dmv.lawful_presence.verified_on",
    "dmv.licenses.credential_type", "dmv.licenses.federal_limits_apply", "dmv.licenses.limited_term",
    "dmv.identity_documents.document_type", "dmv.identity_documents.issuing_country",
    "dmv.identity_documents.document_number", "dmv.persons.country_of_citizenship", "dmv.persons.place_of_birth",
    "dmv.persons.itin",
})  # fmt: skip
#: personal identifying information in the reference schema (SPEC 2)
LAW_PII_COLUMNS = frozenset(
    [f"dmv.persons.{c}" for c in ("person_id", "first_name", "last_name", "date_of_birth", "sex", "ssn", "itin", "email",
                                  "phone", "address_line1", "city", "county", "zip")]
    + [f"dmv.licenses.{c}" for c in ("license_id", "person_id", "license_number")]
    + [f"dmv.identity_documents.{c}" for c in ("document_id", "person_id", "document_number")]
    + ["dmv.lawful_presence.person_id", "dmv.lawful_presence.save_case_number"]
    + [f"dmv.vehicles.{c}" for c in ("vehicle_id", "owner_person_id", "vin", "plate")]
    + [f"dmv.violations.{c}" for c in ("violation_id", "person_id", "license_id", "county")]
)
#: documents that are not court-issued orders, recognised in an order_reference whatever the policy said
NOT_COURT_ISSUED = (
    (re.compile(r"\bI-?\s?247[A-Z]?\b|\bdetainer\b", re.I), "an immigration detainer (I-247)"),
    (re.compile(r"\bI-?\s?200\b|warrant\s+for\s+(the\s+)?arrest\s+of\s+(an\s+)?alien", re.I), "an immigration warrant (I-200)"),
    (re.compile(r"\bI-?\s?205\b|warrant\s+of\s+(removal|deportation)", re.I), "an immigration warrant (I-205)"),
    (re.compile(r"\bimmigration\s+(arrest\s+|removal\s+|administrative\s+)?warrant|\badministrative\s+warrant", re.I),
     "an immigration (administrative) warrant"),
    (re.compile(r"\bsubpoena\b", re.I), "a subpoena"),
    (re.compile(r"\bI-?\s?138\b", re.I), "an immigration agency subpoena (I-138)"),
)  # fmt: skip
_IMMIGRATION_AGENCY = re.compile(r"immigration|\bICE\b|\bCBP\b|\bUSCIS\b|\bHSI\b|homeland security", re.I)


def is_immigration_agency(record: dict[str, Any]) -> bool:
    """Whether the record's requester is an immigration agency: its kind when recorded, else its agency's name."""
    kind = record.get("requester_kind")
    if kind:
        return kind == "immigration_agency" or bool(_IMMIGRATION_AGENCY.search(str(record.get("agency") or "")))
    return bool(_IMMIGRATION_AGENCY.search(str(record.get("agency") or "")))


def is_external(record: dict[str, Any]) -> bool | None:
    kind = record.get("requester_kind")
    if kind:
        return kind != "internal"
    cert = record.get("certification")
    return True if isinstance(cert, dict) else None


def released(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(status columns, identifying columns) that reached the requester: read, not masked, not denied."""
    if record.get("decision") == "deny":
        return [], []
    masked = set(record.get("masked") or ())
    status, pii = [], []
    for access in record.get("accesses") or ():
        column = str(access.get("column"))
        if column in masked:
            continue
        tags = " ".join(access.get("tags") or ())
        if column in LAW_STATUS_COLUMNS or "immigration" in tags or "status" in tags or "unclassified" in tags:
            status.append(column)
        if column in LAW_PII_COLUMNS or "pii" in tags or "unclassified" in tags:
            pii.append(column)
    return status, pii


def law_violation(record: dict[str, Any]) -> str | None:
    """Why granting this request broke the law, from the record alone; None when it did not (or was refused)."""
    status, pii = released(record)
    if not status and not pii:
        return None
    purpose = record.get("purpose")
    justification = record.get("justification") or {}
    if purpose == CIVIL or is_immigration_agency(record):
        who = "civil immigration enforcement" if purpose == CIVIL else f"an immigration agency ({record.get('agency')})"
        what = "immigration status" if status else "personal identifying information"
        return f"{what} released to {who} ({', '.join((status or pii)[:3])}): barred by SB21-131"
    if pii and is_external(record):
        cert = record.get("certification")
        if isinstance(cert, dict) and cert.get("status") != "current":
            return (f"personal identifying information released to an outside requester without a current "
                    f"certification ({cert.get('status')}): 24-74-105 C.R.S.")
    if not status:
        return None
    if purpose not in EXCEPTIONS:
        return f"immigration status released for purpose {purpose or 'none'}, which is not an exception"
    field = EXCEPTIONS[purpose]
    value = str(justification.get(field) or "").strip()
    if not value:
        return f"immigration status released under {purpose} without its {field}"
    if purpose == "court_order":
        for pattern, names in NOT_COURT_ISSUED:
            if pattern.search(value):
                return f"a court_order release on {names}: not a court-issued order (SB21-131, 24-74-103)"
    if purpose in ("court_order", "governor_authorized") and "registry_entry" in record and not record["registry_entry"]:
        kind = "court order" if purpose == "court_order" else "governor authorization"
        return f"immigration status released under {purpose} naming no {kind} on file"
    return None
