"""What the law itself says, whatever a policy file says: the purposes SB21-131 names.

Kept in one place for the two readers that must not trust the policy in force: the policy's law
check (``policy/lawcheck.py``) and the attestation re-checked from the records (``audit/attestation.py``).
"""

from __future__ import annotations

#: the purpose under which neither personal identifying information nor status may be released
CIVIL = "civil_immigration_enforcement"
#: the law's exceptions and the justification each must carry
EXCEPTIONS = {
    "criminal_law_enforcement": "case_number",
    "required_by_law": "legal_citation",
    "court_order": "order_reference",
    "governor_authorized": "authorization_id",
}
