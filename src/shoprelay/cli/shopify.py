"""`shoprelay shopify check|register|backfill`: the Admin API token at work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from shoprelay.cli.common import console, run, settings
from shoprelay.config import Settings
from shoprelay.service import shopify_metrics
from shoprelay.sources.shopify.admin import shopstate
from shoprelay.sources.shopify.admin.backfill import (
    DAYS_WITHOUT_READ_ALL_ORDERS,
    BackfillReport,
    granted_scopes,
    run_backfill,
)
from shoprelay.sources.shopify.admin.client import AdminClient, ShopifyAuthError, ShopifyUnreachable
from shoprelay.sources.shopify.admin.connect import client_from_settings, shop_of
from shoprelay.sources.shopify.admin.subscriptions import (
    SubscriptionPlan,
    check_url,
    ensure_subscriptions,
    list_subscriptions,
    plan_subscriptions,
)
from shoprelay.store.database import Store

app = typer.Typer(
    help="Shopify Admin API: check the token, register webhooks, import history.",
    no_args_is_help=True,
)
NEEDED_SCOPES = ("read_orders", "read_customers")
REGISTER_HINT = "shoprelay shopify register --url https://HOST/webhooks/shopify"


async def _stored_url(config: Settings, shop: str) -> str | None:
    store = await Store.open(config.DATABASE_URL)
    try:
        return await shopstate.webhook_url(store, shop)
    finally:
        await store.close()


def _scope_problems(config: Settings, scopes: set[str]) -> list[str]:
    problems = [
        f"the token lacks {scope}: add it to the custom app's Admin API access scopes, "
        "reinstall the app and set the new token as SHOPIFY_API_KEY"
        for scope in NEEDED_SCOPES
        if scope not in scopes
    ]
    days = config.SHOPIFY_BACKFILL_DAYS
    if "read_all_orders" not in scopes and days > DAYS_WITHOUT_READ_ALL_ORDERS:
        problems.append(
            f"the token lacks read_all_orders: a backfill reaches only the last "
            f"{DAYS_WITHOUT_READ_ALL_ORDERS} days of orders, not SHOPIFY_BACKFILL_DAYS={days}; "
            "add read_all_orders to the app's scopes (or lower SHOPIFY_BACKFILL_DAYS)"
        )
    return problems


def _subscription_problems(planned: SubscriptionPlan) -> list[str]:
    problems = [
        f"no webhook subscription for {topic}: run {REGISTER_HINT}" for topic in planned.create
    ]
    problems += [
        f"the {topic} subscription points to {current.uri}, not {planned.url}: "
        "run shoprelay shopify register"
        for topic, current in planned.repoint
    ]
    return problems


async def _check(config: Settings) -> int:
    shop = shop_of(config)
    stored = await _stored_url(config, shop)
    # A person waits for the answer: two tries, not the schedule's patient six.
    async with client_from_settings(config, max_attempts=2) as client:
        try:
            info, scopes = await granted_scopes(client)
        except (ShopifyUnreachable, ShopifyAuthError) as error:
            console.print(f"[bold red]{escape(str(error))}[/bold red]", soft_wrap=True)
            return 2
        console.print(
            f"[green]Shopify accepted the token[/green]: {info['name']} "
            f"({info['myshopifyDomain']}), currency {info['currencyCode']}, "
            f"time zone {info['ianaTimezone']}"
        )
        console.print(f"scopes granted: {', '.join(sorted(scopes)) or '(none)'}")
        problems = _scope_problems(config, scopes)
        problems += await _check_subscriptions(client, stored)
    for problem in problems:
        console.print(f"[bold red]PROBLEM[/bold red] {escape(problem)}", soft_wrap=True)
    if not problems:
        console.print("[green]everything is in place[/green]")
    return 1 if problems else 0


async def _check_subscriptions(client: AdminClient, stored: str | None) -> list[str]:
    try:
        existing = await list_subscriptions(client)
    except ShopifyAuthError as error:
        return [str(error)]
    if stored is None:
        return [f"no webhook URL is stored, so no subscription is checked: run {REGISTER_HINT}"]
    planned = plan_subscriptions(existing, stored)
    console.print(
        f"webhook subscriptions to {stored}: {len(planned.in_place)} in place, "
        f"{len(planned.foreign)} not shoprelay's (left alone)"
    )
    return _subscription_problems(planned)


@app.command()
def check() -> None:
    """The token, the shop, the scopes and the webhook subscriptions: one line per problem.

    Exit status 0 when everything is in place, 1 when something is missing or wrong, 2 when
    the shop cannot be reached or the token is refused.
    """
    config = settings()
    raise typer.Exit(run(lambda: _check(config)))


@app.command()
def register(
    url: Annotated[str, typer.Option(help="Where Shopify delivers: https://HOST/webhooks/shopify")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
) -> None:
    """Subscribe every topic shoprelay handles to URL; fix shoprelay's own that point elsewhere.

    Subscriptions shoprelay did not make are never touched; running it twice changes nothing.
    The URL is stored, so `serve` re-creates subscriptions Shopify removes.
    """
    config = settings()

    async def work() -> SubscriptionPlan:
        check_url(url)
        shop = shop_of(config)
        async with client_from_settings(config) as client:
            planned = await ensure_subscriptions(client, url, dry_run=dry_run)
        if not dry_run:
            store = await Store.open(config.DATABASE_URL)
            try:
                await shopstate.write(store, shop, "webhook_url", {"url": url})
            finally:
                await store.close()
        return planned

    planned = run(work)
    verb = "would" if dry_run else "did"
    table = Table("Topic", "Action")
    for topic in planned.create:
        table.add_row(topic, f"{verb} create")
    for topic, current in planned.repoint:
        table.add_row(topic, f"{verb} repoint (was {current.uri})")
    for topic in planned.in_place:
        table.add_row(topic, "in place")
    console.print(table)
    if planned.foreign:
        console.print(f"{len(planned.foreign)} subscription(s) shoprelay did not make: left alone")
    console.print(
        f"{planned.changes} change(s) {'to make' if dry_run else 'made'}; webhooks go to {url}",
        soft_wrap=True,
    )


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[BackfillReport], None]]:
    if not enabled:
        yield lambda _report: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, object] = {}

        def show(report: BackfillReport) -> None:
            if report.phase not in tasks:
                tasks[report.phase] = bar.add_task(report.phase, total=None)
            bar.update(tasks[report.phase], completed=report.done, total=report.total)  # type: ignore[arg-type]

        yield show


def _print_summary(report: BackfillReport) -> None:
    table = Table("", "", show_header=False, box=None)
    table.add_row("Days imported", f"{report.days_reached} (asked {report.days_asked})")
    table.add_row("Orders read", str(report.orders))
    table.add_row("Customers read", str(report.customers))
    table.add_row("Items queued for Klaviyo", str(report.outcomes.get("items", 0)))
    table.add_row(
        "Already known (no new item)",
        str(report.outcomes.get("duplicate", 0) + report.outcomes.get("stale", 0)),
    )
    table.add_row("Kept in the dead-letter queue", str(report.outcomes.get("unprocessable", 0)))
    if report.resumed:
        table.add_row("Resumed", "yes: an interrupted backfill was finished")
    console.print(table)
    if report.note:
        console.print(f"[bold yellow]NOTE[/bold yellow] {escape(report.note)}", soft_wrap=True)


@app.command()
def backfill(
    days: Annotated[
        int | None, typer.Option(min=1, help="Days back from now (default SHOPIFY_BACKFILL_DAYS).")
    ] = None,
) -> None:
    """Import the last N days of orders and customers (events marked backfill: true).

    An interrupted backfill resumes where it stopped when run again.
    """
    config = settings()

    async def work() -> BackfillReport:
        shop = shop_of(config)
        store = await Store.open(config.DATABASE_URL)
        try:
            async with client_from_settings(config) as client:
                with _progress_bar(console.is_terminal) as progress:
                    report = await run_backfill(
                        store,
                        client,
                        shop,
                        shopify_metrics(config),
                        days=days or config.SHOPIFY_BACKFILL_DAYS,
                        progress=progress,
                        lease_ttl=config.SHOPIFY_LEASE_SECONDS,
                    )
                cost = client.tally
                console.print(
                    f"GraphQL cost: {cost.actual:.0f} points in {cost.queries} queries, "
                    f"{cost.throttled} throttled"
                )
                return report
        finally:
            await store.close()

    _print_summary(run(work))
