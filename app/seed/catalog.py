"""The demo shop's fixed content: a coffee-and-kitchen catalog and the names of its people.

Fixed lists, not generated text, so the demo reads like a real shop and every run (and
every size) has the same catalog: a product is recognised by its sku on the next run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    name: str
    description: str
    price_cents: int
    # Relative demand: how often the item lands in a basket compared to the others.
    popularity: int


CATALOG: tuple[CatalogItem, ...] = (
    CatalogItem(
        "DEMO-MUG-STONE",
        "Stoneware mug",
        "A 350 ml stoneware mug, glazed in speckled oat.",
        1400,
        90,
    ),
    CatalogItem(
        "DEMO-MUG-ENAMEL",
        "Enamel camp mug",
        "Chip-resistant enamel mug for the trail, 300 ml.",
        1200,
        45,
    ),
    CatalogItem(
        "DEMO-MUG-DOUBLE",
        "Double-wall glass mug",
        "Borosilicate glass, keeps a latte hot and your hands cool.",
        1800,
        50,
    ),
    CatalogItem(
        "DEMO-CUP-ESPRESSO",
        "Espresso cups, set of 2",
        "Thick-walled porcelain cups with saucers, 80 ml.",
        2200,
        35,
    ),
    CatalogItem(
        "DEMO-TEAPOT-CAST",
        "Cast-iron teapot",
        "A 900 ml tetsubin with a stainless infuser.",
        5400,
        18,
    ),
    CatalogItem(
        "DEMO-TEAPOT-GLASS",
        "Glass teapot",
        "Heat-proof glass teapot, 1 l, with a removable filter.",
        3200,
        25,
    ),
    CatalogItem(
        "DEMO-KETTLE-GOOSE",
        "Gooseneck kettle",
        "Stovetop pour-over kettle with a thermometer, 1 l.",
        4900,
        30,
    ),
    CatalogItem(
        "DEMO-KETTLE-ELEC",
        "Electric kettle",
        "Variable-temperature kettle, 1.7 l, keep-warm mode.",
        7900,
        22,
    ),
    CatalogItem(
        "DEMO-GRINDER-HAND",
        "Hand coffee grinder",
        "Conical steel burrs, 38 grind settings.",
        6500,
        28,
    ),
    CatalogItem(
        "DEMO-GRINDER-ELEC",
        "Burr coffee grinder",
        "Flat-burr electric grinder for espresso to cold brew.",
        14900,
        12,
    ),
    CatalogItem(
        "DEMO-PRESS-FRENCH",
        "French press",
        "Eight-cup French press with a double mesh filter.",
        3400,
        40,
    ),
    CatalogItem(
        "DEMO-DRIPPER-V60",
        "Ceramic pour-over dripper",
        "Cone dripper with spiral ribs, size 02.",
        2400,
        38,
    ),
    CatalogItem(
        "DEMO-FILTER-100",
        "Paper filters, 100 pack",
        "Unbleached cone filters for size 02 drippers.",
        650,
        70,
    ),
    CatalogItem(
        "DEMO-AEROPRESS",
        "Travel coffee press",
        "A light plastic press for one strong cup anywhere.",
        3900,
        26,
    ),
    CatalogItem("DEMO-MOKA-6", "Moka pot, 6 cups", "Aluminium stovetop espresso maker.", 3600, 24),
    CatalogItem(
        "DEMO-SCALE",
        "Coffee scale with timer",
        "0.1 g resolution, auto-tare, USB-C charging.",
        2900,
        20,
    ),
    CatalogItem(
        "DEMO-BEANS-HOUSE",
        "House blend beans, 1 kg",
        "Chocolate and hazelnut, medium roast, whole bean.",
        2600,
        85,
    ),
    CatalogItem(
        "DEMO-BEANS-ETHIOPIA",
        "Ethiopia Yirgacheffe, 250 g",
        "Washed, light roast: jasmine, bergamot, lemon.",
        1500,
        60,
    ),
    CatalogItem(
        "DEMO-BEANS-COLOMBIA",
        "Colombia Huila, 250 g",
        "Red apple and caramel, medium roast.",
        1350,
        55,
    ),
    CatalogItem(
        "DEMO-BEANS-DECAF",
        "Swiss water decaf, 250 g",
        "Decaffeinated without solvents, cocoa and malt.",
        1400,
        30,
    ),
    CatalogItem(
        "DEMO-TEA-SENCHA",
        "Sencha green tea, 100 g",
        "Steamed Japanese green tea, first flush.",
        1100,
        42,
    ),
    CatalogItem(
        "DEMO-TEA-EARLGREY",
        "Earl Grey, 100 g",
        "Black tea with cold-pressed bergamot oil.",
        900,
        48,
    ),
    CatalogItem(
        "DEMO-TEA-CHAMOMILE",
        "Chamomile flowers, 50 g",
        "Whole Egyptian chamomile blossoms.",
        800,
        33,
    ),
    CatalogItem(
        "DEMO-CANISTER",
        "Airtight coffee canister",
        "Stainless canister with a one-way CO2 valve, 500 g.",
        2700,
        27,
    ),
    CatalogItem(
        "DEMO-MILK-FROTHER",
        "Milk frother",
        "Handheld frother with a stand, two AA batteries.",
        1600,
        36,
    ),
    CatalogItem(
        "DEMO-PITCHER-350",
        "Milk pitcher, 350 ml",
        "Stainless steel pitcher for latte art.",
        1700,
        22,
    ),
    CatalogItem(
        "DEMO-TAMPER", "Espresso tamper, 58 mm", "Flat stainless base, walnut handle.", 3100, 10
    ),
    CatalogItem(
        "DEMO-TRAY",
        "Serving tray, oak",
        "Solid oak tray with cut-out handles, 45 x 30 cm.",
        4200,
        9,
    ),
    CatalogItem("DEMO-COASTERS", "Cork coasters, set of 6", "Natural cork, 10 cm across.", 900, 30),
    CatalogItem(
        "DEMO-TEA-TOWEL", "Linen tea towels, set of 2", "Stonewashed linen, 50 x 70 cm.", 1900, 24
    ),
    CatalogItem(
        "DEMO-COLDBREW",
        "Cold brew bottle",
        "1 l glass bottle with a fine mesh filter core.",
        2800,
        21,
    ),
    CatalogItem(
        "DEMO-THERMOS",
        "Vacuum flask, 500 ml",
        "Keeps drinks hot for 12 hours, leak-proof lid.",
        3300,
        29,
    ),
    CatalogItem(
        "DEMO-DESCALER",
        "Descaler, 2 doses",
        "Citric-acid descaler for kettles and machines.",
        700,
        26,
    ),
    CatalogItem(
        "DEMO-BRUSH",
        "Grinder cleaning brush",
        "Soft boar-bristle brush with a beech handle.",
        600,
        14,
    ),
    CatalogItem(
        "DEMO-BOOK-BREW",
        "The Home Barista (book)",
        "A practical guide to brewing better coffee at home.",
        2500,
        8,
    ),
    CatalogItem(
        "DEMO-GIFT-CARD", "Gift card, 50 EUR", "Delivered by email, valid for two years.", 5000, 15
    ),
)

FIRST_NAMES: tuple[str, ...] = (
    "Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Isla", "Lucas", "Nora", "Omar",
    "Chloe", "Mateo", "Aisha", "Felix", "Ines", "Jonas", "Leila", "Hugo", "Priya", "Theo",
    "Sofia", "Kenji", "Elena", "Samir", "Freya", "Diego", "Hana", "Oscar", "Mila", "Arjun",
    "Clara", "Yusuf", "Lena", "Marco", "Amara", "Erik", "Nina", "Tomas", "Ruth", "Idris",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Brooks", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad",
    "Fischer", "Rossi", "Kowalski", "Nguyen", "Murphy", "Costa", "Jensen", "Patel",
    "Schmidt", "Garcia", "Kim", "Dubois", "Andersen", "Mensah", "Ortiz", "Bauer",
    "Larsen", "Suzuki", "Romero", "Weber", "Ibrahim", "Kaur", "Hughes", "Petrov",
)  # fmt: skip
