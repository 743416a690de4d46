"""`shoprelay privacy export` and `privacy forget`, on a database filled over real sockets."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy import select
from tests.support.harness import (
    drained,
    eventually,
    klaviyo_sim,
    service_settings,
    shoprelay_service,
)
from tests.support.privacy import ADA, BOB, every_text, ingest_both, traces
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.store import privacy_export
from shoprelay.store.database import Store
from shoprelay.store.schema import outbox


def fill(database_url: str) -> None:
    """Ada and Bob arrive by webhook and are delivered to a simulator."""

    async def main() -> None:
        async with (
            klaviyo_sim() as sim,
            httpx.AsyncClient(timeout=10) as client,
            shoprelay_service(service_settings(database_url, sim.url)) as relay,
        ):
            await ingest_both(client, relay)
            await eventually(lambda: drained(relay.service))

    asyncio.run(main())


def facts(database_url: str) -> tuple[str, list[dict[str, object]], list[str]]:
    async def main() -> tuple[str, list[dict[str, object]], list[str]]:
        store = await Store.open(database_url)
        try:
            async with store.read() as conn:
                query = select(outbox.c.body).where(outbox.c.kind == "deletion")
                jobs = list((await conn.execute(query)).scalars())
            return await every_text(store), await privacy_export.audit(store), jobs
        finally:
            await store.close()

    return asyncio.run(main())


def test_export_prints_everything_held_about_the_customer(
    cli: CliRunner, database_url: str
) -> None:
    """Their identifiers, outbox bodies and the dead letter of their broken webhook; not Bob's."""
    fill(database_url)
    result = cli.invoke(app, ["privacy", "export", "--customer", str(ADA["id"])])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    (shop,) = document["shops"]
    assert shop["identifiers"] == {"email": [ADA["email"].lower()], "phone_number": [ADA["phone"]]}
    assert {item["kind"] for item in shop["outbox"]} == {"profile", "event"}
    (letter,) = shop["dead_letters"]
    assert ADA["last_name"] in letter["payload"]
    assert BOB["email"] not in result.output
    assert facts(database_url)[1] == []  # an export erases nothing


def test_forget_asks_first_then_erases_and_queues_klaviyo_deletions(
    cli: CliRunner, database_url: str
) -> None:
    """Declined, nothing changes; with --yes, only the deletion jobs still name them."""
    fill(database_url)
    declined = cli.invoke(app, ["privacy", "forget", "--email", ADA["email"]], input="n\n")
    assert declined.exit_code == 1
    assert ADA["last_name"].lower() in facts(database_url)[0]

    result = cli.invoke(app, ["privacy", "forget", "--email", ADA["email"], "--yes"])
    assert result.exit_code == 0, result.output
    assert "2 Klaviyo deletion jobs queued" in result.output
    text, audit, jobs = facts(database_url)
    assert {json.loads(job).popitem() for job in jobs} == {
        ("email", ADA["email"].lower()),
        ("phone_number", ADA["phone"]),
    }
    # Until they are sent, the jobs hold the identifiers; nothing else does. The name went
    # with the rows the email found, and the phone's through the customer record linking both.
    for job in jobs:
        text = text.replace(job.lower(), "")
    assert [trace for trace in traces(ADA) if trace in text] == []
    assert all(trace in text for trace in traces(BOB))
    assert [entry["action"] for entry in audit] == ["forget"]
