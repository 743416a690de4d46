"""A ShipStation V1 API simulator: a real HTTP server for the list endpoints a poller reads."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shoprelay.sim.shipstation_control import CONTROL_ROUTES
from shoprelay.sim.shipstation_query import (
    FULFILLMENTS,
    ORDERS,
    SHIPMENTS,
    QueryError,
    listing,
)
from shoprelay.sim.shipstation_state import ShipStationSim, ShipStationSimConfig, SimClock

__all__ = ["ShipStationSim", "ShipStationSimConfig", "SimClock", "create_app"]

Respond = Callable[[ShipStationSim, Request], Response]


class Refusal(Exception):
    """A response ShipStation gives instead of the resource: 401, 429, 400."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authenticate(sim: ShipStationSim, request: Request) -> None:
    """Basic auth with the API key as user and the API secret as password."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    key_ok = secrets.compare_digest(user.encode(), sim.config.api_key.encode())
    secret_ok = secrets.compare_digest(password.encode(), sim.config.api_secret.encode())
    if scheme.lower() != "basic" or not (key_ok and secret_ok):
        raise Refusal(401, "Invalid API credentials")


def orders(sim: ShipStationSim, request: Request) -> Response:
    params = dict(request.query_params)
    if sim.on_orders_request is not None:
        sim.on_orders_request(sim, params)
    return JSONResponse(listing(ORDERS, list(sim.orders.values()), params, sim.order_ties))


def stores(sim: ShipStationSim, request: Request) -> Response:
    show_inactive = request.query_params.get("showInactive", "false").lower() == "true"
    found = [s for s in sim.store_records if show_inactive or s["active"]]
    return JSONResponse(found)


def shipments(sim: ShipStationSim, request: Request) -> Response:
    return JSONResponse(listing(SHIPMENTS, sim.shipments, dict(request.query_params)))


def fulfillments(sim: ShipStationSim, request: Request) -> Response:
    return JSONResponse(listing(FULFILLMENTS, sim.fulfillments, dict(request.query_params)))


def guarded(sim: ShipStationSim, request: Request, respond: Respond) -> Response:
    """Auth, then the fixed-window limit, then the resource; limit headers on every answer."""
    sim.counters.requests[request.url.path] += 1
    now = time.monotonic()
    try:
        authenticate(sim, request)
        allowed = sim.window.hit(now)
        headers = sim.window.headers(now)
        if not allowed:
            raise Refusal(429, "Too Many Requests")
        if sim.fail_next:
            raise Refusal(sim.fail_next.pop(0), "An injected server error")
        response = respond(sim, request)
    except Refusal as refusal:
        headers = sim.window.headers(now) if refusal.status != 401 else {}
        response = JSONResponse({"message": refusal.message}, status_code=refusal.status)
    except QueryError as error:
        response = JSONResponse({"message": str(error)}, status_code=400)
    response.headers.update(headers)
    sim.counters.responses[response.status_code] += 1
    return response


def endpoint(respond: Respond) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return guarded(request.app.state.sim, request, respond)

    return serve


def create_app(
    config: ShipStationSimConfig | None = None, clock: SimClock | None = None
) -> Starlette:
    """The simulator as an ASGI app; its state is `app.state.sim`."""
    routes: list[Any] = [
        Route("/orders", endpoint(orders)),
        Route("/stores", endpoint(stores)),
        Route("/shipments", endpoint(shipments)),
        Route("/fulfillments", endpoint(fulfillments)),
        *CONTROL_ROUTES,
    ]
    app = Starlette(routes=routes)
    app.state.sim = ShipStationSim(config or ShipStationSimConfig(), clock)
    return app
