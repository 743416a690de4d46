"""`shoprelay reconcile`: per day and metric, what shoprelay queued and delivered, and what
Klaviyo counts, with what explains each difference."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson
from rich.markup import escape
from rich.table import Table

from shoprelay.cli.common import console, run, settings, stderr, with_store
from shoprelay.operations.reconcile import reconcile as collect
from shoprelay.store.database import Store

WHY = {
    "pending": "pending",
    "dead_letters": "in the dead-letter queue",
    "refused": "refused by Klaviyo (dlq)",
    "clock": "on the next or previous day (clock or zone)",
    "unexplained": "unexplained",
}


def reconcile(days: int, metrics: Sequence[str], as_json: bool) -> None:
    config = settings()

    async def main() -> dict[str, Any]:
        async def work(store: Store) -> dict[str, Any]:
            return await collect(store, config, days=days, metrics=metrics)

        return await with_store(config, work, read_only=True)

    document = run(main)
    if as_json:
        # Exactly one document on stdout; Klaviyo's trouble is in it as klaviyo_error.
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
        return
    _print(document)


def _print(document: dict[str, Any]) -> None:
    source = "Klaviyo account's" if document["timezone_source"] == "klaviyo" else "fallback"
    console.print(f"days in {document['timezone']} (the {source} time zone)")
    if document["klaviyo_error"]:
        stderr.print(
            f"[yellow]Klaviyo's counts: not available.[/yellow] "
            f"{escape(document['klaviyo_error'])}",
            soft_wrap=True,
        )
    table = Table("date", "metric", "source", "delivered", "klaviyo", "explained")
    quiet = 0
    for row in document["days"]:
        counts = (row["source"], row["delivered"], row["klaviyo"] or 0)
        if not any(counts):
            quiet += 1
            continue
        style = "red" if _differs(row) else None
        klaviyo = "-" if row["klaviyo"] is None else str(row["klaviyo"])
        why = ", ".join(f"{n} {WHY[key]}" for key, n in row["explained"].items())
        table.add_row(
            row["date"],
            row["metric"],
            str(row["source"]),
            str(row["delivered"]),
            klaviyo,
            why,
            style=style,
        )
    console.print(table if table.rows else "No events in these days.")
    if quiet and table.rows:
        console.print(f"{quiet} day and metric pairs with no events are not shown")
    if document["bodies_cleared"]:
        console.print(
            f"[yellow]{document['bodies_cleared']} events queued since the first day no longer "
            "hold their body (OUTBOX_RETENTION_DAYS) and are not counted[/yellow]"
        )


def _differs(row: dict[str, Any]) -> bool:
    return row["source"] != row["delivered"] or (
        row["klaviyo"] is not None and row["klaviyo"] != row["delivered"]
    )
