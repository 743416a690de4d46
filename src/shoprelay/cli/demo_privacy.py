"""The demo's privacy chapter: a customer subscribes, then asks to be forgotten."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from rich.table import Table

from shoprelay.cli.common import console
from shoprelay.sources.shopify.privacy import customer_request
from shoprelay.store import privacy_export

if TYPE_CHECKING:
    from shoprelay.cli.demo import Demo

GRACE: dict[str, Any] = {
    "id": 4242,
    "email": "grace.hopper@example.com",
    "phone": "+16135550123",  # fictional (555-01xx)
    "first_name": "Grace",
    "last_name": "Hopper",
    "updated_at": "2026-12-04T09:00:00Z",
}
AT = "2026-12-04T09:05:00Z"


def _consent_webhooks() -> list[tuple[str, dict[str, Any]]]:
    email = {"state": "subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": AT}
    sms = email | {"consent_collected_from": "SHOPIFY"}
    return [
        ("customers/create", GRACE),
        (
            "customers_email_marketing_consent/update",
            {
                "customer_id": GRACE["id"],
                "email_address": GRACE["email"],
                "email_marketing_consent": email,
            },
        ),
        (
            "customers_marketing_consent/update",
            {"id": GRACE["id"], "phone": GRACE["phone"], "sms_marketing_consent": sms},
        ),
    ]


async def subscribe_then_forget(demo: Demo, wait_drained: Any) -> None:
    """Grace subscribes to email and SMS; then her redaction request arrives."""
    console.rule("[bold]6. A customer subscribes, then asks to be forgotten")
    for topic, payload in _consent_webhooks():
        await demo.sender.send(topic, payload)
        console.print(f"{topic:42} → Grace Hopper")
    await wait_drained(demo)
    console.print(_klaviyo_view(demo))
    console.print(f"shoprelay holds {await _rows_naming_grace(demo)} records naming her.")

    redact = {
        "shop_id": 954889,
        "shop_domain": demo.sender.shop,
        "customer": {key: GRACE[key] for key in ("id", "email", "phone")},
        "orders_to_redact": [],
    }
    status = await demo.sender.send("customers/redact", redact)
    console.print(f"customers/redact → {status}: erased here before the 200, deletion jobs queued")
    await _deletions_done(demo, 2)
    await wait_drained(demo)
    console.print(_klaviyo_view(demo))
    console.print(f"shoprelay holds {await _rows_naming_grace(demo)} records naming her.")
    for entry in await privacy_export.audit(demo.service.store):
        console.print(
            f"audit: {entry['action']} at {time.strftime('%H:%M:%S', time.gmtime(entry['at']))}"
            f" - {entry['items_dropped']} unsent dropped, {entry['rows_erased']} rows erased, "
            f"{entry['deletion_jobs']} Klaviyo deletion jobs (no identifiers kept)"
        )
    console.print(
        "Outside Shopify: [bold]shoprelay privacy forget --email E[/bold]; "
        "what we hold: [bold]shoprelay privacy export --customer ID[/bold]."
    )


def _klaviyo_view(demo: Demo) -> Table:
    table = Table("Klaviyo profile", "email marketing", "SMS marketing", "events")
    sim = demo.sim
    for profile in sim.all_profiles():
        if profile.attributes.get("email") != GRACE["email"]:
            continue
        consents = [sim.subscriptions.consent(profile.id, channel) for channel in ("email", "sms")]
        events = sum(1 for event in sim.events if event.profile_id == profile.id)
        table.add_row(
            str(GRACE["email"]), *(c.consent if c else "-" for c in consents), str(events)
        )
    if not table.rows:
        table.add_row(
            f"(deleted: {len(sim.deletions)} deletion jobs, email and phone)", "-", "-", "-"
        )
    return table


async def _rows_naming_grace(demo: Demo) -> int:
    request = customer_request("export", demo.sender.shop, GRACE["id"])
    found = await privacy_export.export(demo.service.store, request)
    return sum(len(found[key]) for key in ("outbox", "dead_letters", "resource_state"))


async def _deletions_done(demo: Demo, count: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(demo.sim.deletions) >= count and all(d.done for d in demo.sim.deletions):
            return
        await asyncio.sleep(0.25)
