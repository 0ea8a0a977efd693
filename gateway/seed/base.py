"""The base stream: every non-classified value and every row count, drawn from ``seed`` alone.

Nothing here looks at a classified value, so two databases seeded with the same base seed agree on
all of it whatever their classified seed or variant.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass

from gateway.seed import catalogue as cat

_REF = cat.REFERENCE_DATE.toordinal()
_DATE = dt.date.fromordinal
_YEAR = 365


@dataclass(frozen=True)
class BaseData:
    """Rows without their classified columns (see :mod:`gateway.seed.generate` for the merge).

    persons:   (person_id, first_name, last_name, date_of_birth, sex, ssn, email, phone,
                address_line1, city, county, zip)
    licenses:  (license_id, person_id, license_number, license_class, issue_date, expiry_date,
                status, term_years)
    documents: (document_id, person_id, index of the document for its person)
    vehicles, violations: complete rows in table column order.
    """

    persons: list[tuple]  # type: ignore[type-arg]
    licenses: list[tuple]  # type: ignore[type-arg]
    documents: list[tuple]  # type: ignore[type-arg]
    vehicles: list[tuple]  # type: ignore[type-arg]
    violations: list[tuple]  # type: ignore[type-arg]


def _cum(weights: list[float] | tuple[float, ...]) -> list[float]:
    return list(itertools.accumulate(weights))


_COUNTY_CUM = _cum([c[1] for c in cat.COUNTIES])
_MAKE_CUM = _cum([m[1] for m in cat.VEHICLES])
_CLASS_CUM = _cum([c[1] for c in cat.LICENSE_CLASSES])
_OFFENSE_CUM = _cum([o[1] for o in cat.OFFENSES])
_DISPOSITION_CUM = _cum([d[1] for d in cat.DISPOSITIONS])


def _ssn(rng: random.Random) -> str:
    area = rng.randint(1, 899)
    if area == 666:
        area = 667
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def build_base(persons: int, seed: int) -> BaseData:
    """Draw the base rows for ``persons`` persons from ``random.Random(seed)``."""
    rng = random.Random(seed)
    rand, randint, choice, choices = rng.random, rng.randint, rng.choice, rng.choices
    n = persons
    sexes = choices(("F", "M", "X"), cum_weights=(49.6, 99.2, 100.0), k=n)
    counties = choices(cat.COUNTIES, cum_weights=_COUNTY_CUM, k=n)
    license_counts = choices((0, 1, 2), cum_weights=(11, 95, 100), k=n)
    document_counts = choices((1, 2, 3), cum_weights=(55, 90, 100), k=n)
    vehicle_counts = choices((0, 1, 2), cum_weights=(33, 80, 100), k=n)
    violation_counts = choices((0, 1, 2, 3), cum_weights=(68, 88, 96, 100), k=n)
    number_offset = rng.randrange(10**9)

    person_rows: list[tuple] = []  # type: ignore[type-arg]
    license_rows: list[tuple] = []  # type: ignore[type-arg]
    document_rows: list[tuple] = []  # type: ignore[type-arg]
    vehicle_rows: list[tuple] = []  # type: ignore[type-arg]
    violation_rows: list[tuple] = []  # type: ignore[type-arg]
    license_id = document_id = vehicle_id = violation_id = 0

    for i in range(n):
        person_id = i + 1
        sex = sexes[i]
        if sex == "X":
            sex_names = cat.FIRST_NAMES_F if rand() < 0.5 else cat.FIRST_NAMES_M
        else:
            sex_names = cat.FIRST_NAMES_F if sex == "F" else cat.FIRST_NAMES_M
        first, last = choice(sex_names), choice(cat.LAST_NAMES)
        if rand() < 0.08:
            last = f"{last}-{choice(cat.LAST_NAMES)}"
        age_days = int((16 + rand() ** 1.25 * 74) * _YEAR) + randint(0, 364)
        dob = _REF - age_days
        ssn = _ssn(rng) if rand() < 0.955 else None
        email = f"{first}.{last}{randint(1, 999)}@{choice(cat.EMAIL_DOMAINS)}".lower().replace(" ", "")
        phone = f"{choice(cat.AREA_CODES)}-{randint(200, 999)}-{randint(0, 9999):04d}"
        address = f"{randint(100, 19999)} {choice(cat.STREETS)}"
        if rand() < 0.25:
            address = f"{address} Apt {randint(1, 420)}"
        county, _, cities = counties[i]
        city, zip_lo, zip_hi = choice(cities)
        person_rows.append(
            (person_id, first, last, _DATE(dob), sex, ssn, email, phone, address, city, county,
             f"{randint(zip_lo, zip_hi):05d}")
        )

        adult = dob + 16 * _YEAR
        newest_license = None
        count = license_counts[i]
        for j in range(count):
            license_id += 1
            if count == 2 and j == 0:
                issue = max(adult, _REF - randint(8 * _YEAR, 16 * _YEAR))
                term = 5
            else:
                issue = max(adult, _REF - randint(1, 6 * _YEAR))
                term = choices((5, 3, 2, 1), cum_weights=(82, 91, 96, 100))[0]
            expiry = issue + term * _YEAR + randint(-3, 3)
            if count == 2 and j == 0:
                status = "CANCELLED" if rand() < 0.3 else "EXPIRED"
            elif expiry <= _REF:
                status = "EXPIRED"
            else:
                r = rand()
                status = "VALID" if r < 0.93 else "SUSPENDED" if r < 0.97 else "REVOKED" if r < 0.985 else "CANCELLED"
            x = (license_id * 387_420_489 + number_offset) % 10**9
            number = f"{x // 10**7:02d}-{x // 10**4 % 1000:03d}-{x % 10**4:04d}"
            klass = choices(cat.LICENSE_CLASSES, cum_weights=_CLASS_CUM)[0][0]
            license_rows.append((license_id, person_id, number, klass, _DATE(issue), _DATE(expiry), status, term))
            newest_license = (license_id, issue)

        for j in range(document_counts[i]):
            document_id += 1
            document_rows.append((document_id, person_id, j))

        for _ in range(vehicle_counts[i]):
            vehicle_id += 1
            make, _, models = choices(cat.VEHICLES, cum_weights=_MAKE_CUM)[0]
            plate = (f"{''.join(choices(cat.PLATE_LETTERS, k=3))}-{randint(0, 999):03d}" if rand() < 0.7
                     else f"{randint(100, 999)}-{''.join(choices(cat.PLATE_LETTERS, k=3))}")
            vehicle_rows.append((
                vehicle_id, person_id, "".join(choices(cat.VIN_CHARS, k=17)), plate, make,
                choice(models), cat.REFERENCE_DATE.year - int(rand() ** 1.6 * 28),
            ))

        if newest_license is not None:
            held_license, since = newest_license
            for _ in range(violation_counts[i]):
                violation_id += 1
                code, _, fine = choices(cat.OFFENSES, cum_weights=_OFFENSE_CUM)[0]
                where = county if rand() < 0.75 else choices(cat.COUNTIES, cum_weights=_COUNTY_CUM)[0][0]
                violation_rows.append((
                    violation_id, person_id, held_license, code, _DATE(randint(min(since, _REF - 1), _REF - 1)),
                    where, fine, choices(cat.DISPOSITIONS, cum_weights=_DISPOSITION_CUM)[0][0],
                ))

    return BaseData(person_rows, license_rows, document_rows, vehicle_rows, violation_rows)
