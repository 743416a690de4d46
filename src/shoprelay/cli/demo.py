"""`shoprelay demo`: the whole pipeline against the simulators, with no accounts."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from shoprelay import logs
from shoprelay.cli.common import console, run
from shoprelay.cli.demo_privacy import subscribe_then_forget
from shoprelay.config import load_settings
from shoprelay.service import Service
from shoprelay.sim import shopify as shopify_sim
from shoprelay.sim.klaviyo import create_app as create_klaviyo_sim
from shoprelay.sim.klaviyo_config import DEMO_API_KEY, KlaviyoSimConfig
from shoprelay.sim.klaviyo_faults import Faults
from shoprelay.sim.klaviyo_state import KlaviyoSim
from shoprelay.sim.shipstation import create_app as create_shipstation_sim
from shoprelay.sim.shipstation_state import ShipStationSim, ShipStationSimConfig
from shoprelay.store import deadletters, outbox
from shoprelay.store.outbox import NewItem
from shoprelay.web.admin import create_admin_app
from shoprelay.web.app import create_app
from shoprelay.web.serving import serving

SHOP = "demo-shop.myshopify.com"
SECRET = "demo-webhook-secret"
SHIPSTATION_POLL_SECONDS = 3
PAUSE_WAIT_SECONDS = 15
STORMY = Faults(
    rate_429=0.03,
    rate_503=0.05,
    rate_timeout=0.02,
    timeout_seconds=3.0,
    rate_error_after_accept=0.03,
)


@dataclass
class Demo:
    service: Service
    sim: KlaviyoSim
    shipstation: ShipStationSim
    relay_url: str
    sender: shopify_sim.WebhookSender
    sent: Counter[str]
    admin_url: str = ""


@asynccontextmanager
async def demo_world(workdir: Path) -> AsyncIterator[Demo]:
    """Klaviyo simulator, shoprelay and a Shopify sender, all on real local sockets."""
    sim_app = create_klaviyo_sim(KlaviyoSimConfig(seed=7))
    shipstation_app = create_shipstation_sim(ShipStationSimConfig(seed=7))
    shipstation = shipstation_app.state.sim
    now = datetime.now(UTC)
    shipstation.create_orders(24, start=now - timedelta(days=60), end=now - timedelta(hours=1))
    async with serving(sim_app) as klaviyo_url, serving(shipstation_app) as shipstation_url:
        settings = load_settings(
            {
                "SHIPSTATION_API_URL": shipstation_url,
                "SHIPSTATION_API_KEY": ShipStationSimConfig.api_key,
                "SHIPSTATION_API_SECRET": ShipStationSimConfig.api_secret,
                "SHIPSTATION_POLL_INTERVAL": str(SHIPSTATION_POLL_SECONDS),
                "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'demo.db'}",
                "KLAVIYO_API_URL": klaviyo_url,
                "KLAVIYO_PRIVATE_API_KEY": DEMO_API_KEY,
                "SHOPIFY_WEBHOOK_SECRET": SECRET,
                "KLAVIYO_TIMEOUT_SECONDS": "1.5",
                "DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
                "DELIVERY_BACKOFF_CAP_SECONDS": "2",
                "DELIVERY_AUTH_PROBE_SECONDS": "1",
                "LOG_LEVEL": "ERROR",
            }
        )
        service = await Service.open(settings)
        try:
            async with (
                serving(create_app(service)) as relay_url,
                serving(create_admin_app(service)) as admin_url,
            ):
                sender = shopify_sim.WebhookSender(relay_url, SECRET.encode(), SHOP)
                async with sender:
                    yield Demo(
                        service,
                        sim_app.state.sim,
                        shipstation,
                        relay_url,
                        sender,
                        Counter(),
                        admin_url,
                    )
        finally:
            await service.close()


def _snapshot_table(document: dict[str, Any], sim: KlaviyoSim, sent: Counter[str]) -> Table:
    stats = sim.stats()
    table = Table("webhooks acknowledged", "outbox", "Klaviyo simulator", box=None)
    outbox = document["outbox"]
    left = [f"{outcome}: {n}" for outcome, n in sorted(sent.items())]
    middle = [
        f"{key}: {outbox[key]}" for key in ("pending", "in_flight", "delivered", "dead_lettered")
    ]
    right = [
        f"events recorded: {len(sim.events)}",
        f"profiles: {len(sim.all_profiles())}",
        f"faults injected: {sum(stats.get('faults_injected', {}).values())} (all retried)",
        f"resends absorbed: {stats.get('duplicates_ignored', 0)}",
    ]
    for row in range(max(len(left), len(middle), len(right))):
        table.add_row(
            *(column[row] if row < len(column) else "" for column in (left, middle, right))
        )
    return table


async def wait_drained(demo: Demo, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        document = await demo.service.status()
        if document["outbox"]["pending"] == 0 and document["outbox"]["in_flight"] == 0:
            return
        await asyncio.sleep(0.25)


def _auth_paused(document: dict[str, Any]) -> bool:
    return any(pause["reason"] == "auth" for pause in document["delivery"]["pauses"])


async def wait_auth_paused(demo: Demo, within: float = PAUSE_WAIT_SECONDS) -> dict[str, Any]:
    """The status once delivery is paused for the key, or the last one read after `within` s."""
    deadline = time.monotonic() + within
    document = await demo.service.status()
    while not _auth_paused(document) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        document = await demo.service.status()
    return document


async def show(demo: Demo) -> None:
    console.print(_snapshot_table(await demo.service.status(), demo.sim, demo.sent))


async def stream_orders(demo: Demo, orders: int) -> None:
    console.rule("[bold]1. A stream of signed Shopify webhooks, while Klaviyo misbehaves")
    console.print("Klaviyo simulator injects 429s, 503s, timeouts and errors after accepting.")
    demo.sim.set_faults(STORMY)
    rng = random.Random(2026)
    for topic, payload in shopify_sim.generate_stream(rng, orders):
        status = await demo.sender.send(topic, payload)
        outcome = "200" if status == 200 else str(status)
        demo.sent[f"{topic} {outcome}"] += 1
    await show(demo)
    console.print("…draining the outbox through the faults")
    await wait_drained(demo)
    demo.sim.set_faults(Faults())
    await show(demo)


async def bad_input(demo: Demo) -> None:
    console.rule("[bold]2. Bad input gets a clear answer and loses nothing")
    order = {"id": 1, "email": "late@example.com", "line_items": []}
    forged = await demo.sender.send("orders/create", order, secret=b"not-the-secret")
    console.print(f"forged HMAC            → {forged} (refused, nothing stored)")
    body = b'{"id": 42, "email": '
    headers = shopify_sim.headers("orders/create", body, SECRET.encode(), SHOP)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{demo.relay_url}/webhooks/shopify", content=body, headers=headers
        )
    console.print(
        f"signed but broken JSON → {response.status_code} {response.json()['outcome']}"
        " (kept in the dead-letter queue)"
    )
    replay_id = "demo-redelivery"
    first = await demo.sender.send("customers/create", _customer(), webhook_id=replay_id)
    again = await demo.sender.send("customers/create", _customer(), webhook_id=replay_id)
    console.print(
        f"a redelivered webhook  → {first}, then {again} (acknowledged, nothing new queued)"
    )


def _customer() -> dict[str, Any]:
    return {
        "id": 777,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "not a phone",
        "updated_at": "2026-11-01T10:00:00-05:00",
    }


async def revoked_key(demo: Demo) -> None:
    console.rule("[bold]3. The Klaviyo key is revoked, then fixed")
    demo.sim.set_faults(Faults(revoked=True))
    rng = random.Random(11)
    for topic, payload in shopify_sim.generate_stream(rng, 5):
        await demo.sender.send(topic, payload)
    document = await wait_auth_paused(demo)
    if not _auth_paused(document):
        console.print(f"[bold yellow]delivery did not pause within {PAUSE_WAIT_SECONDS} s[/]")
    for pause in document["delivery"]["pauses"]:
        console.print(
            f"[bold red]PAUSED[/bold red] {pause['endpoint']}: {pause['reason']}"
            f" - {pause['detail']}"
        )
    console.print(f"pending, attempts not spent: {document['outbox']['pending']}")
    demo.sim.set_faults(Faults())
    console.print("key works again: delivery resumes by itself…")
    await wait_drained(demo)
    await show(demo)


async def shipstation_statuses(demo: Demo) -> None:
    console.rule("[bold]4. ShipStation: a 60-day first sync, then status changes")
    console.print(
        f"shoprelay syncs every {SHIPSTATION_POLL_SECONDS} s here (every 30 minutes by default)."
    )
    first = await _next_sync(demo, None)
    orders = list(demo.shipstation.orders)[:6]
    moves = ["ship_label", "hold", "cancel", "mark_shipped", "ship_label", "await_payment"]
    for order_id, action in zip(orders, moves, strict=True):
        demo.shipstation.apply(order_id, action)
        console.print(f"order {order_id}: {action.replace('_', ' ')}")
    synced = await _next_sync(demo, await _next_sync(demo, first))
    demo.shipstation.void_label(orders[4])
    console.print(f"order {orders[4]}: label voided, back to awaiting shipment")
    await _next_sync(demo, await _next_sync(demo, synced))
    await wait_drained(demo)
    counts = Counter(event.metric for event in demo.sim.events if event.metric.startswith("Order "))
    table = Table("ShipStation metric", "events", "of which backfill")
    for metric, n in sorted(counts.items()):
        backfill = sum(1 for e in demo.sim.events if e.metric == metric and e.backfill)
        table.add_row(metric, str(n), str(backfill))
    console.print(table)
    console.print("'mark as shipped' sends no Order Shipped: no label was created in ShipStation.")


async def _next_sync(demo: Demo, after: str | None) -> str | None:
    """Wait for a sync to finish after the one that finished at `after`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        document = await demo.service.status()
        finished = document["shipstation"].get("last_sync_finished_at")
        if finished and finished != after:
            return str(finished)
        await asyncio.sleep(0.5)
    return after


async def refused_by_klaviyo(demo: Demo) -> None:
    """Plant one event Klaviyo must refuse (time before 1990), to show a 400's dead letter."""
    metric = demo.service.settings.METRIC_PLACED_ORDER
    event = {
        "properties": {"OrderId": "demo-refused"},
        "time": "1985-01-01T00:00:00Z",
        "unique_id": "demo:refused:1",
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "ada@example.com"}}},
    }
    item = NewItem("event", "demo:refused:1", event, "demo")
    store = demo.service.store
    async with store.transaction() as conn:
        await outbox.enqueue(store, conn, [item], time.time())
    demo.service.dispatcher.wake()
    await wait_drained(demo)


async def dead_letters(demo: Demo) -> None:
    console.rule("[bold]5. What could not be delivered, and why")
    console.print("One more event is planted with a time before 1990, which Klaviyo refuses.")
    await refused_by_klaviyo(demo)
    async with demo.service.store.read() as conn:
        letters = await deadletters.list_open(conn)
    table = Table("id", "origin", "topic", "reason")
    for letter in letters:
        table.add_row(str(letter.id), letter.origin, letter.topic or "-", letter.reason)
    console.print(table)
    async with demo.service.store.read() as conn:
        ids = [letter.id for letter in letters if letter.origin == "delivery"]
        refused = await deadletters.get(conn, ids)
    for letter in refused:
        console.print(f"dead letter {letter.id}, Klaviyo said: {letter.detail} ({letter.pointer})")
    console.print(
        "See one with [bold]shoprelay dlq show ID[/bold]; "
        "send again with [bold]shoprelay dlq replay ID[/bold]."
    )


def verify_exactly_once(demo: Demo) -> None:
    console.rule("[bold]Result")
    keys = Counter((event.metric, event.unique_id) for event in demo.sim.events)
    doubled = [key for key, n in keys.items() if n > 1]
    console.print(
        f"{len(keys)} distinct events in Klaviyo, {len(doubled)} doubled; "
        f"{demo.sim.stats().get('duplicates_ignored', 0)} resends absorbed by unique_id."
    )


def run_demo(orders: int) -> None:
    logs.configure("ERROR")

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="shoprelay-demo-") as workdir:
            async with demo_world(Path(workdir)) as demo:
                console.print(
                    f"shoprelay on {demo.relay_url} (dashboard on {demo.admin_url}/ while the "
                    "demo runs), Klaviyo simulator ready."
                )
                await stream_orders(demo, orders)
                await bad_input(demo)
                await revoked_key(demo)
                await shipstation_statuses(demo)
                await dead_letters(demo)
                await subscribe_then_forget(demo, wait_drained)
                verify_exactly_once(demo)

    run(main)
