"""Concurrent customer updates: the newest version of each customer is what Klaviyo keeps.

Shopify delivers on several connections at once, so an older `customers/update` can be
committed a few milliseconds after a newer one, by another writer or another process.
"""

from __future__ import annotations

import asyncio
import copy
import random
from typing import Any

import httpx
import pytest
from tests.scenarios.test_kill9 import SHOP, serve_process
from tests.support.harness import WEBHOOK_SECRET, eventually, free_port, klaviyo_sim

from shoprelay.sim import shopify as sender
from shoprelay.sim.shopify_payloads import fake_customer

CUSTOMERS = 300


def versions(rng: random.Random, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(newer, older) versions of one customer, a day apart, told apart by the first name."""
    newer = fake_customer(rng)
    # Identifiers of its own: the simulator merges profiles that share an email or phone.
    newer["email"], newer["phone"] = f"customer{index}@example.com", None
    newer["updated_at"] = "2026-03-02T10:00:00-05:00"
    newer["first_name"] = f"Newer{index}"
    older = copy.deepcopy(newer)
    older["updated_at"] = "2026-03-01T10:00:00-05:00"
    older["first_name"] = f"Older{index}"
    return newer, older


async def send_pair(
    port: int, index: int, newer: dict[str, Any], older: dict[str, Any]
) -> list[int]:
    """The newer version, then the older one a few milliseconds later on its own connection."""
    url = f"http://127.0.0.1:{port}/webhooks/shopify"

    async def post(payload: dict[str, Any], webhook_id: str, delay: float) -> int:
        body = sender.encode(payload)
        headers = sender.headers(
            "customers/update", body, WEBHOOK_SECRET.encode(), SHOP, webhook_id
        )
        async with httpx.AsyncClient(timeout=60) as client:
            await asyncio.sleep(delay)
            return (await client.post(url, content=body, headers=headers)).status_code

    return list(
        await asyncio.gather(post(newer, f"new-{index}", 0.0), post(older, f"old-{index}", 0.003))
    )


@pytest.mark.parametrize("workers", [2])
async def test_the_newest_customer_version_wins_under_concurrency(
    database_url: str, workers: int
) -> None:
    """300 customers, each updated twice at once, newer first: every profile ends newest."""
    rng = random.Random(14)
    pairs = [versions(rng, index) for index in range(CUSTOMERS)]
    port = free_port()
    async with klaviyo_sim() as sim, serve_process(database_url, sim.url, port, workers=workers):
        codes = await asyncio.gather(
            *(send_pair(port, i, newer, older) for i, (newer, older) in enumerate(pairs))
        )
        assert {code for pair in codes for code in pair} == {200}

        def first_names() -> dict[str, str]:
            return {
                str(profile.attributes.get("external_id")): str(
                    profile.attributes.get("first_name")
                )
                for profile in sim.sim.all_profiles()
            }

        await eventually(lambda: len(first_names()) == CUSTOMERS, timeout=60)
        # Let any older version still queued reach Klaviyo, if it ever would.
        await asyncio.sleep(3)
        names = first_names()
    stale = sorted(name for name in names.values() if name.startswith("Older"))
    assert stale == [], f"{len(stale)} of {CUSTOMERS} profiles ended with the older version"
