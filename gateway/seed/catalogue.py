"""Reference lists for the synthetic DMV data: Colorado-like names, places, vehicles and offenses.

Weights are rough shares, not statistics. Everything here is constant, so the generator stays
deterministic from its seeds alone.
"""

from __future__ import annotations

import datetime as dt

#: "Today" for the synthetic data (fixed, so the data does not change with the calendar).
REFERENCE_DATE = dt.date(2026, 1, 1)

FIRST_NAMES_F = (
    "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Sandra "
    "Ashley Emily Michelle Amanda Melissa Stephanie Rebecca Laura Emma Olivia Sophia Isabella Ava "
    "Mia Abigail Harper Chloe Hannah Grace Madison Maria Guadalupe Ana Rosa Juana Veronica Alejandra "
    "Gabriela Daniela Sofia Valentina Carmen Yesenia Lucia Leticia Adriana Mai Linh Priya Fatima "
    "Aisha Nadia Olena Tigist Hiwot Svetlana Mei Ngoc"
).split()
FIRST_NAMES_M = (
    "James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel "
    "Matthew Anthony Mark Steven Paul Andrew Joshua Kevin Brian Ryan Jacob Tyler Ethan Noah Liam "
    "Mason Logan Lucas Jackson Aiden Owen Wyatt Jose Juan Luis Carlos Jesus Miguel Francisco Antonio "
    "Alejandro Jorge Pedro Ricardo Manuel Javier Fernando Diego Eduardo Raul Minh Tuan Arjun Omar "
    "Mohamed Abdi Dawit Yohannes Andriy Dmitri Wei"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin "
    "Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill "
    "Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards "
    "Collins Stewart Morris Murphy Cook Rogers Morgan Peterson Cooper Reed Bailey Bell Kelly Howard "
    "Ward Cox Richardson Wood Watson Brooks Bennett Gray Hughes Price Sanders Myers Long Ross Foster "
    "Garcia Martinez Rodriguez Hernandez Lopez Gonzalez Perez Sanchez Ramirez Torres Flores Rivera "
    "Gomez Diaz Cruz Reyes Morales Ortiz Gutierrez Chavez Ramos Ruiz Alvarez Mendoza Vasquez "
    "Castillo Jimenez Moreno Romero Herrera Medina Aguilar Vargas Trujillo Maestas Archuleta "
    "Valdez Montoya Gallegos Lucero Nguyen Tran Le Pham Kim Lee Chen Wang Patel Singh Shah Ali "
    "Ahmed Hassan Tesfaye Bekele Kovalenko Ivanov Novak Schmidt Mueller Olson Larson Hansen"
).split()

#: (county, weight, ((city, first zip, last zip), ...)) for the larger Colorado counties.
COUNTIES: tuple[tuple[str, float, tuple[tuple[str, int, int], ...]], ...] = (
    ("Denver", 12.5, (("Denver", 80202, 80239),)),
    ("El Paso", 12.5, (("Colorado Springs", 80903, 80951), ("Fountain", 80817, 80817), ("Monument", 80132, 80132))),
    ("Arapahoe", 11.2, (("Aurora", 80010, 80019), ("Centennial", 80111, 80122), ("Englewood", 80110, 80113), ("Littleton", 80120, 80129))),
    ("Jefferson", 10.0, (("Lakewood", 80214, 80228), ("Arvada", 80002, 80007), ("Golden", 80401, 80403), ("Wheat Ridge", 80033, 80034))),
    ("Adams", 9.0, (("Thornton", 80229, 80241), ("Westminster", 80030, 80031), ("Commerce City", 80022, 80022), ("Brighton", 80601, 80603))),
    ("Douglas", 6.5, (("Castle Rock", 80104, 80109), ("Parker", 80134, 80138), ("Highlands Ranch", 80126, 80130))),
    ("Larimer", 6.2, (("Fort Collins", 80521, 80528), ("Loveland", 80537, 80538), ("Estes Park", 80517, 80517))),
    ("Boulder", 5.6, (("Boulder", 80301, 80305), ("Longmont", 80501, 80504), ("Louisville", 80027, 80027), ("Lafayette", 80026, 80026))),
    ("Weld", 5.8, (("Greeley", 80631, 80634), ("Evans", 80620, 80620), ("Windsor", 80550, 80550), ("Fort Lupton", 80621, 80621))),
    ("Pueblo", 2.9, (("Pueblo", 81001, 81008),)),
    ("Mesa", 2.7, (("Grand Junction", 81501, 81507), ("Fruita", 81521, 81521), ("Palisade", 81526, 81526))),
    ("Broomfield", 1.3, (("Broomfield", 80020, 80023),)),
    ("Garfield", 1.1, (("Glenwood Springs", 81601, 81601), ("Rifle", 81650, 81650), ("Carbondale", 81623, 81623))),
    ("La Plata", 1.0, (("Durango", 81301, 81303),)),
    ("Eagle", 1.0, (("Eagle", 81631, 81631), ("Vail", 81657, 81657), ("Avon", 81620, 81620))),
    ("Fremont", 0.8, (("Canon City", 81212, 81215), ("Florence", 81226, 81226))),
    ("Montrose", 0.8, (("Montrose", 81401, 81403),)),
    ("Morgan", 0.5, (("Fort Morgan", 80701, 80701), ("Brush", 80723, 80723))),
    ("Summit", 0.5, (("Breckenridge", 80424, 80424), ("Frisco", 80443, 80443), ("Silverthorne", 80498, 80498))),
    ("Logan", 0.4, (("Sterling", 80751, 80751),)),
    ("Otero", 0.3, (("La Junta", 81050, 81050), ("Rocky Ford", 81067, 81067))),
    ("Alamosa", 0.3, (("Alamosa", 81101, 81102),)),
    ("Prowers", 0.2, (("Lamar", 81052, 81052),)),
    ("Routt", 0.4, (("Steamboat Springs", 80477, 80488),)),
)

AREA_CODES = ("303", "720", "719", "970", "303", "720")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "comcast.net", "aol.com")
STREETS = (
    "Colfax Ave", "Broadway", "Federal Blvd", "Alameda Ave", "Evans Ave", "Main St", "Elm St", "Oak St",
    "Pine St", "Maple Ave", "Cedar Ln", "Aspen Way", "Columbine Ct", "Pikes Peak Ave", "Academy Blvd",
    "Wadsworth Blvd", "Sheridan Blvd", "Kipling St", "College Ave", "Mountain View Dr", "Lincoln St",
    "Sherman St", "Grant St", "Logan St", "Pearl St", "Spruce St", "Walnut St", "Juniper Dr",
    "Blue Spruce Rd", "Larkspur Ln", "Mesa Dr", "Canyon Blvd", "Ridge Rd", "Prairie Ave",
)

#: make -> models.
VEHICLES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Ford", 14, ("F-150", "Escape", "Explorer", "Focus", "Fusion", "Ranger", "Bronco")),
    ("Toyota", 14, ("Camry", "Corolla", "RAV4", "Tacoma", "Highlander", "4Runner", "Tundra")),
    ("Chevrolet", 11, ("Silverado", "Equinox", "Malibu", "Tahoe", "Colorado", "Traverse")),
    ("Subaru", 10, ("Outback", "Forester", "Crosstrek", "Impreza", "Ascent")),
    ("Honda", 9, ("Civic", "Accord", "CR-V", "Pilot", "Odyssey")),
    ("Jeep", 7, ("Wrangler", "Grand Cherokee", "Cherokee", "Gladiator")),
    ("Ram", 6, ("1500", "2500")),
    ("Nissan", 6, ("Altima", "Rogue", "Sentra", "Frontier")),
    ("Hyundai", 5, ("Elantra", "Tucson", "Santa Fe")),
    ("Kia", 4, ("Soul", "Sportage", "Telluride")),
    ("Tesla", 4, ("Model 3", "Model Y")),
    ("Volkswagen", 3, ("Jetta", "Tiguan", "Golf")),
    ("GMC", 3, ("Sierra", "Yukon", "Acadia")),
    ("Dodge", 2, ("Charger", "Durango", "Grand Caravan")),
    ("Mazda", 2, ("CX-5", "Mazda3")),
)
VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
PLATE_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

LICENSE_CLASSES = (("R", 88.0), ("M", 5.0), ("A", 2.5), ("B", 1.5), ("C", 1.0), ("P", 2.0))
#: Colorado Revised Statutes traffic offense codes with a typical fine in cents.
OFFENSES = (
    ("42-4-1101", 22.0, 11200), ("42-4-1101(8)", 6.0, 24200), ("42-4-603", 8.0, 11500),
    ("42-4-604", 6.0, 11500), ("42-4-1401", 3.0, 31000), ("42-4-1402", 5.0, 15000),
    ("42-4-1301", 4.0, 60000), ("42-4-1409", 9.0, 50000), ("42-2-101", 5.0, 3500),
    ("42-2-138", 3.0, 50000), ("42-4-239", 7.0, 30000), ("42-4-1412", 2.0, 8500),
    ("42-4-237", 6.0, 7100), ("42-3-121", 5.0, 3500), ("42-4-1008", 4.0, 10000),
    ("42-4-807", 3.0, 11500), ("42-4-1704", 2.0, 7000),
)
DISPOSITIONS = (("PAID", 55.0), ("DISMISSED", 12.0), ("PENDING", 10.0), ("DEFERRED", 6.0),
                ("DEFAULT_JUDGMENT", 8.0), ("CONVICTED", 9.0))
