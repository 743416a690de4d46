"""Real servers for integration tests: the Klaviyo simulator and shoprelay itself."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from shoprelay.config import Settings, load_settings
from shoprelay.service import Service
from shoprelay.sim.klaviyo import create_app as create_klaviyo_sim
from shoprelay.sim.klaviyo_config import KlaviyoSimConfig
from shoprelay.sim.klaviyo_state import KlaviyoSim
from shoprelay.store.database import Store
from shoprelay.web.admin import create_admin_app
from shoprelay.web.app import create_app
from shoprelay.web.serving import serving

WEBHOOK_SECRET = "test-webhook-secret"
KLAVIYO_KEY = "pk_sim_demo"


@dataclass
class KlaviyoSimServer:
    url: str
    sim: KlaviyoSim


@asynccontextmanager
async def klaviyo_sim(config: KlaviyoSimConfig | None = None) -> AsyncIterator[KlaviyoSimServer]:
    app = create_klaviyo_sim(config or KlaviyoSimConfig())
    async with serving(app) as url:
        yield KlaviyoSimServer(url, app.state.sim)


def service_settings(database_url: str, klaviyo_url: str, **overrides: Any) -> Settings:
    """Settings for a service under test: fast backoff and probes, simulator URLs."""
    environ = {
        "DATABASE_URL": database_url,
        "KLAVIYO_API_URL": klaviyo_url,
        "KLAVIYO_PRIVATE_API_KEY": KLAVIYO_KEY,
        "SHOPIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "KLAVIYO_TIMEOUT_SECONDS": "2",
        "DELIVERY_BACKOFF_BASE_SECONDS": "0.05",
        "DELIVERY_BACKOFF_CAP_SECONDS": "0.5",
        "DELIVERY_AUTH_PROBE_SECONDS": "0.3",
        "DELIVERY_LEASE_SECONDS": "10",
    }
    return load_settings(environ | {key: str(value) for key, value in overrides.items()})


@dataclass
class RunningService:
    url: str  # the webhook listener
    service: Service
    admin_url: str = ""  # the admin listener: /readyz, /status, /metrics, the dashboard

    @property
    def store(self) -> Store:
        return self.service.store


@asynccontextmanager
async def shoprelay_service(settings: Settings) -> AsyncIterator[RunningService]:
    service = await Service.open(settings)
    try:
        async with serving(create_app(service)) as url, serving(create_admin_app(service)) as admin:
            yield RunningService(url, service, admin)
    finally:
        await service.close()


def free_port() -> int:
    """A port nothing listens on right now, for servers run as separate processes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def eventually(
    check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05
) -> Any:
    """Poll until `check()` returns something truthy; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


async def drained(service: Service) -> bool:
    """True when nothing is pending or in flight."""
    document = await service.status()
    return document["outbox"]["pending"] == 0 and document["outbox"]["in_flight"] == 0


async def post_webhook(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(f"{url}/webhooks/shopify", content=body, headers=headers)


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, within: float = 30.0) -> None:
    """Block until the server `process` runs answers /healthz; fail if it exits or is slow."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {within:g} s")
        time.sleep(0.1)
