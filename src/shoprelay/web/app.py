"""The public webhook listener: `POST /webhooks/shopify` and `GET /healthz`, nothing else.

Everything an operator reads or does is on the admin listener (web/admin.py), which is
kept off the internet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from shoprelay.web.webhooks import WEBHOOK_PATH, shopify_endpoint

if TYPE_CHECKING:
    from shoprelay.service import Service


def create_app(service: Service) -> ASGIApp:
    """The webhook on the shortest path; /healthz, 404s and the lifespan through FastAPI."""
    rest = _health_app(service)
    webhook = shopify_endpoint(
        service.receiver,
        service.settings.SHOPIFY_MAX_BODY_BYTES,
        max_pending_bytes=service.settings.SHOPIFY_MAX_PENDING_BYTES,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # Shopify's POSTs skip routing, middleware and Starlette's request and response objects.
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            await webhook(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app


def _health_app(service: Service) -> FastAPI:
    """Liveness, and the lifespan that runs the service."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="shoprelay", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
