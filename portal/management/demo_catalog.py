"""The demo stores: what they sell, at what prices, and how they word things.

Prices are integers in minor units, tax included (US: sales tax is its own line,
as Klarna's US orders have it).
"""

from dataclasses import dataclass

from portal.models import PaymentProduct


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: int


@dataclass(frozen=True)
class DemoStore:
    slug: str
    name: str
    country: str
    shipping_fees_refundable: bool
    order_prefix: str
    tax_rate: int  # basis points, included in prices; 0 where tax is a line
    sales_tax_bp: int  # a separate sales_tax line, in basis points of the subtotal
    products: tuple[Product, ...]
    shipping: tuple[Product, ...]
    free_shipping_from: int
    discount: Product  # price = percent off the items
    return_fee: int
    products_weights: dict[str, int]
    refund_texts: tuple[str, ...]
    owner: str  # the owner's username; the DE store has a user per role


STORES = (
    DemoStore(
        slug="nordwind-mode",
        name="Nordwind Mode",
        country="DE",
        shipping_fees_refundable=True,
        order_prefix="NW-",
        tax_rate=1900,
        sales_tax_bp=0,
        products=(
            Product("NW-HEMD-LEI", "Leinenhemd, naturweiß", 5995),
            Product("NW-PULLI-MER", "Merino-Pullover, marine", 8900),
            Product("NW-CHINO-SL", "Chino Slim Fit, sand", 6995),
            Product("NW-SNKR-LDR", "Ledersneaker, weiß", 11900),
            Product("NW-MUETZE", "Strickmütze aus Wolle", 2495),
            Product("NW-GUERTEL", "Ledergürtel, cognac", 3990),
            Product("NW-MANTEL-W", "Wollmantel, anthrazit", 24900),
            Product("NW-TSHIRT-BIO", "T-Shirt aus Bio-Baumwolle", 2495),
            Product("NW-JEANS-STR", "Jeans Straight Fit, dunkelblau", 7995),
            Product("NW-SCHAL-KAS", "Kaschmirschal, hellgrau", 12900),
        ),
        shipping=(
            Product("VERSAND-STD", "Standardversand", 495),
            Product("VERSAND-EXP", "Expressversand", 995),
        ),
        free_shipping_from=10000,
        discount=Product("GUTSCHEIN-10", "Gutschein WILLKOMMEN10", 10),
        return_fee=495,
        products_weights={
            PaymentProduct.PAY_LATER: 34,
            PaymentProduct.PAY_IN_3: 18,
            PaymentProduct.PAY_IN_4: 16,
            PaymentProduct.PAY_NOW: 14,
            PaymentProduct.FINANCING: 8,
            PaymentProduct.ONE_TIME_CARD: 10,
        },
        refund_texts=(
            "Rücksendung erhalten",
            "Artikel beschädigt angekommen",
            "Kulanzerstattung",
            "Falsche Größe zurückgesendet",
            "Komplette Bestellung retourniert",
        ),
        owner="merchant",
    ),
    DemoStore(
        slug="trailhead-outfitters",
        name="Trailhead Outfitters",
        country="US",
        shipping_fees_refundable=True,
        order_prefix="#",
        tax_rate=0,
        sales_tax_bp=888,
        products=(
            Product("TH-SOCK-MER", "Merino Wool Hiking Socks", 1800),
            Product("TH-JKT-RAIN", "Ultralight Rain Jacket", 14900),
            Product("TH-SHOE-TRL", "Trail Running Shoes", 12995),
            Product("TH-BTL-32", "Insulated Water Bottle, 32 oz", 3499),
            Product("TH-LAMP-HD", "Rechargeable Headlamp", 3950),
            Product("TH-BAG-DOWN", "Down Sleeping Bag, 20°F", 21900),
            Product("TH-TENT-2P", "Two-Person Backpacking Tent", 32900),
            Product("TH-PACK-45", "45 L Trekking Backpack", 18900),
            Product("TH-FLC-ZIP", "Recycled Fleece Quarter-Zip", 6950),
            Product("TH-CAP-TRK", "Trucker Cap", 2800),
        ),
        shipping=(
            Product("SHIP-STD", "Standard shipping", 695),
            Product("SHIP-EXP", "Express shipping", 1995),
        ),
        free_shipping_from=9900,
        discount=Product("PROMO-TRAIL15", "Promo code TRAIL15", 15),
        return_fee=0,
        products_weights={
            PaymentProduct.PAY_IN_4: 48,
            PaymentProduct.ONE_TIME_CARD: 14,
            PaymentProduct.PAY_NOW: 12,
            PaymentProduct.PAY_LATER: 10,
            PaymentProduct.FINANCING: 10,
            PaymentProduct.PAY_IN_3: 6,
        },
        refund_texts=(
            "Return received",
            "Item arrived damaged",
            "Goodwill refund",
            "Wrong size returned",
            "Order returned in full",
        ),
        owner="merchant-us",
    ),
    DemoStore(
        slug="skog-och-sten",
        name="Skog & Sten Inredning",
        country="SE",
        # Shipping is a service already rendered: this store never refunds it.
        shipping_fees_refundable=False,
        order_prefix="SS-",
        tax_rate=2500,
        sales_tax_bp=0,
        products=(
            Product("SS-LINNEDUK", "Linneduk 145x250 cm", 49900),
            Product("SS-VAS-KER", "Keramikvas, handgjord", 34900),
            Product("SS-PLAED-ULL", "Ullpläd, grå", 89900),
            Product("SS-KOPP-STG", "Kaffekopp i stengods", 14900),
            Product("SS-LJUSST-MS", "Ljusstake i mässing", 27900),
            Product("SS-FAARSKINN", "Fårskinn, naturvitt", 119500),
            Product("SS-LAMPA-BRD", "Bordslampa, opal", 149500),
            Product("SS-KUDDE-LIN", "Kuddfodral i linne", 29900),
            Product("SS-SKAERBRDA", "Skärbräda i ek", 39900),
            Product("SS-DOFTLJUS", "Doftljus, tall", 19900),
        ),
        shipping=(
            Product("FRAKT-OMBUD", "Frakt till ombud", 4900),
            Product("FRAKT-HEM", "Hemleverans", 9900),
        ),
        free_shipping_from=150000,
        discount=Product("RABATT-VAR", "Vårrabatt 15 %", 15),
        return_fee=4900,
        products_weights={
            PaymentProduct.PAY_NOW: 26,
            PaymentProduct.PAY_LATER: 26,
            PaymentProduct.PAY_IN_3: 20,
            PaymentProduct.FINANCING: 12,
            PaymentProduct.PAY_IN_4: 10,
            PaymentProduct.ONE_TIME_CARD: 6,
        },
        refund_texts=(
            "Retur mottagen",
            "Varan kom fram skadad",
            "Goodwill-återbetalning",
            "Fel storlek returnerad",
            "Hela ordern returnerad",
        ),
        owner="merchant-se",
    ),
)

#: The demo store's other users, one per role (password = username).
DE_ROLE_USERS = {
    "merchant-admin": "admin",
    "merchant-refunds": "refunds",
    "merchant-viewer": "viewer",
}

#: A user of the German store who reads the portal in German: no language of
#: their own, so the store's locale decides (issue 15). The other demo users of
#: the German and US stores read English; the Swedish store's owner, Swedish.
GERMAN_USER = "haendler"

CARD_BRANDS = ("Visa", "Mastercard", "American Express")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
