"""Redaction and deletion over real sockets: shoprelay + the Klaviyo simulator, both dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select
from tests.support.harness import (
    KlaviyoSimServer,
    RunningService,
    drained,
    eventually,
    service_settings,
    shoprelay_service,
)
from tests.support.privacy import (
    ADA,
    BOB,
    CAROL,
    OTHER_SHOP,
    SHOP,
    customer,
    every_text,
    ingest_both,
    redact,
    sample,
    send,
    sim_profile,
    traces,
)

from shoprelay.sim.klaviyo_faults import Faults
from shoprelay.store import pauses, privacy_export
from shoprelay.store.database import Store
from shoprelay.store.schema import outbox


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def test_after_a_redaction_no_row_holds_their_email_phone_or_name(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """Delivered, dead-lettered and linked copies all go; Klaviyo deletes the profile;
    the dedup keys and the other customer stay; the audit names no one."""
    await ingest_both(client, relay)
    await eventually(lambda: drained(relay.service))
    assert sim_profile(sim, ADA["email"]) is not None
    keys_before = await dedup_keys(relay.store)
    before = await every_text(relay.store)
    assert all(trace in before for trace in traces(ADA))

    outcome = await send(client, relay.url, "customers/redact", redact(ADA, [9001]), "r-1")
    assert outcome == "processed"
    await eventually(lambda: len(sim.sim.deletions) == 2 and all(d.done for d in sim.sim.deletions))
    await eventually(lambda: drained(relay.service))

    assert sorted(d.identifier for d in sim.sim.deletions) == ["email", "phone_number"]
    assert sim_profile(sim, ADA["email"]) is None
    assert not [e for e in sim.sim.events if e.profile.get("email") == ADA["email"].lower()]
    text = await every_text(relay.store)
    assert [trace for trace in traces(ADA) if trace in text] == []
    assert all(trace in text for trace in traces(BOB))
    assert sim_profile(sim, BOB["email"]) is not None
    assert keys_before <= await dedup_keys(relay.store)
    (entry,) = await privacy_export.audit(relay.store)
    assert entry["action"] == "customers/redact"
    assert entry["items_dropped"] == 0
    assert entry["deletion_jobs"] == 2
    again = await send(client, relay.url, "customers/redact", redact(ADA, [9001]), "r-1")
    assert again == "duplicate"


async def dedup_keys(store: Store) -> set[str]:
    async with store.read() as conn:
        return set((await conn.execute(select(outbox.c.dedup_key))).scalars())


async def test_no_pending_event_of_a_redacted_customer_reaches_klaviyo(
    database_url: str, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """Items held back by a paused account are dropped by the redaction: once delivery
    resumes, only the other customer's arrive, and the deletion finds nothing to delete."""
    sim.sim.set_faults(replace(sim.sim.faults, revoked=True))
    # No probe with the paused key meanwhile: it resumes when told, as after `shoprelay resume`.
    settings = service_settings(database_url, sim.url, DELIVERY_AUTH_PROBE_SECONDS="600")
    async with shoprelay_service(settings) as relay:
        await ingest_both(client, relay)
        await eventually(lambda: held_back(relay.store))

        await send(client, relay.url, "customers/redact", redact(ADA, [9001]), "r-1")
        sim.sim.set_faults(Faults())
        await pauses.clear_pause(relay.store)
        await eventually(lambda: sim_profile(sim, BOB["email"]) is not None)
        await eventually(
            lambda: len(sim.sim.deletions) == 2 and all(d.done for d in sim.sim.deletions)
        )
        await eventually(lambda: drained(relay.service))
        (entry,) = await privacy_export.audit(relay.store)

    assert sim_profile(sim, ADA["email"]) is None
    assert all(not d.profiles_deleted and not d.events_deleted for d in sim.sim.deletions)
    assert {e.profile.get("email") for e in sim.sim.events} == {BOB["email"]}
    assert entry["items_dropped"] > 0


async def held_back(store: Store) -> bool:
    """The account is paused, and its items wait, none in flight."""
    async with store.read() as conn:
        paused = await pauses.active_pauses(conn, 0.0)
        statuses = list((await conn.execute(select(outbox.c.status))).scalars())
    return bool(paused) and "in_flight" not in statuses and "pending" in statuses


async def pending_items(store: Store) -> int:
    async with store.read() as conn:
        rows = await conn.execute(select(outbox.c.status).where(outbox.c.kind != "deletion"))
        return sum(1 for status in rows.scalars() if status == "pending")


async def test_customers_delete_erases_by_the_id_and_stays_local_by_default(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """customers/delete carries only the id: the link from earlier webhooks finds the email
    and phone to erase, and nothing is asked of Klaviyo."""
    await ingest_both(client, relay)
    await eventually(lambda: drained(relay.service))
    await send(client, relay.url, "customers/delete", {"id": ADA["id"]}, "d-1")
    text = await every_text(relay.store)
    assert [trace for trace in traces(ADA) if trace in text] == []
    assert all(trace in text for trace in traces(BOB))
    assert await deletion_jobs(relay.store) == 0
    assert sim.sim.deletions == []
    assert sim_profile(sim, ADA["email"]) is not None  # Klaviyo keeps its own copy


async def deletion_jobs(store: Store) -> int:
    async with store.read() as conn:
        rows = await conn.execute(select(outbox.c.id).where(outbox.c.kind == "deletion"))
        return len(rows.all())


async def test_customers_delete_reaches_klaviyo_when_configured(
    database_url: str, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """With SHOPIFY_DELETE_PROPAGATES, a deletion job goes for each identifier linked to the id."""
    settings = service_settings(database_url, sim.url, SHOPIFY_DELETE_PROPAGATES="true")
    async with shoprelay_service(settings) as relay:
        await send(client, relay.url, "customers/create", customer(ADA), "c-1")
        await eventually(lambda: sim_profile(sim, ADA["email"]) is not None)
        await send(client, relay.url, "customers/delete", {"id": ADA["id"]}, "d-1")
        await eventually(
            lambda: len(sim.sim.deletions) == 2 and all(d.done for d in sim.sim.deletions)
        )
    assert {(d.identifier, d.value) for d in sim.sim.deletions} == {
        ("email", ADA["email"].lower()),
        ("phone_number", ADA["phone"]),
    }
    assert sim_profile(sim, ADA["email"]) is None


async def test_shop_redact_erases_the_shop_and_leaves_other_shops(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """Everything one shop sent goes, and each of its customers is deleted from Klaviyo."""
    await ingest_both(client, relay)
    await send(client, relay.url, "customers/create", customer(CAROL), "c-other", shop=OTHER_SHOP)
    await eventually(lambda: drained(relay.service))
    await send(client, relay.url, "shop/redact", sample("shop-redact.json"), "s-1")
    await eventually(lambda: len(sim.sim.deletions) == 3 and all(d.done for d in sim.sim.deletions))
    await eventually(lambda: drained(relay.service))
    text = await every_text(relay.store)
    assert [trace for trace in [*traces(ADA), *traces(BOB)] if trace in text] == []
    assert all(trace in text for trace in traces(CAROL))
    assert sim_profile(sim, CAROL["email"]) is not None
    async with relay.store.read() as conn:
        bodies = list((await conn.execute(select(outbox.c.body))).scalars())
    assert not [body for body in bodies if f"shopify:{SHOP}:" in body]


async def test_shop_redact_can_leave_klaviyo_alone(
    database_url: str, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """With SHOPIFY_SHOP_REDACT_PROPAGATES off, only our copies go."""
    settings = service_settings(database_url, sim.url, SHOPIFY_SHOP_REDACT_PROPAGATES="false")
    async with shoprelay_service(settings) as relay:
        await send(client, relay.url, "customers/create", customer(ADA), "c-1")
        await send(client, relay.url, "shop/redact", sample("shop-redact.json"), "s-1")
        text = await every_text(relay.store)
        assert await deletion_jobs(relay.store) == 0
    assert [trace for trace in traces(ADA) if trace in text] == []


async def test_a_data_request_is_acknowledged_and_changes_nothing(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """customers/data_request: a 200, nothing erased, nothing queued."""
    await send(client, relay.url, "customers/create", customer(ADA), "c-1")
    request = sample("customers-data_request.json")
    request["customer"] = {key: ADA[key] for key in ("id", "email", "phone")}
    assert await send(client, relay.url, "customers/data_request", request, "q-1") == "processed"
    assert ADA["email"].lower() in await every_text(relay.store)
    assert await privacy_export.audit(relay.store) == []
