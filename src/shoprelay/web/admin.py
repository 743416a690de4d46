"""The admin listener: readiness, status, metrics, the dashboard and its actions.

It listens on ADMIN_HOST:ADMIN_PORT, loopback by default, and asks for ADMIN_TOKEN whenever
one is set (web/auth.py). Under `serve` it runs in the delivering process, which knows the
Klaviyo budget in use and the background tasks; the metrics it shows are every process's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import JSONResponse, Response

from shoprelay.operations import dashboard, dead_letters
from shoprelay.operations.dashboard import ProcessView
from shoprelay.web import admin_actions, admin_pages
from shoprelay.web.admin_requests import cross_site, letter_detail, letter_filter
from shoprelay.web.auth import CSRF_HEADER, SESSION_COOKIE, AdminAuth, Caller
from shoprelay.web.charts import daily_deliveries, reconciliation
from shoprelay.web.metrics import exposition, sample_value
from shoprelay.web.rates import CounterRates

if TYPE_CHECKING:
    from shoprelay.service import Service

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class Admin:
    """What the admin routes share: the service, the access rules, rates and caches."""

    def __init__(self, service: Service) -> None:
        self.service = service
        settings = service.settings
        token = settings.ADMIN_TOKEN.get_secret_value() if settings.ADMIN_TOKEN else None
        self.auth = AdminAuth(token or None, settings.ADMIN_SESSION_HOURS * 3600)
        self.rates = CounterRates()
        self.daily = daily_deliveries(service)
        self.reconciled = reconciliation(service)
        self.started_at = time.time()

    def caller(self, request: Request) -> Caller:
        """Who calls; a request without the token (where one is set) is refused with 401."""
        found = self.auth.identify(
            request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
        )
        if found is None:
            raise HTTPException(401, "ADMIN_TOKEN required", {"WWW-Authenticate": "Bearer"})
        return found

    def acting(self, request: Request) -> Caller:
        """The caller of a state-changing request, refused without its CSRF token."""
        found = self.caller(request)
        csrf = request.headers.get(CSRF_HEADER)
        if not self.auth.may_act(found, csrf) or cross_site(request):
            raise HTTPException(403, "CSRF token missing or wrong: reload the dashboard")
        return found

    async def overview(self) -> dict[str, Any]:
        return await dashboard.overview(
            self.service.store,
            shipstation_enabled=self.service.settings.shipstation_enabled,
            process=self.process_view(),
            stall_minutes=self.service.settings.ADMIN_STALL_MINUTES,
        )

    def process_view(self) -> ProcessView:
        service = self.service
        limiter = service.dispatcher.limiter if service.background else None
        last = sample_value("shoprelay_delivery_last_delivered_timestamp_seconds")
        return ProcessView(
            budget=[use.as_json() for use in limiter.usage(time.time())] if limiter else [],
            rates=self.rates.per_minute(),
            last_delivered_at=last or None,
            stopped_tasks=service.stopped_tasks(),
            lanes_failing=int(sample_value("shoprelay_delivery_lanes_failing")),
            started_at=self.started_at,
        )


def create_admin_app(service: Service) -> FastAPI:
    """The admin app over a service someone else starts and stops."""
    admin = Admin(service)
    app = FastAPI(title="shoprelay admin", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guarded(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        # Only our own files, never inside another site's frame.
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    _api_routes(app, admin)
    admin_pages.add_routes(app, admin)
    admin_actions.add_routes(app, admin)
    return app


def _api_routes(app: FastAPI, admin: Admin) -> None:
    """Readiness, status, metrics and the dashboard's documents, for scripts and probes."""
    service = admin.service

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        admin.caller(request)
        ready, detail = await service.ready()
        # Reported, not failed on: receivers still store webhooks while delivery fails, and
        # taking them out of service would only make Shopify queue and retry.
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
    async def status(request: Request) -> dict[str, Any]:
        admin.caller(request)
        return await service.status()

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        admin.caller(request)
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/overview")
    async def overview(request: Request) -> dict[str, Any]:
        admin.caller(request)
        return await admin.overview()

    @app.get("/api/deliveries")
    async def deliveries(request: Request) -> dict[str, Any]:
        admin.caller(request)
        return await admin.daily.document()

    @app.get("/api/reconcile")
    async def reconcile(request: Request) -> dict[str, Any]:
        admin.caller(request)
        return await admin.reconciled.document()

    @app.get("/api/dead-letters")
    async def letters(request: Request) -> dict[str, Any]:
        admin.caller(request)
        return await dead_letters.listing(service.store, letter_filter(request.query_params))

    @app.get("/api/dead-letters/{letter_id}")
    async def letter(request: Request, letter_id: int, unmask: bool = False) -> Any:
        admin.caller(request)
        return await letter_detail(service.store, letter_id, unmask=unmask)
