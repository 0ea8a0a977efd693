"""The classified stream: immigration status and everything that reveals it, drawn from its own seed.

Values may depend on base values (an SSN on file, a short license term, the birth year), never the
reverse, and they never consume the base stream: a database seeded with another classified seed
or variant differs only in the columns of ``CLASSIFIED_COLUMNS``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass

from gateway.seed import catalogue as cat
from gateway.seed.base import BaseData
from gateway.seed.variants import STATUSES, TEMPORARY, US_BIRTHPLACES, Country, Variant

_REF = cat.REFERENCE_DATE.toordinal()
_DATE = dt.date.fromordinal
_USA = "United States"
_US_BIRTH_CUM = list(itertools.accumulate(w for _, w in US_BIRTHPLACES))

#: Document types a person presents, in order of likelihood, by immigration status.
_DOCUMENTS = {
    "US_CITIZEN": ("US_BIRTH_CERTIFICATE", "US_PASSPORT"),
    "LAWFUL_PERMANENT_RESIDENT": ("PERMANENT_RESIDENT_CARD", "FOREIGN_PASSPORT", "EMPLOYMENT_AUTHORIZATION"),
    "TEMPORARY_VISA": ("FOREIGN_PASSPORT", "EMPLOYMENT_AUTHORIZATION", "CONSULAR_ID"),
    "DACA": ("EMPLOYMENT_AUTHORIZATION", "FOREIGN_PASSPORT", "CONSULAR_ID"),
    "TPS": ("EMPLOYMENT_AUTHORIZATION", "FOREIGN_PASSPORT", "CONSULAR_ID"),
    "ASYLUM_PENDING": ("EMPLOYMENT_AUTHORIZATION", "FOREIGN_PASSPORT", "CONSULAR_ID"),
    "NO_LAWFUL_PRESENCE": ("CONSULAR_ID", "FOREIGN_PASSPORT", "ITIN_LETTER"),
}
_US_ISSUED = frozenset({"US_BIRTH_CERTIFICATE", "US_PASSPORT", "PERMANENT_RESIDENT_CARD",
                        "EMPLOYMENT_AUTHORIZATION", "ITIN_LETTER"})


@dataclass(frozen=True)
class ClassifiedData:
    """Classified columns aligned with the rows of :class:`BaseData`.

    persons:         (place_of_birth, country_of_citizenship, itin) per person
    lawful_presence: complete rows (person_id, immigration_status, verification_method,
                     save_case_number, verified_on)
    licenses:        (credential_type, federal_limits_apply, limited_term) per license
    documents:       (document_type, issuing_country, document_number, verified_on) per document
    """

    persons: list[tuple]  # type: ignore[type-arg]
    lawful_presence: list[tuple]  # type: ignore[type-arg]
    licenses: list[tuple]  # type: ignore[type-arg]
    documents: list[tuple]  # type: ignore[type-arg]


def _itin(rng: random.Random) -> str:
    return f"9{rng.randint(0, 99):02d}-{rng.choice((70, 71, 72, 73, 78, 79, 80, 83, 88))}-{rng.randint(0, 9999):04d}"


def _document_number(
    rng: random.Random, kind: str, person: tuple, country: Country, itin: str | None  # type: ignore[type-arg]
) -> str:
    randint = rng.randint
    if kind == "US_BIRTH_CERTIFICATE":
        return f"CO-{person[3].year}-{randint(0, 999999):06d}"
    if kind == "US_PASSPORT":
        return f"{rng.choice('ABC')}{randint(0, 10**8 - 1):08d}" if rng.random() < 0.6 else f"{randint(10**8, 10**9 - 1)}"
    if kind in ("PERMANENT_RESIDENT_CARD", "EMPLOYMENT_AUTHORIZATION"):
        prefix = "A" if kind == "PERMANENT_RESIDENT_CARD" else rng.choice(("IOE", "SRC", "EAC"))
        return f"{prefix}{randint(10**8 // 2, 10**9 - 1):09d}" if prefix == "A" else f"{prefix}{randint(0, 10**10 - 1):010d}"
    if kind == "ITIN_LETTER":
        return itin or _itin(rng)
    if kind == "CONSULAR_ID":
        return f"MC{randint(0, 10**9 - 1):09d}"
    return f"{country.passport_prefix}{randint(0, 10**7 - 1):07d}"


def _document_seen(document_id: int, person: tuple) -> int:  # type: ignore[type-arg]
    """identity_documents.verified_on is not classified (SPEC section 2): it comes from base values
    only, so twin databases agree on it and it does not echo lawful_presence.verified_on."""
    dob = person[3].toordinal()
    spread = (document_id * 2654435761) % (12 * 365)
    return min(_REF, max(dob + 16 * 365, _REF - 20 - spread))


def build_classified(base: BaseData, seed: int, variant: Variant) -> ClassifiedData:
    """Draw the classified values for ``base`` from a stream seeded by ``seed`` and ``variant``."""
    rng = random.Random(f"gateway-classified:{seed}:{variant.name}")
    rand, randint, choice, choices = rng.random, rng.randint, rng.choice, rng.choices
    country_cum = list(itertools.accumulate(c.weight for c in variant.countries))
    with_ssn = list(itertools.accumulate(variant.status_with_ssn))
    without_ssn = list(itertools.accumulate(variant.status_without_ssn))

    person_rows, presence_rows = [], []
    status_of: list[str] = [""]  # indexed by person_id
    country_of: list = [None]  # type: ignore[type-arg]
    itin_of: list[str | None] = [None]
    verified_of: list[int] = [0]
    abroad_of: list[bool] = [False]  # a citizen born abroad proves citizenship with a US passport
    for person in base.persons:
        person_id, dob = person[0], person[3].toordinal()
        status = choices(STATUSES, cum_weights=with_ssn if person[5] is not None else without_ssn)[0]
        country = choices(variant.countries, cum_weights=country_cum)[0]
        abroad = False
        if status == "US_CITIZEN":
            citizenship = _USA
            abroad = rand() < variant.citizen_born_abroad
            if abroad:
                place = f"{choice(country.cities)}, {country.name}"
            else:
                place = choices(US_BIRTHPLACES, cum_weights=_US_BIRTH_CUM)[0][0]
        else:
            citizenship = country.name
            place = f"{choice(country.cities)}, {country.name}"
        if status == "US_CITIZEN":
            itin = None
        elif status == "NO_LAWFUL_PRESENCE":
            itin = _itin(rng) if rand() < 0.8 else None
        else:
            itin = _itin(rng) if rand() < (0.5 if person[5] is None else 0.02) else None
        if status == "US_CITIZEN":
            method, case = choice(variant.citizen_methods), None
        elif status == "NO_LAWFUL_PRESENCE":
            method, case = ("CO_RCSA_ITIN" if itin else "CO_RCSA_AFFIDAVIT"), None
        elif rand() < variant.save_share:
            method = "SAVE"
            case = f"{randint(0, 10**13 - 1):013d}{choice('ABCDEFGHJK')}{choice('ABCDEFGHJK')}"
        else:
            method, case = "DOCUMENT_REVIEW", None
        verified = max(dob + 16 * 365, _REF - randint(20, 12 * 365))
        verified = min(verified, _REF)
        person_rows.append((place, citizenship, itin))
        presence_rows.append((person_id, status, method, case, _DATE(verified)))
        status_of.append(status)
        country_of.append(country)
        itin_of.append(itin)
        verified_of.append(verified)
        abroad_of.append(abroad)

    license_rows = []
    for lic in base.licenses:
        status, term = status_of[lic[1]], lic[7]
        if status in ("US_CITIZEN", "LAWFUL_PERMANENT_RESIDENT"):
            credential = "REAL_ID" if rand() < variant.real_id_share else "STANDARD"
            limited = rand() < 0.01
        elif status in TEMPORARY:
            credential = "REAL_ID" if rand() < 0.55 else "STANDARD"
            limited = rand() < (0.9 if term <= 3 else 0.55)
        else:
            credential = "CO_RCSA" if rand() < variant.co_rcsa_share else "STANDARD"
            limited = rand() < (0.8 if term <= 3 else 0.35)
        license_rows.append((credential, credential == "CO_RCSA", limited))

    document_rows = []
    persons = base.persons
    for document_id, person_id, index in base.documents:
        status = status_of[person_id]
        kinds = _DOCUMENTS[status]
        if abroad_of[person_id]:
            kind = "US_PASSPORT"
        elif index == 0:
            kind = kinds[0] if rand() < 0.8 else kinds[1]
        else:
            kind = choice(kinds)
        country = country_of[person_id]
        issuer = _USA if kind in _US_ISSUED else country.name
        number = _document_number(rng, kind, persons[person_id - 1], country, itin_of[person_id])
        document_rows.append((kind, issuer, number, _DATE(_document_seen(document_id, persons[person_id - 1]))))

    return ClassifiedData(person_rows, presence_rows, license_rows, document_rows)
