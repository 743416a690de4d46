"""The /_sim control API: read what the account recorded, change faults, reset (no auth)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoprelay.sim.klaviyo_faults import Faults
from shoprelay.sim.klaviyo_state import KlaviyoSim


def json_response(document: object, status: int = 200) -> Response:
    """A plain JSON response."""
    return Response(orjson.dumps(document), status, media_type="application/json")


def sim_of(request: Request) -> KlaviyoSim:
    """The account behind this app."""
    sim: KlaviyoSim = request.app.state.sim
    return sim


async def list_events(request: Request) -> Response:
    """GET /_sim/events[?metric=...]: accepted events in arrival order."""
    metric = request.query_params.get("metric")
    events = [e.to_json() for e in sim_of(request).events if metric in (None, e.metric)]
    return json_response({"data": events, "count": len(events)})


async def list_profiles(request: Request) -> Response:
    """GET /_sim/profiles: every stored profile as a Klaviyo profile resource."""
    base_url = str(request.base_url).rstrip("/")
    profiles = [profile.resource(base_url) for profile in sim_of(request).all_profiles()]
    return json_response({"data": profiles, "count": len(profiles)})


async def show_stats(request: Request) -> Response:
    """GET /_sim/stats: request, throttling, dedup and rate-window counters."""
    return json_response(sim_of(request).stats())


async def show_faults(request: Request) -> Response:
    """GET /_sim/faults: the fault settings in force."""
    return json_response(sim_of(request).faults.to_json())


async def change_faults(request: Request) -> Response:
    """POST /_sim/faults: replace the given fault fields; answers with all settings."""
    sim = sim_of(request)
    try:
        document = orjson.loads(await request.body())
        if not isinstance(document, dict):
            raise TypeError("expected a JSON object")
        sim.set_faults(Faults.from_json(document, sim.faults))
    except (orjson.JSONDecodeError, TypeError, ValueError) as problem:
        return json_response({"error": str(problem)}, 400)
    return json_response(sim.faults.to_json())


async def reset(request: Request) -> Response:
    """POST /_sim/reset: forget profiles, events, jobs, counters and fault changes."""
    sim_of(request).reset()
    return json_response({"reset": True})


CONTROL_ROUTES = [
    Route("/_sim/events", list_events, methods=["GET"]),
    Route("/_sim/profiles", list_profiles, methods=["GET"]),
    Route("/_sim/stats", show_stats, methods=["GET"]),
    Route("/_sim/faults", show_faults, methods=["GET"]),
    Route("/_sim/faults", change_faults, methods=["POST"]),
    Route("/_sim/reset", reset, methods=["POST"]),
]
