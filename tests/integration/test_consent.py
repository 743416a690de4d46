"""Shopify consent webhooks become Klaviyo subscription jobs: real sockets, both dialects."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.support.harness import (
    WEBHOOK_SECRET,
    KlaviyoSimServer,
    RunningService,
    drained,
    eventually,
    post_webhook,
    service_settings,
    shoprelay_service,
)
from tests.support.privacy import every_text

from shoprelay.mapping.consent import email_consent, graphql_consent, live_change
from shoprelay.sim import shopify as sender
from shoprelay.sim.klaviyo_faults import Faults
from shoprelay.sources.shopify.consent import (
    EMAIL_TOPIC,
    SMS_TOPIC,
    consent_items,
    history_items,
)
from shoprelay.store import deadletters, outbox
from shoprelay.store.outbox import NewItem

SHOP = "demo-shop.myshopify.com"
LIST_ID = "LsTSim1"
EMAIL = "ann.consent@example.com"
PHONE = "+16135550123"
CUSTOMER = 7_001
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


@pytest.fixture
async def relay(database_url: str, sim: KlaviyoSimServer) -> AsyncIterator[RunningService]:
    settings = service_settings(database_url, sim.url, KLAVIYO_LIST_ID=LIST_ID)
    async with shoprelay_service(settings) as running:
        yield running


def email_change(state: str, minutes: int, email: str = EMAIL) -> dict[str, Any]:
    return {
        "customer_id": CUSTOMER,
        "email_address": email,
        "email_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        },
    }


def sms_change(state: str, minutes: int) -> dict[str, Any]:
    return {
        "id": CUSTOMER,
        "phone": PHONE,
        "sms_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "consent_collected_from": "SHOPIFY",
        },
    }


async def send(
    client: httpx.AsyncClient, relay: RunningService, topic: str, payload: dict[str, Any]
) -> str:
    """Send one webhook and return its outcome."""
    body = sender.encode(payload)
    headers = sender.headers(topic, body, WEBHOOK_SECRET.encode(), SHOP)
    response = await post_webhook(client, relay.url, body, headers)
    assert response.status_code == 200, response.text
    outcome: str = response.json()["outcome"]
    return outcome


async def settle(relay: RunningService) -> None:
    await eventually(lambda: drained(relay.service), timeout=15)


def consent(sim: KlaviyoSimServer, channel: str, **identity: str) -> dict[str, Any] | None:
    """The simulated account's record of one profile's consent on a channel."""
    profile = sim.sim.profiles.find(identity)
    record = profile and sim.sim.subscriptions.consent(profile.id, channel)
    return record.to_json() if record else None


def subscription_requests(sim: KlaviyoSimServer) -> dict[str, dict[str, int]]:
    requests: dict[str, dict[str, int]] = sim.sim.stats()["requests"]
    return {name: counts for name, counts in requests.items() if "subscribe" in name}


async def assert_no_dead_letters(relay: RunningService) -> None:
    async with relay.store.read() as conn:
        assert await deadletters.count_open(conn) == 0


async def test_subscribe_unsubscribe_and_resubscribe_in_order(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """A customer unknown to Klaviyo subscribes into the list, leaves it, and comes back."""
    assert sim.sim.profiles.find({"email": EMAIL}) is None
    assert await send(client, relay, EMAIL_TOPIC, email_change("subscribed", 0)) == "processed"
    await settle(relay)
    subscribed = consent(sim, "email", email=EMAIL)
    assert subscribed is not None
    assert subscribed["consent"] == "SUBSCRIBED"
    assert subscribed["historical_import"] is False
    profile = sim.sim.profiles.find({"email": EMAIL})
    assert profile is not None
    assert sim.sim.subscriptions.lists_of(profile.id) == [LIST_ID]
    assert profile.attributes["properties"]["Accepts Marketing"] is True
    assert profile.attributes["external_id"] == f"shopify:{SHOP}:{CUSTOMER}"

    await send(client, relay, EMAIL_TOPIC, email_change("unsubscribed", 5))
    await settle(relay)
    assert (consent(sim, "email", email=EMAIL) or {})["consent"] == "UNSUBSCRIBED"
    assert sim.sim.subscriptions.lists_of(profile.id) == []
    assert profile.attributes["properties"]["Accepts Marketing"] is False

    await send(client, relay, EMAIL_TOPIC, email_change("subscribed", 10))
    await settle(relay)
    assert (consent(sim, "email", email=EMAIL) or {})["consent"] == "SUBSCRIBED"
    assert sim.sim.subscriptions.lists_of(profile.id) == [LIST_ID]
    assert profile.attributes["properties"]["Email Marketing Consent Updated At"] == (
        "2026-12-01T09:10:00Z"
    )
    # Every body passed the simulator's validation against the spec: only 202s.
    assert subscription_requests(sim) == {
        "bulk_subscribe_profiles": {"202": 2},
        "bulk_unsubscribe_profiles": {"202": 1},
    }
    await assert_no_dead_letters(relay)


async def test_an_older_change_arriving_later_never_overrides_a_newer_one(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """Unsubscribed at 09:05 arrives first; the 09:00 subscription that follows is stale."""
    assert await send(client, relay, EMAIL_TOPIC, email_change("unsubscribed", 5)) == "processed"
    await settle(relay)
    assert await send(client, relay, EMAIL_TOPIC, email_change("subscribed", 0)) == "stale"
    # A newer "pending" (no request of its own) still outranks the older subscription.
    assert await send(client, relay, SMS_TOPIC, sms_change("pending", 5)) == "processed"
    assert await send(client, relay, SMS_TOPIC, sms_change("subscribed", 1)) == "stale"
    await settle(relay)
    assert (consent(sim, "email", email=EMAIL) or {})["consent"] == "UNSUBSCRIBED"
    assert consent(sim, "sms", phone_number=PHONE) is None
    assert subscription_requests(sim) == {"bulk_unsubscribe_profiles": {"202": 1}}


async def test_queued_versions_of_one_channel_go_newest_only(
    relay: RunningService, sim: KlaviyoSimServer
) -> None:
    """Committed side by side, newest first: the older subscription is superseded, never sent."""
    newer = graphql_consent(
        "email",
        CUSTOMER,
        {"marketingState": "UNSUBSCRIBED", "consentUpdatedAt": "2026-12-01T09:05:00Z"},
        EMAIL,
    )
    older = graphql_consent(
        "email",
        CUSTOMER,
        {"marketingState": "SUBSCRIBED", "consentUpdatedAt": "2026-12-01T09:00:00Z"},
        EMAIL,
    )
    as_of = datetime.now(UTC)
    async with relay.store.transaction() as conn:
        await outbox.enqueue(relay.store, conn, history_items(SHOP, newer, as_of), time.time())
        await outbox.enqueue(relay.store, conn, history_items(SHOP, older, as_of), time.time())
    relay.service.dispatcher.wake()
    await settle(relay)
    assert (consent(sim, "email", email=EMAIL) or {})["consent"] == "UNSUBSCRIBED"
    assert "bulk_subscribe_profiles" not in subscription_requests(sim)
    async with relay.store.read() as conn:
        assert (await outbox.counts(conn))["superseded"] == 2  # its consent item and properties


async def test_email_and_sms_are_kept_apart(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """An SMS change never supersedes an email one: each channel has its own order."""
    await send(client, relay, EMAIL_TOPIC, email_change("subscribed", 0))
    await send(client, relay, SMS_TOPIC, sms_change("subscribed", 1))
    await settle(relay)
    # The SMS unsubscription is newer than any email change, and leaves email alone.
    await send(client, relay, SMS_TOPIC, sms_change("unsubscribed", 30))
    await send(client, relay, EMAIL_TOPIC, email_change("subscribed", 2))
    await settle(relay)
    assert (consent(sim, "email", email=EMAIL) or {})["consent"] == "SUBSCRIBED"
    assert (consent(sim, "sms", phone_number=PHONE) or {})["consent"] == "UNSUBSCRIBED"
    # Each channel's newest state is a property too. Which of the customer's profiles holds
    # it depends on the order Klaviyo matched the phone, email and external_id in.
    properties = [profile.attributes.get("properties", {}) for profile in sim.sim.all_profiles()]
    assert any(found.get("SMS Marketing Consent") == "unsubscribed" for found in properties)
    assert any(found.get("Accepts Marketing") is True for found in properties)
    assert all(set(counts) == {"202"} for counts in subscription_requests(sim).values()), (
        subscription_requests(sim)
    )
    await assert_no_dead_letters(relay)


async def test_the_backfill_imports_current_consent_as_history(
    relay: RunningService, sim: KlaviyoSimServer
) -> None:
    """historical_import with the past consent time; the live flow's time stays out of it."""
    node = {"marketingState": "SUBSCRIBED", "consentUpdatedAt": "2025-03-01T10:00:00Z"}
    items = history_items(SHOP, graphql_consent("sms", CUSTOMER, node, PHONE), datetime.now(UTC))
    async with relay.store.transaction() as conn:
        await outbox.enqueue(relay.store, conn, items, time.time())
    relay.service.dispatcher.wake()
    await settle(relay)
    record = consent(sim, "sms", phone_number=PHONE)
    assert record is not None
    assert record["historical_import"] is True
    assert record["consented_at"] == "2025-03-01T10:00:00+00:00"
    assert subscription_requests(sim) == {"bulk_subscribe_profiles": {"202": 1}}


async def test_a_customer_known_only_by_consent_is_erased_by_its_id(
    relay: RunningService, client: httpx.AsyncClient
) -> None:
    """customers/delete carries only the id: the consent webhooks' addresses are found by it."""
    await send(client, relay, SMS_TOPIC, sms_change("subscribed", 0))
    await send(client, relay, EMAIL_TOPIC, email_change("subscribed", 0))
    await settle(relay)
    assert await send(client, relay, "customers/delete", {"id": CUSTOMER}) == "processed"
    text = await every_text(relay.store)
    assert EMAIL.lower() not in text
    assert PHONE not in text


async def enqueue(relay: RunningService, items: list[NewItem]) -> None:
    """Commit items in one transaction, so one claim takes them together."""
    async with relay.store.transaction() as conn:
        await outbox.enqueue(relay.store, conn, items, time.time())
    relay.service.dispatcher.wake()


def live_items(n: int, state: str, email: str | None = None) -> list[NewItem]:
    payload = email_change(state, 0, email or f"c{n}@example.com") | {"customer_id": n}
    consent = email_consent(payload)
    return consent_items(SHOP, consent, live_change(consent))


async def test_a_refused_subscription_is_dead_lettered_alone(
    relay: RunningService, sim: KlaviyoSimServer
) -> None:
    """Klaviyo names the bad profile of a job: it alone is dead-lettered, its job-mates land."""
    # Our mapping reads the last @ as the domain's; Klaviyo refuses two of them.
    bad = live_items(2, "subscribed", email="two@at@example.com")
    await enqueue(relay, [*live_items(1, "subscribed"), *bad, *live_items(3, "subscribed")])
    await settle(relay)
    assert (consent(sim, "email", email="c1@example.com") or {})["consent"] == "SUBSCRIBED"
    assert (consent(sim, "email", email="c3@example.com") or {})["consent"] == "SUBSCRIBED"
    async with relay.store.read() as conn:
        letters = await deadletters.list_open(conn)
    # One job of three refused, the two good ones sent again together.
    assert subscription_requests(sim) == {"bulk_subscribe_profiles": {"202": 1, "400": 1}}
    # Its subscription, and the profile properties Klaviyo refuses for the same address.
    assert [letter.reason for letter in letters] == ["400 invalid"] * 2


async def test_unsubscriptions_go_100_a_job_through_server_errors(
    relay: RunningService, sim: KlaviyoSimServer
) -> None:
    """150 unsubscriptions in one claim: two jobs, retried through 5xx until all land."""
    sim.sim.set_faults(Faults.from_json({"rate_500": 0.3}, sim.sim.faults))
    await enqueue(relay, [item for n in range(150) for item in live_items(n, "unsubscribed")])
    await settle(relay)
    stats = sim.sim.stats()
    assert stats["requests"]["bulk_unsubscribe_profiles"]["202"] == 2
    assert stats["faults_injected"]
    assert all(
        (consent(sim, "email", email=f"c{n}@example.com") or {}).get("consent") == "UNSUBSCRIBED"
        for n in range(150)
    )
    await assert_no_dead_letters(relay)


async def test_a_revoked_key_pauses_consent_until_a_probe_gets_through(
    relay: RunningService, sim: KlaviyoSimServer, client: httpx.AsyncClient
) -> None:
    """401: the account pauses with the change kept; once the key works, it is delivered."""
    sim.sim.set_faults(Faults.from_json({"revoked": True}, sim.sim.faults))
    await send(client, relay, EMAIL_TOPIC, email_change("subscribed", 0))
    await eventually(lambda: _paused(relay))
    sim.sim.set_faults(Faults.from_json({"revoked": False}, sim.sim.faults))
    await settle(relay)
    assert (consent(sim, "email", email=EMAIL) or {})["consent"] == "SUBSCRIBED"
    assert not await _paused(relay)
    await assert_no_dead_letters(relay)


async def _paused(relay: RunningService) -> bool:
    return bool((await relay.service.status())["delivery"]["paused"])


async def test_the_simulator_refuses_what_klaviyo_refuses(sim: KlaviyoSimServer) -> None:
    """consented_at outside a historical import, a historical one without it, 101 unsubscribes."""
    headers = {
        "Authorization": "Klaviyo-API-Key pk_sim_demo",
        "revision": "2026-07-15",
        "Content-Type": "application/vnd.api+json",
    }

    def job(kind: str, profiles: list[dict[str, Any]], **attributes: Any) -> dict[str, Any]:
        data = [{"type": "profile", "attributes": profile} for profile in profiles]
        return {"data": {"type": kind, "attributes": {"profiles": {"data": data}, **attributes}}}

    consented = {"consent": "SUBSCRIBED", "consented_at": "2025-01-01T00:00:00Z"}
    live_with_time = job(
        "profile-subscription-bulk-create-job",
        [{"email": EMAIL, "subscriptions": {"email": {"marketing": consented}}}],
    )
    historical_without = job(
        "profile-subscription-bulk-create-job",
        [{"email": EMAIL, "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}],
        historical_import=True,
    )
    unsubscribe = {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}
    too_many = job(
        "profile-subscription-bulk-delete-job",
        [{"email": f"p{n}@example.com", "subscriptions": unsubscribe} for n in range(101)],
    )
    sms_without_phone = job(
        "profile-subscription-bulk-delete-job",
        [{"email": EMAIL, "subscriptions": {"sms": {"marketing": {"consent": "UNSUBSCRIBED"}}}}],
    )
    create = f"{sim.url}/api/profile-subscription-bulk-create-jobs"
    delete = f"{sim.url}/api/profile-subscription-bulk-delete-jobs"
    async with httpx.AsyncClient(headers=headers) as http:
        for url, body, pointer in (
            (create, live_with_time, "/subscriptions/email/marketing/consented_at"),
            (create, historical_without, "/subscriptions/email/marketing/consented_at"),
            (delete, too_many, "/data/attributes/profiles/data"),
            (delete, sms_without_phone, "/data/attributes/profiles/data/0/attributes"),
        ):
            response = await http.post(url, json=body)
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["source"]["pointer"].endswith(pointer)
        historical = job(
            "profile-subscription-bulk-create-job",
            [{"email": EMAIL, "subscriptions": {"email": {"marketing": consented}}}],
            historical_import=True,
        )
        accepted = await http.post(create, json=historical)
        assert accepted.status_code == 202
        assert accepted.content == b""
        listed = (await http.get(f"{sim.url}/_sim/subscriptions")).json()
    assert listed["count"] == 1
    assert listed["data"][0]["consent"]["email"]["historical_import"] is True
