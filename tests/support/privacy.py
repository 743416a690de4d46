"""People, payloads and a whole-database text dump, for the privacy tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from tests.support.harness import WEBHOOK_SECRET, KlaviyoSimServer, RunningService, post_webhook

from shoprelay.sim import shopify as sender
from shoprelay.store.database import Store
from shoprelay.store.schema import metadata

SHOP = "demo-shop.myshopify.com"
OTHER_SHOP = "other-shop.myshopify.com"
SAMPLES = Path(__file__).parents[1] / "fixtures" / "shopify"
# Someone whose every trace we look for afterwards.
ADA = {
    "id": 5550001,
    "email": "Ada.Quillfeather@example.org",
    "phone": "+442071838750",
    "first_name": "Adalind",
    "last_name": "Quillfeather",
}
CAROL = {
    "id": 5550003,
    "email": "carol.elsewhere@example.org",
    "phone": None,
    "first_name": "Carolyn",
    "last_name": "Elsewhere",
}
BOB = {
    "id": 5550002,
    "email": "bob.keeper@example.org",
    "phone": None,
    "first_name": "Bob",
    "last_name": "Keeper",
}


def sample(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return payload


def customer(person: dict[str, Any]) -> dict[str, Any]:
    payload = sample("customers-create.json")
    payload.update(person)
    return payload


def order(person: dict[str, Any], order_id: int) -> dict[str, Any]:
    payload = sample("orders-create.json")
    payload.update(id=order_id, email=person["email"], phone=person["phone"], cancelled_at=None)
    payload["customer"] = {**payload["customer"], **person}
    payload["billing_address"] = {
        **payload["billing_address"],
        "first_name": person["first_name"],
        "last_name": person["last_name"],
        "name": f"{person['first_name']} {person['last_name']}",
    }
    payload["shipping_address"] = payload["billing_address"]
    return payload


def redact(person: dict[str, Any], orders: list[int]) -> dict[str, Any]:
    payload = sample("customers-redact.json")
    payload["customer"] = {key: person[key] for key in ("id", "email", "phone")}
    payload["orders_to_redact"] = orders
    return payload


async def send(
    client: httpx.AsyncClient,
    url: str,
    topic: str,
    payload: dict[str, Any],
    webhook_id: str,
    *,
    shop: str = SHOP,
) -> str:
    body = sender.encode(payload)
    headers = sender.headers(topic, body, WEBHOOK_SECRET.encode(), shop, webhook_id)
    response = await post_webhook(client, url, body, headers)
    assert response.status_code == 200, response.text
    outcome: str = response.json()["outcome"]
    return outcome


async def every_text(store: Store) -> str:
    """Every text and binary value of every table, lower-cased, one per line."""
    found = []
    async with store.read() as conn:
        for table in metadata.sorted_tables:
            for row in await conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        found.append(bytes(value).decode("utf-8", "replace"))
                    elif isinstance(value, str):
                        found.append(value)
    return "\n".join(found).lower()


def traces(person: dict[str, Any]) -> list[str]:
    values = [person["email"], person["phone"], person["first_name"], person["last_name"]]
    return [value.lower() for value in values if value]


def sim_profile(sim: KlaviyoSimServer, email: str) -> Any:
    return next(
        (
            profile
            for profile in sim.sim.all_profiles()
            if (profile.attributes.get("email") or "").lower() == email.lower()
        ),
        None,
    )


async def ingest_both(client: httpx.AsyncClient, relay: RunningService) -> None:
    """Ada and Bob each as a customer and an order; one of Ada's webhooks unprocessable."""
    for person, order_id in ((ADA, 9001), (BOB, 9002)):
        n = person["id"]
        await send(client, relay.url, "customers/create", customer(person), f"c-{n}")
        await send(client, relay.url, "orders/create", order(person, order_id), f"o-{n}")
    broken = {**order(ADA, 9003), "id": None}
    assert await send(client, relay.url, "orders/create", broken, "o-broken") == "unprocessable"
