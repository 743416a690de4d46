"""`shoprelay shipstation check|sync`: try the credentials, or run one sync now."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from shoprelay.cli.common import console, run, settings
from shoprelay.config import Settings
from shoprelay.sources.shipstation.poll import client_from_settings, options_from_settings, run_sync
from shoprelay.sources.shipstation.session import SyncReport
from shoprelay.store.database import Store

app = typer.Typer(help="ShipStation: check the credentials, or sync now.", no_args_is_help=True)
T = TypeVar("T")


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """Load settings once and run `work` with them."""
    config = settings()
    return run(lambda: work(config))


async def _check(settings: Settings) -> None:
    async with client_from_settings(settings) as client:
        stores = await client.stores()
    table = Table("Store id", "Name", "Marketplace", "Active")
    for store in stores:
        active = "yes" if store.get("active") else "no"
        name, marketplace = str(store.get("storeName")), str(store.get("marketplaceName"))
        table.add_row(str(store.get("storeId")), name, marketplace, active)
    console.print(f"[green]ShipStation accepted the credentials[/green]: {len(stores)} store(s)")
    console.print(table)


@app.command()
def check() -> None:
    """Verify the API key and secret against ShipStation and list the account's stores."""
    _run(_check)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[SyncReport], None]]:
    """A rich bar on a terminal; a no-op otherwise."""
    if not enabled:
        yield lambda _report: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("ShipStation", total=1.0, detail="")

        def show(report: SyncReport) -> None:
            detail = f"{report.orders_seen} orders, {report.requests_used} requests"
            done = report.backfill_done if report.phase == "backfill" else 1.0
            bar.update(task, completed=done, description=report.phase, detail=detail)

        yield show


def _print_summary(report: SyncReport) -> None:
    table = Table("", "", show_header=False, box=None)
    table.add_row("Orders seen", str(report.orders_seen))
    table.add_row("Status changes", str(report.status_changes))
    table.add_row("Events queued", str(report.events_queued))
    for metric, n in sorted(report.events_by_metric.items()):
        table.add_row(f"  {metric}", str(n))
    table.add_row("Orders without email (not sent)", str(report.orders_without_email))
    table.add_row("API requests used", str(report.requests_used))
    console.print(table)


@app.command()
def sync(
    backfill_days: Annotated[
        int | None, typer.Option(min=0, help="Days of history for a first sync.")
    ] = None,
) -> None:
    """Run one sync now: the first-sync backfill if it is not done, then recent changes."""

    async def work(settings: Settings) -> SyncReport:
        options = options_from_settings(settings, backfill_days=backfill_days)
        store = await Store.open(settings.DATABASE_URL)
        try:
            async with client_from_settings(settings) as client:
                with _progress_bar(console.is_terminal) as progress:
                    return await run_sync(store, client, options, progress=progress)
        finally:
            await store.close()

    _print_summary(_run(work))
