"""`shoprelay privacy`: export what we hold about a customer, or forget someone."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Annotated, Any

import orjson
import typer

from shoprelay.cli.common import console, run, settings, with_store
from shoprelay.sources.deletions import deletion_items
from shoprelay.sources.shopify.privacy import customer_request, phone_forms
from shoprelay.store import privacy, privacy_export
from shoprelay.store.database import Store
from shoprelay.store.plans import PrivacyRequest
from shoprelay.store.privacy import Erasure

app = typer.Typer(
    help="Privacy requests: export a customer's data, forget someone.", no_args_is_help=True
)

SOURCE = "cli"


@app.command()
def export(
    customer: Annotated[str, typer.Option(help="The Shopify customer id.")],
    shop: Annotated[
        str | None, typer.Option(help="Only this shop (default: every shop that named the id).")
    ] = None,
) -> None:
    """Print, as JSON, everything shoprelay holds about a Shopify customer."""
    config = settings()

    async def main() -> dict[str, Any]:
        async def work(store: Store) -> dict[str, Any]:
            shops = [shop] if shop else await privacy_export.scopes_of(store, customer)
            found = []
            for name in shops:
                request = customer_request("export", name, customer)
                found.append({"shop": name, **await privacy_export.export(store, request)})
            return {"customer_id": customer, "shops": found}

        return await with_store(config, work)

    typer.echo(orjson.dumps(run(main), option=orjson.OPT_INDENT_2).decode())


@app.command()
def forget(
    email: Annotated[str | None, typer.Option(help="Their email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Their phone number.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Erase someone here and have Klaviyo delete them: a request from outside Shopify."""
    if not email and not phone:
        raise typer.BadParameter("give --email, --phone or both")
    config = settings()
    if not yes and not typer.confirm(
        "Erase everything shoprelay holds about them and delete their Klaviyo profile?"
    ):
        raise typer.Exit(1)

    async def main() -> Erasure:
        return await with_store(config, lambda store: forget_person(store, email, phone))

    erasure = run(main)
    console.print(
        f"Erased: {erasure.items_dropped} unsent items dropped, {erasure.rows_erased} rows "
        f"cleared; {erasure.deletion_jobs} Klaviyo deletion jobs queued "
        "(`shoprelay serve` sends them)."
    )


async def forget_person(
    store: Store, email: str | None, phone: str | None, now: float | None = None
) -> Erasure:
    """The erasure of one person named by email and/or phone, and every customer record
    whose webhooks named either."""
    emails = (email,) if email else ()
    phones = phone_forms([phone]) if phone else ()
    request = PrivacyRequest("forget", emails=emails, phones=phones, propagate=True)
    for shop, customer_id in await privacy.customers_with(store, [*emails, *phones]):
        markers = customer_request("forget", shop, customer_id).markers
        request = replace(request, markers=request.markers + markers)
    request_key = f"forget:{uuid.uuid4().hex}"
    return await privacy.erase(
        store,
        request,
        time.time() if now is None else now,
        deletions=lambda found_emails, found_phones: deletion_items(
            found_emails, found_phones, SOURCE, request_key
        ),
    )
