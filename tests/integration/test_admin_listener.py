"""The admin listener over real sockets: apart from the webhook port, behind ADMIN_TOKEN
when one is set, and its actions refused without their CSRF token."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.harness import (
    WEBHOOK_SECRET,
    KlaviyoSimServer,
    RunningService,
    eventually,
    service_settings,
    shoprelay_service,
)
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.sim import shopify as sender
from shoprelay.sim.shopify_orders import fake_order
from shoprelay.sim.shopify_payloads import fake_customer

TOKEN = "admin-token-for-tests-0123456789"
SHOP = "admin-shop.myshopify.com"
ADMIN_PATHS = ("/readyz", "/status", "/metrics", "/", "/api/overview", "/api/dead-letters")


@pytest.fixture
async def guarded(tmp_path: Path, sim: KlaviyoSimServer) -> AsyncIterator[RunningService]:
    """shoprelay with ADMIN_TOKEN set, on SQLite: the rules do not depend on the database."""
    settings = service_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}", sim.url, ADMIN_TOKEN=TOKEN
    )
    async with shoprelay_service(settings) as running:
        yield running


async def unprocessable(relay: RunningService, topic: str, webhook_id: str) -> None:
    """A signed webhook whose body is not JSON: kept as a dead letter."""
    body = b'{"id": 1, "email": "jane@example.com", '
    headers = sender.headers(topic, body, WEBHOOK_SECRET.encode(), SHOP, webhook_id)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{relay.url}/webhooks/shopify", content=body, headers=headers)
    assert response.status_code == 200, response.text


async def signed_in(client: httpx.AsyncClient, relay: RunningService) -> str:
    """Sign in with the token; the dashboard page's CSRF token."""
    response = await client.post(f"{relay.admin_url}/login", data={"token": TOKEN})
    assert response.status_code == 303
    return csrf_of(await client.get(f"{relay.admin_url}/"))


def csrf_of(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_the_webhook_port_serves_the_webhook_and_healthz_only(relay: RunningService) -> None:
    """Status, readiness, metrics and the dashboard are not on the public port."""
    async with httpx.AsyncClient(base_url=relay.url) as client:
        assert (await client.get("/healthz")).status_code == 200
        for path in (*ADMIN_PATHS, "/login", "/fragments/overview"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.post("/api/resume")).status_code == 404


async def test_the_admin_port_answers_on_loopback_without_a_token(relay: RunningService) -> None:
    """No token set, loopback: readiness, status, metrics and the page answer."""
    async with httpx.AsyncClient(base_url=relay.admin_url) as client:
        assert (await client.get("/readyz")).json()["ready"] is True
        assert "outbox" in (await client.get("/status")).json()
        assert "shoprelay_webhooks_total" in (await client.get("/metrics")).text
        page = await client.get("/")
    assert 'id="health"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


async def test_with_a_token_set_every_path_asks_for_it(guarded: RunningService) -> None:
    """Without the bearer token, or with another, the API is 401 and the page sends to the
    sign-in form; with it, all answer."""
    async with httpx.AsyncClient(base_url=guarded.admin_url) as client:
        for path in ADMIN_PATHS[:3] + ADMIN_PATHS[4:]:
            assert (await client.get(path)).status_code == 401, path
            wrong = {"Authorization": f"Bearer {TOKEN[:-1]}x"}
            assert (await client.get(path, headers=wrong)).status_code == 401, path
            right = {"Authorization": f"Bearer {TOKEN}"}
            assert (await client.get(path, headers=right)).status_code == 200, path
        page = await client.get("/")
    assert page.status_code == 303
    assert page.headers["location"] == "/login"


async def test_sign_in_sets_a_strict_http_only_session(guarded: RunningService) -> None:
    """A wrong token is refused; the right one gives a cookie scripts and other sites cannot use."""
    async with httpx.AsyncClient(base_url=guarded.admin_url) as client:
        refused = await client.post("/login", data={"token": "guess"})
        assert refused.status_code == 401
        assert "not the admin token" in refused.text
        assert "set-cookie" not in refused.headers
        accepted = await client.post("/login", data={"token": TOKEN})
        assert accepted.status_code == 303
        cookie = accepted.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert (await client.get("/status")).status_code == 200


async def test_actions_need_the_pages_csrf_token(guarded: RunningService) -> None:
    """A signed-in browser's POST without the CSRF token, with a wrong one, or from another
    site is refused and changes nothing; a script's bearer token needs none."""
    await unprocessable(guarded, "orders/create", "csrf-1")
    purge = {"filter": {}}
    async with httpx.AsyncClient(base_url=guarded.admin_url) as client:
        csrf = await signed_in(client, guarded)
        for headers in (
            {},
            {"X-CSRF-Token": csrf[:-1] + ("1" if csrf.endswith("0") else "0")},
            {"X-CSRF-Token": csrf, "Origin": "https://elsewhere.example"},
        ):
            answer = await client.post("/api/dead-letters/purge", json=purge, headers=headers)
            assert answer.status_code == 403, headers
        assert (await client.get("/status")).json()["dead_letters"]["open"] == 1
        answer = await client.post(
            "/api/dead-letters/purge", json=purge, headers={"X-CSRF-Token": csrf}
        )
        assert answer.json() == {"purged": 1}
        assert (await client.get("/api/resume")).status_code == 405
    async with httpx.AsyncClient(base_url=guarded.admin_url) as script:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await script.post("/api/resume", headers=bearer)).json() == {"cleared": 0}


async def test_without_a_token_actions_still_need_the_csrf_token(relay: RunningService) -> None:
    """On loopback with no token, another site's page could still post to the browser's
    localhost: an action needs the token the dashboard page carries."""
    async with httpx.AsyncClient(base_url=relay.admin_url) as client:
        assert (await client.post("/api/resume")).status_code == 403
        csrf = csrf_of(await client.get("/"))
        answer = await client.post("/api/resume", headers={"X-CSRF-Token": csrf})
    assert answer.json() == {"cleared": 0}


async def test_dead_letters_filter_show_masked_and_purge_all_matching(
    relay: RunningService,
) -> None:
    """A topic filter picks its letters; the detail masks the email unless asked; a purge of
    all matching leaves the others."""
    for n, topic in enumerate(("orders/create", "orders/create", "customers/update")):
        await unprocessable(relay, topic, f"filter-{n}")
    async with httpx.AsyncClient(base_url=relay.admin_url) as client:
        csrf = csrf_of(await client.get("/"))
        listing: dict[str, Any] = (
            await client.get("/api/dead-letters", params={"topic": "orders/create"})
        ).json()
        assert listing["matching"] == 2
        assert listing["facets"]["topic"] == ["customers/update", "orders/create"]
        first = listing["letters"][0]["id"]
        masked = (await client.get(f"/api/dead-letters/{first}")).text
        assert "jane@example.com" not in masked
        assert "j•••@example.com" in masked
        shown = (await client.get(f"/api/dead-letters/{first}", params={"unmask": "true"})).text
        assert "jane@example.com" in shown
        fragment = (await client.get("/fragments/dead-letters", params={"reason": "JSON"})).text
        assert fragment.count('name="pick"') == 3
        answer = await client.post(
            "/api/dead-letters/purge",
            json={"filter": {"topic": "orders/create"}},
            headers={"X-CSRF-Token": csrf},
        )
        assert answer.json() == {"purged": 2}
        left = (await client.get("/api/dead-letters")).json()["letters"]
    assert [letter["topic"] for letter in left] == ["customers/update"]


def test_serve_off_loopback_without_a_token_stops_with_the_variable_named(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin listener on a public interface with no token does not start."""
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", "whsec")
    monkeypatch.setenv("KLAVIYO_PRIVATE_API_KEY", "pk_secret_value_123")
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    result = cli.invoke(app, ["serve", "--port", "0", "--admin-host", "0.0.0.0"])  # noqa: S104
    assert result.exit_code == 1
    assert "ADMIN_TOKEN: required when the admin listener binds 0.0.0.0" in result.output


async def test_a_refused_key_shows_the_pipeline_stalled_and_resume_lifts_the_pause(
    relay: RunningService, sim: KlaviyoSimServer
) -> None:
    """Klaviyo refusing the key pauses delivery: the dashboard's banner says stalled, with
    the reason; its Resume action lifts the pause."""
    async with httpx.AsyncClient() as client:
        revoked = await client.post(f"{sim.url}/_sim/faults", json={"revoked": True})
        revoked.raise_for_status()
        rng = random.Random(18)
        body = sender.encode(fake_order(rng, fake_customer(rng), number=1818))
        headers = sender.headers("orders/create", body, WEBHOOK_SECRET.encode(), SHOP, "stall-1")
        sent = await client.post(f"{relay.url}/webhooks/shopify", content=body, headers=headers)
        assert sent.status_code == 200

        async def banner() -> str | None:
            text = (await client.get(f"{relay.admin_url}/fragments/overview")).text
            return text if "Pipeline stalled" in text else None

        stalled = await eventually(banner, timeout=15)
        assert "Delivery paused for default/*" in stalled
        assert 'data-action="/api/resume"' in stalled
        csrf = csrf_of(await client.get(f"{relay.admin_url}/"))
        resumed = await client.post(f"{relay.admin_url}/api/resume", headers={"X-CSRF-Token": csrf})
    assert resumed.json()["cleared"] >= 1
