"""The Klaviyo simulator over real sockets: auth, validation, dedup, limits, jobs and faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from shoprelay.sim.klaviyo import KlaviyoSim, KlaviyoSimConfig, RateLimit, create_app
from shoprelay.web.serving import serving

pytestmark = pytest.mark.integration

KEY = "pk_sim_demo"
HEADERS = {
    "Authorization": f"Klaviyo-API-Key {KEY}",
    "revision": "2026-07-15",
    "Content-Type": "application/vnd.api+json",
    "Accept": "application/vnd.api+json",
}
Client = httpx.AsyncClient
Connect = Callable[..., Any]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Serve a simulator built from a config; yields (client, sim) pairs, closed at the end."""
    opened: list[Any] = []

    async def open_sim(config: KlaviyoSimConfig | None = None) -> tuple[Client, KlaviyoSim]:
        app: Starlette = create_app(config)
        context = serving(app)
        base_url = await context.__aenter__()
        client = httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=10)
        opened.append((context, client))
        return client, app.state.sim

    yield open_sim
    for context, client in reversed(opened):
        await client.aclose()
        await context.__aexit__(None, None, None)


@pytest.fixture
async def klaviyo(connect: Connect) -> tuple[Client, KlaviyoSim]:
    """A simulator with the default config (spec limits, no faults)."""
    pair: tuple[Client, KlaviyoSim] = await connect()
    return pair


def event_body(**attributes: Any) -> dict[str, Any]:
    """A valid create_event body; keyword arguments override event attributes."""
    profile = attributes.pop("profile", {"email": "sarah.mason@klaviyo-demo.com"})
    return {
        "data": {
            "type": "event",
            "attributes": {
                "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
                "profile": {"data": {"type": "profile", "attributes": profile}},
                "properties": {"OrderId": "1001"},
                "time": "2026-07-20T14:03:11Z",
                "value": 129.9,
                "value_currency": "USD",
                "unique_id": "shopify:order:1001",
            }
            | attributes,
        }
    }


def bulk_event(**attributes: Any) -> dict[str, Any]:
    """One event resource of a bulk entry."""
    return {
        "type": "event",
        "attributes": {
            "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
            "properties": {"OrderId": "1"},
            "time": "2025-01-02T10:00:00Z",
        }
        | attributes,
    }


def bulk_body(*entries: tuple[dict[str, Any], list[dict[str, Any]]]) -> dict[str, Any]:
    """A bulk_create_events body from (profile attributes, events) pairs."""
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {
                "events-bulk-create": {
                    "data": [
                        {
                            "type": "event-bulk-create",
                            "attributes": {
                                "profile": {"data": {"type": "profile", "attributes": profile}},
                                "events": {"data": events},
                            },
                        }
                        for profile, events in entries
                    ]
                }
            },
        }
    }


def profile_body(**attributes: Any) -> dict[str, Any]:
    """A create_or_update_profile body."""
    return {"data": {"type": "profile", "attributes": attributes}}


def bulk_profiles_body(*profiles: dict[str, Any]) -> dict[str, Any]:
    """A bulk_import_profiles body."""
    resources = [{"type": "profile", "attributes": profile} for profile in profiles]
    return {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": resources}},
        }
    }


def pointers(response: httpx.Response) -> list[str]:
    """The source pointers of an error response, in order."""
    return [error["source"].get("pointer") for error in response.json()["errors"]]


async def test_missing_key_is_401_not_authenticated(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """A request without an Authorization header gets 401 not_authenticated."""
    client, _ = klaviyo
    response = await client.post("/api/events", json=event_body(), headers={"Authorization": ""})
    assert response.status_code == 401
    error = response.json()["errors"][0]
    assert error["code"] == "not_authenticated"
    assert set(error) == {"id", "status", "code", "title", "detail", "source", "links", "meta"}


async def test_wrong_key_is_401_authentication_failed(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """An unknown private key gets 401 authentication_failed and records nothing."""
    client, sim = klaviyo
    headers = {"Authorization": "Klaviyo-API-Key pk_wrong"}
    response = await client.post("/api/events", json=event_body(), headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"
    assert sim.events == []


async def test_revoked_key_is_401_until_restored(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """While the key is revoked every call is 401; restoring it lets calls through again."""
    client, _ = klaviyo
    assert (await client.post("/_sim/faults", json={"revoked": True})).json()["revoked"] is True
    assert (await client.post("/api/events", json=event_body())).status_code == 401
    await client.post("/_sim/faults", json={"revoked": False})
    assert (await client.post("/api/events", json=event_body())).status_code == 202


async def test_missing_or_malformed_revision_is_400(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """The revision header is required and must look like YYYY-MM-DD[.suffix]."""
    client, _ = klaviyo
    for revision in ("", "July 2026", "2026-7-15"):
        response = await client.post(
            "/api/events", json=event_body(), headers={"revision": revision}
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["source"] == {"parameter": "revision"}
    response = await client.post(
        "/api/events", json=event_body(unique_id="b"), headers={"revision": "2026-07-15.pre"}
    )
    assert response.status_code == 202


async def test_wrong_content_type_is_415(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """A body that is not JSON:API (or plain JSON) gets 415; plain JSON is accepted."""
    client, _ = klaviyo
    response = await client.post(
        "/api/events", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["code"] == "unsupported_media_type"
    plain = await client.post(
        "/api/events", json=event_body(), headers={"Content-Type": "application/json"}
    )
    assert plain.status_code == 202


async def test_schema_error_points_at_the_field(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """An integer time and a missing metric name each get an `invalid` error at their pointer."""
    client, sim = klaviyo
    body = event_body(time=1721484191)
    body["data"]["attributes"]["metric"]["data"]["attributes"] = {}
    response = await client.post("/api/events", json=body)
    assert response.status_code == 400
    assert {error["code"] for error in response.json()["errors"]} == {"invalid"}
    assert pointers(response) == [
        "/data/attributes/metric/data/attributes/name",
        "/data/attributes/time",
    ]
    assert sim.events == []


async def test_event_rules_beyond_the_schema(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """Times before 1990 or over a year ahead, long metric names and 401 properties are 400."""
    client, _ = klaviyo
    cases = {
        "/data/attributes/time": event_body(time="1989-12-31T23:59:59Z"),
        "/data/attributes/properties": event_body(properties={f"p{i}": i for i in range(401)}),
    }
    future = event_body(time="2999-01-01T00:00:00Z")
    long_name = event_body()
    long_name["data"]["attributes"]["metric"]["data"]["attributes"]["name"] = "x" * 128
    cases["/data/attributes/metric/data/attributes/name"] = long_name
    for pointer, body in cases.items():
        response = await client.post("/api/events", json=body)
        assert (response.status_code, pointers(response)) == (400, [pointer])
    assert pointers(await client.post("/api/events", json=future)) == ["/data/attributes/time"]


async def test_phone_must_be_e164(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """A phone number that is not E.164 is 400 at /data/attributes/phone_number."""
    client, _ = klaviyo
    response = await client.post(
        "/api/profile-import", json=profile_body(email="a@example.com", phone_number="555-0100")
    )
    assert response.status_code == 400
    assert pointers(response) == ["/data/attributes/phone_number"]


async def test_profile_needs_an_identifier(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """A profile without email, phone or external_id is 400: one or more identifiers is required."""
    client, _ = klaviyo
    response = await client.post("/api/profile-import", json=profile_body(first_name="Ann"))
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["detail"] == "One or more identifiers is required"
    assert error["source"]["pointer"] == "/data/attributes"
    event = await client.post("/api/events", json=event_body(profile={"first_name": "Ann"}))
    assert pointers(event) == ["/data/attributes/profile/data/attributes"]


async def test_upsert_201_then_200_and_null_clears(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """profile-import creates (201), then updates (200); null clears a field, omission keeps it."""
    client, _ = klaviyo
    created = await client.post(
        "/api/profile-import",
        json=profile_body(email="a@example.com", first_name="Ann", last_name="Lee"),
    )
    assert created.status_code == 201
    profile = created.json()["data"]
    assert profile["type"] == "profile"
    assert profile["links"]["self"].endswith(f"{profile['id']}/")
    updated = await client.post(
        "/api/profile-import", json=profile_body(email="A@example.com", first_name=None)
    )
    assert updated.status_code == 200
    attributes = updated.json()["data"]["attributes"]
    assert updated.json()["data"]["id"] == profile["id"]
    assert (attributes["first_name"], attributes["last_name"]) == (None, "Lee")


async def test_identifiers_of_two_profiles_are_409(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """Email on one profile and phone on another gets 409 duplicate_profile with the other id."""
    client, _ = klaviyo
    await client.post("/api/profile-import", json=profile_body(email="a@example.com"))
    other = await client.post("/api/profile-import", json=profile_body(phone_number="+15005550006"))
    response = await client.post(
        "/api/profile-import",
        json=profile_body(email="a@example.com", phone_number="+15005550006"),
    )
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert (error["code"], error["title"]) == ("duplicate_profile", "Conflict.")
    assert error["meta"]["duplicate_profile_id"] == other.json()["data"]["id"]


async def test_repeated_unique_id_is_recorded_once(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """A repeated unique_id for the same profile and metric is recorded once; both get 202."""
    client, sim = klaviyo
    for _ in range(2):
        assert (await client.post("/api/events", json=event_body())).status_code == 202
    other_metric = event_body()
    other_metric["data"]["attributes"]["metric"]["data"]["attributes"]["name"] = "Fulfilled Order"
    assert (await client.post("/api/events", json=other_metric)).status_code == 202
    assert [event.metric for event in sim.events] == ["Placed Order", "Fulfilled Order"]
    stats = (await client.get("/_sim/stats")).json()
    assert (stats["events_accepted"], stats["duplicates_ignored"]) == (2, 1)


async def test_without_unique_id_one_event_per_second(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """Without unique_id, events of one profile and metric in the same second merge into one."""
    client, sim = klaviyo
    for time in ("2026-07-20T14:03:11Z", "2026-07-20T14:03:11.600Z", "2026-07-20T14:03:12Z"):
        await client.post("/api/events", json=event_body(unique_id=None, time=time))
    assert [event.time.second for event in sim.events] == [11, 12]


async def test_bulk_rejects_every_bad_event_and_records_none(
    klaviyo: tuple[Client, KlaviyoSim],
) -> None:
    """One invalid event fails the whole bulk request; each bad item gets its own pointer."""
    client, sim = klaviyo
    good = [bulk_event(unique_id=f"o{i}") for i in range(3)]
    body = bulk_body(
        ({"email": "a@example.com"}, good),
        (
            {"email": "b@example.com"},
            [bulk_event(time=12), bulk_event(time="1980-01-01T00:00:00Z")],
        ),
        ({"phone_number": "12345"}, [bulk_event()]),
    )
    response = await client.post("/api/event-bulk-create-jobs", json=body)
    assert response.status_code == 400
    entries = "/data/attributes/events-bulk-create/data"
    assert sorted(pointers(response)) == [
        f"{entries}/1/attributes/events/data/0/attributes/time",
        f"{entries}/1/attributes/events/data/1/attributes/time",
        f"{entries}/2/attributes/profile/data/attributes/phone_number",
    ]
    assert sim.events == []


async def test_bulk_repeated_unique_id_fails_request(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """A unique_id repeated for the same profile and metric within one bulk request is 400."""
    client, sim = klaviyo
    body = bulk_body(
        ({"email": "a@example.com"}, [bulk_event(unique_id="u1")]),
        ({"email": "A@example.com"}, [bulk_event(unique_id="u1")]),
    )
    response = await client.post("/api/event-bulk-create-jobs", json=body)
    assert response.status_code == 400
    assert pointers(response) == [
        "/data/attributes/events-bulk-create/data/1/attributes/events/data/0/attributes/unique_id"
    ]
    assert sim.events == []


async def test_bulk_records_every_event(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """A valid bulk request is 202 and records all events, with per-entry backfill."""
    client, sim = klaviyo
    body = bulk_body(
        ({"email": "a@example.com"}, [bulk_event(unique_id=f"a{i}") for i in range(500)]),
        ({"external_id": "shopify:2"}, [bulk_event(unique_id=f"b{i}") for i in range(500)]),
    )
    body["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["backfill"] = True
    response = await client.post("/api/event-bulk-create-jobs", json=body)
    assert (response.status_code, response.content) == (202, b"")
    assert len(sim.events) == 1000
    assert sum(event.backfill for event in sim.events) == 500
    too_many = bulk_body(({"email": "c@example.com"}, [bulk_event()] * 1001))
    response = await client.post("/api/event-bulk-create-jobs", json=too_many)
    assert pointers(response) == ["/data/attributes/events-bulk-create/data"]


# Long enough that a stalled CI machine still sees the job processing before it completes;
# the test polls for completion, so it costs this delay and no more.
JOB_DELAY_SECONDS = 3.0
JOB_DEADLINE_SECONDS = 15.0
# 4 polls a second stays inside get_bulk_import_profiles_job's 10/s and 150/min.
JOB_POLL_SECONDS = 0.25


async def job_status_after(client: Client, url: str, status: str) -> dict[str, Any]:
    """Poll the job until its status is no longer `status`; fail past the deadline."""
    deadline = asyncio.get_running_loop().time() + JOB_DEADLINE_SECONDS
    while True:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        attributes: dict[str, Any] = response.json()["data"]["attributes"]
        if attributes["status"] != status:
            return attributes
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"bulk job still {status!r} after {JOB_DEADLINE_SECONDS} s")
        await asyncio.sleep(JOB_POLL_SECONDS)


async def test_bulk_profile_job_lifecycle(connect: Connect) -> None:
    """A bulk import is queued, then processing, then complete; bad profiles are import errors."""
    client, sim = await connect(KlaviyoSimConfig(bulk_job_delay_seconds=JOB_DELAY_SECONDS))
    profiles = [{"email": f"p{i}@example.com"} for i in range(5)]
    profiles += [{"email": f"bad{i}@example.com", "phone_number": "0"} for i in range(130)]
    profiles.append({"first_name": "Nobody"})
    response = await client.post(
        "/api/profile-bulk-import-jobs", json=bulk_profiles_body(*profiles)
    )
    assert response.status_code == 202
    job = response.json()["data"]
    assert (job["attributes"]["status"], job["attributes"]["total_count"]) == ("queued", 136)
    url = f"/api/profile-bulk-import-jobs/{job['id']}"
    assert (await job_status_after(client, url, "queued"))["status"] == "processing"
    assert sim.all_profiles() == []  # valid profiles wait for the job to complete
    attributes = await job_status_after(client, url, "processing")
    assert (attributes["status"], attributes["completed_count"], attributes["failed_count"]) == (
        "complete",
        5,
        131,
    )
    assert len(sim.all_profiles()) == 5
    errors, next_url = [], f"{url}/import-errors?page[size]=100"
    while next_url:
        page = (await client.get(next_url)).json()
        errors += page["data"]
        next_url = page["links"]["next"]
    assert len(errors) == 131
    last = errors[-1]["attributes"]
    assert last["source"]["pointer"] == "/data/attributes/profiles/data/135/attributes"
    assert last["original_payload"]["attributes"] == {"first_name": "Nobody"}
    oversized = await client.get(f"{url}/import-errors?page[size]=101")
    assert oversized.json()["errors"][0]["source"] == {"parameter": "page[size]"}


async def test_rate_limit_headers_then_429(connect: Connect) -> None:
    """Responses carry RateLimit-* headers until the burst window is full; then 429 Retry-After."""
    limits = {"create_event": RateLimit(burst=3, steady=100)}
    client, _ = await connect(KlaviyoSimConfig(limits=limits))
    first = await client.post("/api/events", json=event_body())
    assert first.headers["RateLimit-Limit"] == "100"
    assert first.headers["RateLimit-Remaining"] == "99"
    assert 0 < int(first.headers["RateLimit-Reset"]) <= 60
    for _ in range(2):
        await client.post("/api/events", json=event_body())
    throttled = await client.post("/api/events", json=event_body())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert "RateLimit-Limit" not in throttled.headers
    error = throttled.json()["errors"][0]
    assert (error["code"], error["detail"]) == (
        "throttled",
        "Request was throttled. Expected available in 1 second.",
    )
    stats = (await client.get("/_sim/stats")).json()
    assert stats["max_in_window"]["create_event"] == {"burst": 4, "steady": 4}
    assert stats["throttled"] == 1


async def test_steady_window_429_says_when(connect: Connect) -> None:
    """Past the steady limit, Retry-After counts down to the end of the 60-second window."""
    limits = {"create_or_update_profile": RateLimit(burst=10, steady=2)}
    client, _ = await connect(KlaviyoSimConfig(limits=limits))
    body = profile_body(email="a@example.com")
    statuses = [(await client.post("/api/profile-import", json=body)).status_code for _ in range(3)]
    assert statuses == [201, 200, 429]
    retry = await client.post("/api/profile-import", json=body)
    assert 55 <= int(retry.headers["Retry-After"]) <= 60


async def test_unenforced_limits_still_count_peaks(connect: Connect) -> None:
    """With enforce_limits off nothing is throttled, and the window peaks show the overrun."""
    limits = {"create_event": RateLimit(burst=1, steady=100)}
    client, _ = await connect(KlaviyoSimConfig(limits=limits, enforce_limits=False))
    responses = await asyncio.gather(
        *(client.post("/api/events", json=event_body()) for _ in range(5))
    )
    assert {response.status_code for response in responses} == {202}
    assert (await client.get("/_sim/stats")).json()["max_in_window"]["create_event"]["burst"] == 5


async def test_seeded_fault_fractions(connect: Connect) -> None:
    """Fault fractions hold roughly over many requests, and a seed repeats them exactly."""
    config = KlaviyoSimConfig(
        limits={"create_event": RateLimit(10_000, 10_000)}, rate_500=0.2, rate_503=0.1, seed=7
    )
    runs = []
    for _ in range(2):
        client, _sim = await connect(config)
        statuses = [
            (await client.post("/api/events", json=event_body(unique_id=str(i)))).status_code
            for i in range(300)
        ]
        runs.append(statuses)
    assert runs[0] == runs[1]
    assert 40 <= runs[0].count(500) <= 80
    assert 15 <= runs[0].count(503) <= 45
    assert runs[0].count(500) + runs[0].count(503) + runs[0].count(202) == 300


async def test_error_after_accept_records_the_event(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """An error after accept answers 5xx but keeps the event, so only unique_id makes retry safe."""
    client, sim = klaviyo
    await client.post("/_sim/faults", json={"rate_error_after_accept": 1.0})
    response = await client.post("/api/events", json=event_body())
    assert response.status_code in (500, 503)
    await client.post("/_sim/faults", json={"rate_error_after_accept": 0.0})
    assert (await client.post("/api/events", json=event_body())).status_code == 202
    assert len(sim.events) == 1
    assert sim.event_log.duplicates_ignored == 1


async def test_throttle_slow_and_timeout_faults(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """Injected 429s carry Retry-After; slow answers late but fine; a timeout hangs, then 504."""
    client, sim = klaviyo
    await client.post("/_sim/faults", json={"rate_429": 1.0})
    throttled = await client.post("/api/events", json=event_body())
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
    await client.post("/_sim/faults", json={"rate_429": 0, "rate_slow": 1, "slow_seconds": 0.2})
    slow = await client.post("/api/events", json=event_body())
    assert slow.status_code == 202
    assert slow.elapsed.total_seconds() >= 0.2
    await client.post(
        "/_sim/faults", json={"rate_slow": 0, "rate_timeout": 1, "timeout_seconds": 0.6}
    )
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/api/events", json=event_body(unique_id="t"), timeout=0.3)
    assert [event.unique_id for event in sim.events] == ["shopify:order:1001"]


async def test_control_api_lists_and_resets(klaviyo: tuple[Client, KlaviyoSim]) -> None:
    """The control API lists events, profiles and stats, rejects bad faults, and resets."""
    client, _ = klaviyo
    await client.post("/api/events", json=event_body(backfill=True))
    events = (await client.get("/_sim/events")).json()
    assert events["count"] == 1
    event = events["data"][0]
    assert event["profile"] == {"email": "sarah.mason@klaviyo-demo.com"}
    assert (event["metric"], event["value"], event["backfill"]) == ("Placed Order", 129.9, True)
    assert (await client.get("/_sim/events?metric=Other")).json()["count"] == 0
    profiles = (await client.get("/_sim/profiles")).json()["data"]
    assert profiles[0]["attributes"]["last_event_date"] == "2026-07-20T14:03:11+00:00"
    stats = (await client.get("/_sim/stats")).json()
    assert stats["requests"]["create_event"] == {"202": 1}
    assert (await client.post("/_sim/faults", json={"rate_500": 2})).status_code == 400
    assert (await client.post("/_sim/faults", json={"nope": 1})).status_code == 400
    await client.post("/_sim/reset")
    after = (await client.get("/_sim/stats")).json()
    assert (after["events_accepted"], after["profiles"], after["requests"]) == (0, 0, {})
