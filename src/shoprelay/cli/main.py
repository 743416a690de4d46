"""The `shoprelay` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shoprelay.cli import dlq, privacy, shipstation, shopify, sim
from shoprelay.sim.shopify_samples import sample_topics

app = typer.Typer(
    help="Move Shopify and ShipStation data into Klaviyo: nothing lost, nothing doubled.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(dlq.app, name="dlq")
app.add_typer(sim.app, name="sim")
app.add_typer(shipstation.app, name="shipstation")
app.add_typer(privacy.app, name="privacy")
app.add_typer(shopify.app, name="shopify")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Receiving processes; one more delivers and polls.")
    ] = 1,
    admin_host: Annotated[
        str | None,
        typer.Option(help="Admin listener's interface [ADMIN_HOST, default 127.0.0.1]."),
    ] = None,
    admin_port: Annotated[
        int | None, typer.Option(help="Admin listener's port [ADMIN_PORT, default 8001].")
    ] = None,
) -> None:
    """Receive webhooks, deliver to Klaviyo, run the pollers, and serve the admin listener
    (status, metrics, the dashboard) apart from the public webhook port."""
    from shoprelay.web.metrics import shared_across_processes

    # Before the app's modules are imported: some of their metrics are made at import.
    with shared_across_processes():
        from shoprelay.cli.serve import serve as run_serve

        run_serve(host, port, workers, admin_host, admin_port)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="The stable JSON document.")] = False,
) -> None:
    """Pending, in flight, delivered, dead-lettered; pauses and the last error."""
    from shoprelay.cli.status import status as show_status

    show_status(as_json)


@app.command()
def resume() -> None:
    """Lift every delivery pause now (after fixing a key, say)."""
    from shoprelay.cli.status import resume as run_resume

    run_resume()


@app.command("send-webhook")
def send_webhook(
    topic: Annotated[
        str,
        typer.Argument(
            help=f"Shopify topic. Samples: {', '.join(sample_topics())}; "
            "any other topic sends {} (shoprelay ignores it)."
        ),
    ],
    file: Annotated[
        Path | None,
        typer.Option(help="Send this JSON payload instead of the topic's sample.", dir_okay=False),
    ] = None,
    url: Annotated[
        str, typer.Option(help="shoprelay's base URL, or its full webhook URL.")
    ] = "http://127.0.0.1:8000",
    shop: Annotated[
        str, typer.Option(help="X-Shopify-Shop-Domain: the shop it comes from.")
    ] = "demo-shop.myshopify.com",
) -> None:
    """Sign a webhook with SHOPIFY_WEBHOOK_SECRET and send it as Shopify would.

    Prints the status and the outcome shoprelay answered; exits 1 unless it was acknowledged.
    """
    from shoprelay.cli.send_webhook import send_webhook as run_send_webhook

    run_send_webhook(topic, file, url, shop)


@app.command()
def reconcile(
    days: Annotated[
        int, typer.Option(min=1, max=360, help="Today and the days before it, in Klaviyo's zone.")
    ] = 7,
    metric: Annotated[
        list[str] | None, typer.Option(help="Only this metric (repeat for more).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Per day and metric: events queued, delivered, and counted by Klaviyo (metrics:read).

    Days are cut in the Klaviyo account's time zone, as Klaviyo charts them; a difference
    is red, with what explains it: pending, dead letters, refused, or a clock mismatch.
    """
    from shoprelay.cli.reconcile import reconcile as run_reconcile

    run_reconcile(days, metric or [], as_json)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest revision."""
    from shoprelay.cli.common import console, run, settings, with_store

    config = settings()

    async def main() -> None:
        async def work(_: object) -> None:
            return None

        await with_store(config, work)  # opening the store migrates it

    run(main)
    console.print("database is at the newest revision")


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="How many Shopify orders to stream.")] = 40,
) -> None:
    """Run the whole pipeline against the simulators, with no accounts."""
    from shoprelay.cli.demo import run_demo

    run_demo(orders)
