"""Distributions of the classified values: ``default`` (Colorado-like) and ``alt`` (clearly different).

Two databases seeded with the same base seed but different variants share every non-classified
value and row count; only what is drawn from these distributions differs.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = (
    "US_CITIZEN", "LAWFUL_PERMANENT_RESIDENT", "TEMPORARY_VISA", "DACA", "TPS", "ASYLUM_PENDING",
    "NO_LAWFUL_PRESENCE",
)
#: Statuses whose credentials are limited to the authorized stay.
TEMPORARY = frozenset({"TEMPORARY_VISA", "DACA", "TPS", "ASYLUM_PENDING"})

US_BIRTHPLACES = (
    ("Denver, Colorado", 18.0), ("Colorado Springs, Colorado", 8.0), ("Aurora, Colorado", 4.0),
    ("Pueblo, Colorado", 3.0), ("Fort Collins, Colorado", 3.0), ("Boulder, Colorado", 2.0),
    ("Greeley, Colorado", 2.0), ("Grand Junction, Colorado", 2.0), ("Los Angeles, California", 5.0),
    ("Phoenix, Arizona", 3.0), ("Albuquerque, New Mexico", 3.0), ("Dallas, Texas", 3.0),
    ("Houston, Texas", 3.0), ("Chicago, Illinois", 3.0), ("New York, New York", 3.0),
    ("Omaha, Nebraska", 2.0), ("Wichita, Kansas", 2.0), ("Salt Lake City, Utah", 2.0),
    ("Cheyenne, Wyoming", 1.0), ("Minneapolis, Minnesota", 2.0), ("Seattle, Washington", 2.0),
    ("Atlanta, Georgia", 2.0), ("San Antonio, Texas", 2.0), ("Detroit, Michigan", 1.0),
)


@dataclass(frozen=True)
class Country:
    name: str
    weight: float
    cities: tuple[str, ...]
    passport_prefix: str


@dataclass(frozen=True)
class Variant:
    """One distribution of classified values."""

    name: str
    #: status weights for persons with an SSN on file, and for persons without one.
    status_with_ssn: tuple[float, ...]
    status_without_ssn: tuple[float, ...]
    countries: tuple[Country, ...]
    #: share of citizens born abroad, of citizens/LPRs holding a REAL ID, of NLP holding CO_RCSA.
    citizen_born_abroad: float
    real_id_share: float
    co_rcsa_share: float
    #: share of non-citizens verified through SAVE (they get a SAVE case number).
    save_share: float
    citizen_methods: tuple[str, ...]


DEFAULT = Variant(
    name="default",
    status_with_ssn=(86.0, 7.0, 2.5, 1.2, 0.8, 0.5, 2.0),
    status_without_ssn=(4.0, 3.0, 10.0, 0.0, 3.0, 10.0, 70.0),
    countries=(
        Country("Mexico", 50.0, ("Chihuahua", "Ciudad Juarez", "Durango", "Zacatecas", "Guadalajara", "Mexico City", "Monterrey"), "G"),
        Country("Guatemala", 6.0, ("Guatemala City", "Quetzaltenango", "Huehuetenango"), "GT"),
        Country("El Salvador", 6.0, ("San Salvador", "Santa Ana", "San Miguel"), "SV"),
        Country("Honduras", 5.0, ("Tegucigalpa", "San Pedro Sula"), "HN"),
        Country("India", 5.0, ("Delhi", "Mumbai", "Hyderabad", "Bengaluru"), "N"),
        Country("China", 4.0, ("Beijing", "Shanghai", "Guangzhou"), "E"),
        Country("Vietnam", 4.0, ("Ho Chi Minh City", "Hanoi", "Da Nang"), "C"),
        Country("Philippines", 3.0, ("Manila", "Cebu City"), "P"),
        Country("Canada", 3.0, ("Toronto", "Calgary", "Vancouver"), "AB"),
        Country("Ethiopia", 3.0, ("Addis Ababa", "Gondar"), "EP"),
        Country("South Korea", 2.0, ("Seoul", "Busan"), "M"),
        Country("Germany", 2.0, ("Berlin", "Munich"), "C"),
        Country("Somalia", 1.5, ("Mogadishu", "Hargeisa"), "P0"),
        Country("Peru", 1.5, ("Lima", "Arequipa"), "PE"),
        Country("Nepal", 1.0, ("Kathmandu", "Pokhara"), "PA"),
    ),
    citizen_born_abroad=0.05,
    real_id_share=0.72,
    co_rcsa_share=0.92,
    save_share=0.94,
    citizen_methods=("BIRTH_CERTIFICATE", "BIRTH_CERTIFICATE", "US_PASSPORT", "SSA_ONLINE"),
)

ALT = Variant(
    name="alt",
    status_with_ssn=(52.0, 14.0, 8.0, 7.0, 7.0, 5.0, 7.0),
    status_without_ssn=(12.0, 6.0, 14.0, 0.0, 16.0, 24.0, 28.0),
    countries=(
        Country("Venezuela", 25.0, ("Caracas", "Maracaibo", "Valencia"), "V"),
        Country("Ukraine", 12.0, ("Kyiv", "Kharkiv", "Odesa", "Lviv"), "FA"),
        Country("Haiti", 10.0, ("Port-au-Prince", "Cap-Haitien"), "HT"),
        Country("Afghanistan", 8.0, ("Kabul", "Herat"), "P0"),
        Country("Nigeria", 8.0, ("Lagos", "Abuja"), "A"),
        Country("Cuba", 8.0, ("Havana", "Santiago de Cuba"), "K"),
        Country("Brazil", 8.0, ("Sao Paulo", "Rio de Janeiro"), "FZ"),
        Country("Colombia", 8.0, ("Bogota", "Medellin", "Cali"), "AQ"),
        Country("Russia", 5.0, ("Moscow", "Saint Petersburg"), "75"),
        Country("Eritrea", 4.0, ("Asmara",), "ER"),
        Country("Myanmar", 4.0, ("Yangon", "Mandalay"), "MA"),
    ),
    citizen_born_abroad=0.15,
    real_id_share=0.45,
    co_rcsa_share=0.75,
    save_share=0.70,
    citizen_methods=("US_PASSPORT", "SSA_ONLINE", "SSA_ONLINE", "BIRTH_CERTIFICATE"),
)

VARIANTS: dict[str, Variant] = {v.name: v for v in (DEFAULT, ALT)}
