"""Control endpoints under /_sim/ for the demo: create orders, change statuses, read stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shoprelay.sim.shipstation_state import OPEN_STATUSES, ShipStationSim

# What usually happens next to an open order, for `POST /_sim/activity`.
NEXT_ACTIONS = {
    "awaiting_payment": ("pay", "cancel"),
    "awaiting_shipment": ("ship_label", "ship_label", "hold", "mark_shipped", "cancel"),
    "on_hold": ("restore",),
}


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    body = await request.json()
    return body if isinstance(body, dict) else {}


async def create_orders(request: Request) -> Response:
    """`{"count": n, "days_ago": d, "store_id": id}`: n orders spread over the last d days."""
    sim: ShipStationSim = request.app.state.sim
    body = await _body(request)
    count = int(body.get("count", 1))
    end = sim.clock.now()
    start = end - timedelta(days=float(body.get("days_ago", 0)))
    store_ids = [int(body["store_id"])] if body.get("store_id") else []
    created = sim.create_orders(count, start=start, end=end, store_ids=store_ids)
    return JSONResponse({"order_ids": [order["orderId"] for order in created]}, status_code=201)


async def change_order(request: Request) -> Response:
    """`POST /_sim/orders/{id}/{action}` with an action of `ShipStationSim.apply`."""
    sim: ShipStationSim = request.app.state.sim
    order_id = int(request.path_params["order_id"])
    if order_id not in sim.orders:
        return JSONResponse({"message": f"No order {order_id}"}, status_code=404)
    try:
        sim.apply(order_id, request.path_params["action"])
    except KeyError:
        return JSONResponse({"message": "Unknown action"}, status_code=400)
    return JSONResponse(sim.orders[order_id])


async def activity(request: Request) -> Response:
    """`{"changes": n}`: move n random open orders one step along their life."""
    sim: ShipStationSim = request.app.state.sim
    body = await _body(request)
    open_ids = [oid for oid, o in sim.orders.items() if o["orderStatus"] in OPEN_STATUSES]
    chosen = sim.rng.sample(open_ids, min(int(body.get("changes", 1)), len(open_ids)))
    changed = []
    for order_id in chosen:
        action = sim.rng.choice(NEXT_ACTIONS[sim.orders[order_id]["orderStatus"]])
        sim.apply(order_id, action)
        changed.append({"orderId": order_id, "action": action})
    return JSONResponse({"changed": changed})


async def stats(request: Request) -> Response:
    sim: ShipStationSim = request.app.state.sim
    return JSONResponse(sim.stats())


CONTROL_ROUTES = [
    Route("/_sim/orders", create_orders, methods=["POST"]),
    Route("/_sim/orders/{order_id:int}/{action}", change_order, methods=["POST"]),
    Route("/_sim/activity", activity, methods=["POST"]),
    Route("/_sim/stats", stats),
]
