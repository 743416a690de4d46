"""A fake Shopify store's customers, carts and checkouts as webhook payloads, from a seeded RNG.

Shapes follow Shopify's 2026-07 samples; also the value makers the order payloads share.
"""

from __future__ import annotations

import hashlib
import random
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

SHOP_ZONE = timezone(timedelta(hours=-5))  # Shopify stamps payload times in the shop's zone.
START = datetime(2026, 7, 1, 9, 0, tzinfo=SHOP_ZONE)
CENT = Decimal("0.01")
TAX_RATE = Decimal("0.08")

FIRST_NAMES = ("Ada", "Bob", "Chloé", "Dev", "Eun-ji", "Femi", "Grace", "Hiro", "Inès", "Jon")
LAST_NAMES = ("Lovelace", "Biller", "Dubois", "Patel", "Kim", "Adeyemi", "Hopper", "Sato", "Ng")
# (city, province, province code, zip, area code)
PLACES = (
    ("New York", "New York", "NY", "10001", "212"),
    ("San Francisco", "California", "CA", "94103", "415"),
    ("Louisville", "Kentucky", "KY", "40202", "502"),
    ("Chicago", "Illinois", "IL", "60601", "312"),
)
STREETS = ("Main St", "Chestnut Street", "O'Connor Street", "Elm St.", "Market St")


@dataclass(frozen=True)
class Product:
    title: str
    variant_title: str | None
    sku: str
    price: str
    product_id: int
    variant_id: int
    grams: int
    vendor: str


CATALOG = (
    Product("Aviator sunglasses", None, "SKU2006-001", "89.99", 7880321196, 4001, 100, "Sol"),
    Product(
        "Mid-century lounger", "Walnut", "SKU2006-020", "159.99", 7880321197, 4002, 9000, "Eames"
    ),
    Product("Coffee table", "Oak", "SKU2006-035", "119.99", 7880321198, 4003, 5000, "Eames"),
    Product(
        "IPod Nano - 8GB", "Pink", "IPOD2008PINK", "199.00", 632910392, 808950810, 567, "Apple"
    ),
    Product("Wool socks", "Grey / M", "SOCK-GRY-M", "19.99", 7880321199, 4005, 80, "Knit Co"),
    Product("Green Snowboard", None, "", "100.00", 9797441945900, 50451770802476, 0, "Boards"),
)

Cart = list[tuple[Product, int]]


# --- small value makers ----------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    """A payload timestamp as Shopify writes it: to the second, in the shop's UTC offset."""
    return moment.astimezone(SHOP_ZONE).isoformat(timespec="seconds")


# The last id each generator handed out, so that its ids grow as Shopify's do.
_last_ids: weakref.WeakKeyDictionary[random.Random, int] = weakref.WeakKeyDictionary()


def new_id(rng: random.Random) -> int:
    """A 13-digit resource id, the size real Shopify ids have today. Shopify's ids grow with
    time, and so do those of one generator: each is larger than the one before."""
    last = _last_ids.get(rng)
    drawn = rng.randrange(10**12, 2 * 10**12) if last is None else last + rng.randrange(1, 10**5)
    _last_ids[rng] = drawn
    return drawn


def money(amount: Decimal) -> str:
    """Shopify's money string: two decimals."""
    return str(amount.quantize(CENT, ROUND_HALF_UP))


def money_set(amount: Decimal, currency: str) -> dict[str, Any]:
    """A `*_set` twin; the shop's and the buyer's currency are the same here."""
    shop_money = {"amount": money(amount), "currency_code": currency}
    return {"shop_money": shop_money, "presentment_money": dict(shop_money)}


def gid(kind: str, resource_id: int) -> str:
    """The admin_graphql_api_id of a resource."""
    return f"gid://shopify/{kind}/{resource_id}"


def _address(first: str, last: str, place: tuple[str, ...], street: str) -> dict[str, Any]:
    city, province, province_code, zip_code, area = place
    return {
        "first_name": first,
        "address1": street,
        "phone": f"{area}-555-0100",  # addresses keep what people typed, not E.164
        "city": city,
        "zip": zip_code,
        "province": province,
        "country": "United States",
        "last_name": last,
        "address2": None,
        "company": None,
        "latitude": None,
        "longitude": None,
        "name": f"{first} {last}",
        "country_code": "US",
        "province_code": province_code,
    }


# --- customers and carts ---------------------------------------------------------------------


def fake_customer(rng: random.Random, *, at: datetime = START) -> dict[str, Any]:
    """A customers/create payload: mostly email, sometimes a phone, now and then phone only."""
    customer_id = new_id(rng)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    place = rng.choice(PLACES)
    phone = f"+1{place[4]}5550{rng.randint(100, 199)}" if rng.random() < 0.5 else None
    email = f"{first.lower()}.{last.lower()}.{customer_id % 10_000}@example.com"
    address = _address(first, last, place, f"{rng.randint(1, 999)} {rng.choice(STREETS)}")
    default = {"id": new_id(rng), "customer_id": customer_id, **address, "default": True}
    default["country_name"] = address["country"]
    return {
        "id": customer_id,
        "created_at": stamp(at),
        "updated_at": stamp(at),
        "first_name": first,
        "last_name": last,
        "state": rng.choice(("enabled", "disabled")),
        "note": None,
        "verified_email": rng.random() < 0.8,
        "multipass_identifier": None,
        "tax_exempt": False,
        "email": None if phone and rng.random() < 0.2 else email,
        "phone": phone,
        "currency": "USD",
        "addresses": [default],
        "tax_exemptions": [],
        "admin_graphql_api_id": gid("Customer", customer_id),
        "default_address": default,
    }


def fake_cart(rng: random.Random) -> Cart:
    """One to four distinct products, each with a quantity of one to three."""
    products = rng.sample(CATALOG, rng.randint(1, 4))
    return [(product, rng.choice((1, 1, 1, 2, 3))) for product in products]


def fake_checkout(
    rng: random.Random,
    customer: dict[str, Any],
    *,
    at: datetime = START,
    cart: Cart | None = None,
) -> dict[str, Any]:
    """A checkouts/create payload (no `id` since 2026-04: `token`); one in five has no email yet."""
    token = f"{rng.getrandbits(128):032x}"
    lines = [_checkout_line(product, quantity) for product, quantity in cart or fake_cart(rng)]
    subtotal = sum((Decimal(line["line_price"]) for line in lines), Decimal(0))
    tax = (subtotal * TAX_RATE).quantize(CENT, ROUND_HALF_UP)
    address = customer["default_address"]
    return {
        "token": token,
        "cart_token": f"{rng.getrandbits(128):032x}",
        "email": None if rng.random() < 0.2 else customer.get("email"),
        "buyer_accepts_marketing": False,
        "created_at": stamp(at),
        "updated_at": stamp(at),
        "note": None,
        "currency": "USD",
        "completed_at": None,
        "phone": None,
        "customer_locale": "en",
        "line_items": lines,
        "name": f"#{rng.randrange(10**17, 10**18)}",
        "abandoned_checkout_url": f"https://checkout.local/recover/{token}?key={token[:12]}",
        "discount_codes": [],
        "tax_lines": [{"price": money(tax), "rate": float(TAX_RATE), "title": "Tax"}],
        "source_name": "web",
        "presentment_currency": "USD",
        "total_discounts": "0.00",
        "total_line_items_price": money(subtotal),
        "total_price": money(subtotal + tax),
        "total_tax": money(tax),
        "subtotal_price": money(subtotal),
        "billing_address": address,
        "shipping_address": address,
        "customer": customer,
    }


def _checkout_line(product: Product, quantity: int) -> dict[str, Any]:
    return {
        "key": hashlib.md5(product.sku.encode(), usedforsecurity=False).hexdigest(),
        "product_id": product.product_id,
        "variant_id": product.variant_id,
        "quantity": quantity,
        "sku": product.sku,
        "title": product.title,
        "variant_title": product.variant_title,
        "vendor": product.vendor,
        "grams": product.grams,
        "price": product.price,
        "variant_price": product.price,
        "line_price": money(Decimal(product.price) * quantity),
        "requires_shipping": True,
        "taxable": True,
    }
