"""`shoprelay status` and `shoprelay resume`."""

from __future__ import annotations

from typing import Any

import orjson
from rich.table import Table

from shoprelay.cli.common import console, run, settings, show_time, with_store
from shoprelay.operations import status as status_document
from shoprelay.store import pauses
from shoprelay.store.database import Store


def status(as_json: bool) -> None:
    config = settings()

    async def main() -> dict[str, Any]:
        async def work(store: Store) -> dict[str, Any]:
            return await status_document.collect(
                store,
                shipstation_enabled=config.shipstation_enabled,
                shopify_shop=config.SHOPIFY_SHOP if config.shopify_admin_enabled else None,
            )

        return await with_store(config, work, read_only=True)

    document = run(main)
    if as_json:
        console.print_json(orjson.dumps(document).decode())
    else:
        _print(document)


def _print(document: dict[str, Any]) -> None:
    table = Table("outbox", "count", title=f"shoprelay on {document['database']['backend']}")
    for key in ("pending", "in_flight", "delivered", "dead_lettered"):
        table.add_row(key, str(document["outbox"][key]))
    table.add_row("dead letters open", str(document["dead_letters"]["open"]))
    for outcome, n in document["webhooks"].items():
        table.add_row(f"webhooks {outcome}", str(n))
    console.print(table)
    if (cleared := document["outbox"].get("bodies_cleared_through")) is not None:
        console.print(f"delivered items queued up to {show_time(cleared)} hold no body")
    for warning in document["database"]["warnings"]:
        console.print(f"[bold yellow]WARNING[/bold yellow] {warning}")
    delivery = document["delivery"]
    for pause in delivery["pauses"]:
        until = "until resumed" if pause["until"] is None else f"until {show_time(pause['until'])}"
        console.print(
            f"[bold red]PAUSED[/bold red] {pause['account']}/{pause['endpoint']}: "
            f"{pause['reason']} {until}. {pause['detail'] or ''}"
        )
    if not delivery["paused"]:
        console.print("[green]delivery running[/green]")
    if delivery["last_error"]:
        error = delivery["last_error"]
        console.print(
            f"last error {show_time(error['at'])} {error['endpoint']} "
            f"{error['status_code'] or ''}: {error['detail']}"
        )
    admin = document["shopify_admin"]
    if admin["catchup"] == "off":
        console.print(f"Shopify catch-up is off: {admin['reason']}")
    else:
        console.print_json(orjson.dumps(admin).decode())
    shipstation = document["shipstation"]
    if shipstation.get("enabled"):
        console.print_json(orjson.dumps(shipstation).decode())


def resume() -> None:
    config = settings()

    async def main() -> int:
        async def work(store: Store) -> int:
            return await pauses.clear_pause(store)

        return await with_store(config, work)

    cleared = run(main)
    console.print(f"cleared {cleared} pause(s); delivery resumes within a second")
