"""Backfill and catch-up bring Shopify's marketing consent to Klaviyo: history as a historical
import with the past consent time, a change missed while down as the live change it was, and
never over a newer change a webhook brought."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tests.integration.shopify_admin.support import (
    SHOP,
    TOKEN,
    AdminSimServer,
    admin_sim,
    relay_on,
    relay_settings,
)
from tests.support.harness import (
    WEBHOOK_SECRET,
    KlaviyoSimServer,
    RunningService,
    drained,
    eventually,
    free_port,
    klaviyo_sim,
    post_webhook,
)

from shoprelay.config import Settings
from shoprelay.mapping.shopify_fields import ShopifyMetrics
from shoprelay.sim import shopify as sender
from shoprelay.sim.shopify_payloads import stamp
from shoprelay.sources.shopify.admin import shopstate
from shoprelay.sources.shopify.admin.backfill import run_backfill
from shoprelay.sources.shopify.admin.client import AdminClient
from shoprelay.sources.shopify.consent import EMAIL_TOPIC
from shoprelay.store.receipts import outcomes_of

LIST_ID = "LsTBack1"
NOW = datetime.now(UTC)


@dataclass
class Shop:
    """The simulated shop and Klaviyo, and shoprelay serving them while it runs."""

    shop: AdminSimServer
    klaviyo: KlaviyoSimServer
    http: httpx.AsyncClient
    settings: Settings
    running: RunningService | None = None

    @property
    def relay(self) -> RunningService:
        assert self.running is not None, "shoprelay is down"
        return self.running

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[RunningService]:
        async with relay_on(self.settings, free_port()) as relay:
            self.running = relay
            try:
                yield relay
            finally:
                self.running = None

    def customers(self) -> dict[int, dict[str, Any]]:
        return {
            cid: self.shop.sim.shop.customer_payload(cid) for cid in self.shop.sim.shop.customers
        }

    def with_both(self) -> list[int]:
        """Customers with an email and a phone, oldest first."""
        found = self.customers()
        return [
            cid
            for cid in self.shop.sim.shop.customer_ids
            if found[cid].get("email") and found[cid].get("phone")
        ]

    def set_past_consent(self, cid: int, channel: str, state: str, days_ago: float) -> None:
        """The shop's consent as it stands before shoprelay is installed: no webhook."""
        at = stamp(NOW - timedelta(days=days_ago))
        consent = {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": at}
        if channel == "email":
            self.shop.sim.shop.email_consent[cid] = consent
        else:
            self.shop.sim.shop.sms_consent[cid] = consent | {"consent_collected_from": "other"}

    async def backfill(self) -> None:
        async with AdminClient(self.shop.url, TOKEN, "2026-10") as client:
            await run_backfill(
                self.relay.store, client, SHOP, ShopifyMetrics(), days=90, poll_seconds=0.05
            )
        await self.settle()

    async def settle(self) -> None:
        self.relay.service.dispatcher.wake()
        await eventually(lambda: drained(self.relay.service), timeout=20)

    async def webhook(self, topic: str, payload: dict[str, Any]) -> str:
        body = sender.encode(payload)
        headers = sender.headers(topic, body, WEBHOOK_SECRET.encode(), SHOP)
        response = await post_webhook(self.http, self.relay.url, body, headers)
        assert response.status_code == 200, response.text
        return str(response.json()["outcome"])

    def consent(self, channel: str, address: str) -> dict[str, Any] | None:
        """Klaviyo's record of one address's consent on a channel."""
        key = "email" if channel == "email" else "phone_number"
        profile = self.klaviyo.sim.profiles.find({key: address})
        record = profile and self.klaviyo.sim.subscriptions.consent(profile.id, channel)
        return record.to_json() if record else None

    def subscribed(self, channel: str) -> dict[str, dict[str, Any]]:
        """Every address Klaviyo holds as subscribed on the channel, with its record."""
        key = "email" if channel == "email" else "phone_number"
        found = {}
        for profile in self.klaviyo.sim.all_profiles():
            record = self.klaviyo.sim.subscriptions.consent(profile.id, channel)
            if record and record.consent == "SUBSCRIBED":
                found[str(profile.attributes.get(key)).lower()] = record.to_json()
        return found

    def expected(self, channel: str) -> dict[str, str]:
        """What the shop holds as subscribed: address -> consent time."""
        states = (
            self.shop.sim.shop.email_consent
            if channel == "email"
            else self.shop.sim.shop.sms_consent
        )
        customers, key = self.customers(), "email" if channel == "email" else "phone"
        return {
            str(customers[cid][key]).lower(): consent["consent_updated_at"]
            for cid, consent in states.items()
            if consent["state"] == "subscribed" and customers[cid].get(key)
        }


@asynccontextmanager
async def a_shop(database_url: str, **settings: Any) -> AsyncIterator[Shop]:
    """A shop with 60 days of history, and its Klaviyo: shoprelay is not running yet."""
    async with (
        klaviyo_sim() as klaviyo,
        admin_sim(seed_orders=40, seed_days=60) as shop,
        httpx.AsyncClient(timeout=10) as http,
    ):
        config = relay_settings(
            database_url,
            klaviyo,
            shop,
            KLAVIYO_LIST_ID=LIST_ID,
            SHOPIFY_BACKFILL_ON_FIRST_START="false",
            **({"SHOPIFY_CATCHUP_INTERVAL": 3600} | settings),
        )
        yield Shop(shop, klaviyo, http, config)


def same_moment(klaviyo_time: str | None, shopify_time: str) -> bool:
    return klaviyo_time is not None and datetime.fromisoformat(
        klaviyo_time
    ) == datetime.fromisoformat(shopify_time)


async def test_a_backfill_subscribes_exactly_the_subscribed_as_history(database_url: str) -> None:
    async with a_shop(database_url) as world, world.serving():
        both = world.with_both()
        assert len(both) >= 3
        states = [
            ("subscribed", "subscribed"),
            ("unsubscribed", "pending"),
            ("pending", "unsubscribed"),
        ]
        for cid, (email, sms) in zip(both, states, strict=False):
            world.set_past_consent(cid, "email", email, days_ago=20)
            world.set_past_consent(cid, "sms", sms, days_ago=19)
        customers = world.customers()

        await world.backfill()

        for channel in ("email", "sms"):
            expected = world.expected(channel)
            assert expected, channel  # the seed has subscribers, and we added one on each
            found = world.subscribed(channel)
            assert set(found) == set(expected), channel
            for address, record in found.items():
                assert record["historical_import"] is True
                assert same_moment(record["consented_at"], expected[address]), (address, record)
        # Unsubscribed in Shopify: unsubscribed in Klaviyo too; pending asks for nothing.
        unsubscribed_email, unsubscribed_sms = (
            customers[both[1]]["email"],
            customers[both[2]]["phone"],
        )
        assert (world.consent("email", unsubscribed_email) or {})["consent"] == "UNSUBSCRIBED"
        assert (world.consent("sms", unsubscribed_sms) or {})["consent"] == "UNSUBSCRIBED"
        assert world.consent("sms", customers[both[1]]["phone"]) is None
        profile = world.klaviyo.sim.profiles.find({"email": customers[both[0]]["email"]})
        assert profile is not None
        assert world.klaviyo.sim.subscriptions.lists_of(profile.id) == [LIST_ID]
        assert profile.attributes["properties"]["Accepts Marketing"] is True
        requests = world.klaviyo.sim.stats()["requests"]
        assert all(set(requests[name]) == {"202"} for name in requests if "subscribe" in name)


def email_webhook(cid: int, email: str, state: str, at: datetime) -> dict[str, Any]:
    consent = {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": stamp(at)}
    return {"customer_id": cid, "email_address": email, "email_marketing_consent": consent}


async def test_the_backfill_never_overrides_or_repeats_what_webhooks_brought(
    database_url: str,
) -> None:
    async with a_shop(database_url) as world, world.serving():
        newer, same, later, *_ = world.with_both()
        customers = world.customers()
        for cid in (newer, same, later):
            world.set_past_consent(cid, "email", "subscribed", days_ago=10)
        # Unsubscribed after the backfill's snapshot was taken: its webhook came first.
        assert (
            await world.webhook(
                EMAIL_TOPIC, email_webhook(newer, customers[newer]["email"], "unsubscribed", NOW)
            )
            == "processed"
        )
        # The very state the shop holds, delivered live by its webhook at the time.
        held = world.shop.sim.shop.email_consent[same]
        payload = {
            "customer_id": same,
            "email_address": customers[same]["email"],
            "email_marketing_consent": held,
        }
        assert await world.webhook(EMAIL_TOPIC, payload) == "processed"
        await world.settle()

        await world.backfill()

        assert (world.consent("email", customers[newer]["email"]) or {})[
            "consent"
        ] == "UNSUBSCRIBED"
        kept = world.consent("email", customers[same]["email"]) or {}
        assert kept["consent"] == "SUBSCRIBED"
        assert kept["historical_import"] is False  # not sent again as history
        async with world.relay.store.read() as conn:
            assert (await outcomes_of(conn, f"backfill:email_consent:{newer}:"))["stale"] == 1
        # And a webhook older than what the backfill applied is stale in turn.
        older = NOW - timedelta(days=11)
        stale = email_webhook(later, customers[later]["email"], "unsubscribed", older)
        assert await world.webhook(EMAIL_TOPIC, stale) == "stale"
        await world.settle()
        assert (world.consent("email", customers[later]["email"]) or {})["consent"] == "SUBSCRIBED"


async def _last_catchup(world: Shop) -> str | None:
    report = await shopstate.read(world.relay.store, SHOP, "report")
    return (report.get("last_catchup") or {}).get("at")


async def test_catch_up_brings_a_consent_change_missed_while_down(database_url: str) -> None:
    async with a_shop(database_url, SHOPIFY_CATCHUP_INTERVAL=2) as world:
        async with world.serving():
            await eventually(lambda: _last_catchup(world), timeout=20)
        # Down: no webhook reaches shoprelay (none is even subscribed), and the shop goes on.
        changed, old_subscriber, leaving, *_ = world.with_both()[::-1]
        world.set_past_consent(old_subscriber, "email", "subscribed", days_ago=30)
        world.set_past_consent(leaving, "email", "subscribed", days_ago=30)
        consent = {"email": "SUBSCRIBED", "sms": "SUBSCRIBED"}
        await world.shop.control("POST", f"/customers/{changed}/consent", consent)
        await world.shop.control("POST", f"/customers/{old_subscriber}/update", {})
        await world.shop.control("POST", f"/customers/{leaving}/consent", {"email": "UNSUBSCRIBED"})
        customers = world.customers()
        email, phone = customers[changed]["email"], customers[changed]["phone"]

        async with world.serving():
            # The first round runs at once on start.
            await eventually(lambda: world.consent("sms", phone), timeout=20)
            await eventually(lambda: world.consent("email", email), timeout=20)
            await world.settle()

        for channel, address in (("email", email), ("sms", phone)):
            record = world.consent(channel, address) or {}
            assert record["consent"] == "SUBSCRIBED"
            # As the missed webhook would have been: live, so the list's opt-in and flows apply.
            assert record["historical_import"] is False
        # A customer updated meanwhile, whose consent is older than the gap: history.
        history = world.consent("email", customers[old_subscriber]["email"]) or {}
        assert history["consent"] == "SUBSCRIBED"
        assert history["historical_import"] is True
        held = world.shop.sim.shop.email_consent[old_subscriber]["consent_updated_at"]
        assert same_moment(history["consented_at"], held)
        left = world.consent("email", customers[leaving]["email"]) or {}
        assert left["consent"] == "UNSUBSCRIBED"
