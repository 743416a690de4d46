"""The HTTP app: the Shopify webhook, health, readiness, status and Prometheus metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shoprelay.web.metrics import exposition, sample_value
from shoprelay.web.webhooks import WEBHOOK_PATH, shopify_endpoint

if TYPE_CHECKING:
    from shoprelay.service import Service


def create_app(service: Service) -> ASGIApp:
    """The webhook on the shortest path; everything else, and the lifespan, through FastAPI."""
    api = _operations_app(service)
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
            await api(scope, receive, send)

    return app


def _operations_app(service: Service) -> FastAPI:
    """Health, readiness, status and metrics, and the lifespan that runs the service."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="shoprelay", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        ready, detail = await service.ready()
        # The delivering process may be another one: its lanes are read from shared metrics.
        # Reported, not failed on: a receiver still stores webhooks while delivery fails, and
        # taking every receiver out of service would only make Shopify queue and retry.
        failing = sample_value("shoprelay_delivery_lanes_failing")
        if ready and failing > 0:
            detail = f"delivery failing in {failing:g} lane(s); see delivery.fault"
        document = {
            "ready": ready,
            "detail": detail,
            "delivery": {
                "lanes_failing": int(failing),
                "lane_restarts": int(sample_value("shoprelay_delivery_lane_restarts_total")),
            },
        }
        return JSONResponse(document, status_code=200 if ready else 503)

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return await service.status()

    @app.get("/metrics")
    async def metrics(_: Request) -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
