"""The simulator's data-privacy deletion jobs over real sockets: validation, limits, deletion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shoprelay.sim.klaviyo import KlaviyoSim, KlaviyoSimConfig, RateLimit, create_app
from shoprelay.web.serving import serving

HEADERS = {
    "Authorization": "Klaviyo-API-Key pk_sim_demo",
    "revision": "2026-07-15",
    "Content-Type": "application/vnd.api+json",
}
PATH = "/api/data-privacy-deletion-jobs"


@pytest.fixture(params=["roomy", "spec"])
async def klaviyo(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[httpx.AsyncClient, KlaviyoSim]]:
    """A simulator with the spec's limits, or room for a test's many requests."""
    roomy = {"request_profile_deletion": RateLimit(burst=100, steady=1000)}
    config = KlaviyoSimConfig(limits=roomy) if request.param == "roomy" else KlaviyoSimConfig()
    app = create_app(config)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, headers=HEADERS) as client:
        yield client, app.state.sim


def deletion(attributes: dict[str, Any], profile_id: str | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {"type": "profile", "attributes": attributes}
    if profile_id is not None:
        profile["id"] = profile_id
    job = {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": profile}}}
    return {"data": job}


def event(email: str, unique_id: str) -> dict[str, Any]:
    profile = {"data": {"type": "profile", "attributes": {"email": email}}}
    metric = {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}}
    attributes = {"profile": profile, "metric": metric, "properties": {}, "unique_id": unique_id}
    return {"data": {"type": "event", "attributes": attributes}}


async def settle() -> None:
    """Deletions run on the loop after the 202, as Klaviyo's run after it answers."""
    await asyncio.sleep(0.05)


@pytest.mark.parametrize("klaviyo", ["roomy"], indirect=True)
async def test_a_deletion_removes_every_matching_profile_and_its_events(
    klaviyo: tuple[httpx.AsyncClient, KlaviyoSim],
) -> None:
    """202 with no body; the profile, its identifiers and events go; others stay."""
    client, sim = klaviyo
    for email, unique_id in (
        ("gone@example.com", "a"),
        ("gone@example.com", "b"),
        ("kept@example.com", "c"),
    ):
        assert (await client.post("/api/events", json=event(email, unique_id))).status_code == 202
    answer = await client.post(PATH, json=deletion({"email": "Gone@Example.com"}))
    assert (answer.status_code, answer.content) == (202, b"")
    await settle()
    assert [p.attributes["email"] for p in sim.all_profiles()] == ["kept@example.com"]
    assert [e.unique_id for e in sim.events] == ["c"]
    listed = (await client.get("/_sim/deletions")).json()["data"]
    assert [(d["identifier"], d["events_deleted"], d["done"]) for d in listed] == [
        ("email", 2, True)
    ]
    again = await client.post("/api/events", json=event("gone@example.com", "a"))
    assert again.status_code == 202
    assert len(sim.events) == 2  # the deleted event's dedup key went with it


@pytest.mark.parametrize("klaviyo", ["roomy"], indirect=True)
async def test_a_deletion_takes_exactly_one_well_formed_identifier(
    klaviyo: tuple[httpx.AsyncClient, KlaviyoSim],
) -> None:
    """None, two, a malformed email or a phone not in E.164 is a 400 naming the field."""
    client, sim = klaviyo
    bodies = {
        "none": deletion({}),
        "two": deletion({"email": "a@example.com", "phone_number": "+15005550006"}),
        "id and email": deletion({"email": "a@example.com"}, profile_id="01ABC"),
        "email": deletion({"email": "not-an-address"}),
        "phone": deletion({"phone_number": "555-0100"}),
        "type": {"data": {"type": "profile", "attributes": {}}},
    }
    pointers = {}
    for name, body in bodies.items():
        answer = await client.post(PATH, json=body)
        assert answer.status_code == 400, name
        pointers[name] = answer.json()["errors"][0]["source"]["pointer"]
    assert pointers["email"].endswith("/attributes/email")
    assert pointers["phone"].endswith("/attributes/phone_number")
    assert sim.deletions == []
    by_phone = await client.post(PATH, json=deletion({"phone_number": "+15005550006"}))
    by_id = await client.post(PATH, json=deletion({}, profile_id="01ABC"))
    assert (by_phone.status_code, by_id.status_code) == (202, 202)


@pytest.mark.parametrize("klaviyo", ["spec"], indirect=True)
async def test_deletions_are_limited_to_3_a_second_and_60_a_minute(
    klaviyo: tuple[httpx.AsyncClient, KlaviyoSim],
) -> None:
    """The spec's limits: the fourth request in a burst is throttled."""
    client, sim = klaviyo
    assert sim.config.limit_for("request_profile_deletion") == RateLimit(burst=3, steady=60)
    body = deletion({"email": "a@example.com"})
    statuses = [(await client.post(PATH, json=body)).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
