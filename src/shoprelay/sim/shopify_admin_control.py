"""Control endpoints under /_sim/ for tests and demos: seed history, change the shop, set
scopes and faults, make our webhook endpoint fail, read subscriptions, deliveries and stats."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shoprelay.sim.shopify_admin_shop import ActionRefused
from shoprelay.sim.shopify_admin_state import ShopifyAdminSim


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    body = await request.json()
    return body if isinstance(body, dict) else {}


def _sim(request: Request) -> ShopifyAdminSim:
    sim: ShopifyAdminSim = request.app.state.sim
    return sim


async def seed(request: Request) -> Response:
    """`{"orders": 20000, "days": 90}`: the shop's past, no webhooks."""
    sim, body = _sim(request), await _body(request)
    before = len(sim.shop.orders)
    sim.shop.seed(int(body.get("orders", 100)), float(body.get("days", 90)))
    return JSONResponse({"orders": len(sim.shop.orders) - before}, status_code=201)


async def create_orders(request: Request) -> Response:
    """`{"count": n}`: n orders placed now, with their webhooks."""
    sim, body = _sim(request), await _body(request)
    created = sim.shop.create_orders(int(body.get("count", 1)))
    return JSONResponse({"order_ids": created}, status_code=201)


async def change_order(request: Request) -> Response:
    """`POST /_sim/orders/{id}/{action}`: update | fulfill | cancel | refund."""
    sim = _sim(request)
    order_id = int(request.path_params["order_id"])
    if order_id not in sim.shop.orders:
        return JSONResponse({"message": f"No order {order_id}"}, status_code=404)
    try:
        order = sim.shop.apply(order_id, request.path_params["action"])
    except KeyError:
        return JSONResponse({"message": "Unknown action"}, status_code=400)
    except ActionRefused as refused:
        return JSONResponse({"message": str(refused)}, status_code=409)
    return JSONResponse(order)


async def activity(request: Request) -> Response:
    """`{"changes": n}`: n random happenings, with their webhooks."""
    sim, body = _sim(request), await _body(request)
    return JSONResponse({"changed": sim.shop.activity(int(body.get("changes", 1)))})


async def order(request: Request) -> Response:
    """The order as a webhook carries it and as GraphQL shows it."""
    sim, order_id = _sim(request), int(request.path_params["order_id"])
    if order_id not in sim.shop.orders:
        return JSONResponse({"message": f"No order {order_id}"}, status_code=404)
    view = sim.shop.order_view(order_id)
    view["customer"] = view["customer"]({}) if callable(view["customer"]) else view["customer"]
    return JSONResponse({"webhook": sim.shop.order_payload(order_id), "graphql": view})


async def orders(request: Request) -> Response:
    sim = _sim(request)
    return JSONResponse({"order_ids": list(sim.shop.orders)})


async def customer(request: Request) -> Response:
    sim, customer_id = _sim(request), int(request.path_params["customer_id"])
    if customer_id not in sim.shop.customers:
        return JSONResponse({"message": f"No customer {customer_id}"}, status_code=404)
    return JSONResponse(
        {
            "webhook": sim.shop.customer_payload(customer_id),
            "graphql": sim.shop.customer_view(customer_id),
        }
    )


async def customers(request: Request) -> Response:
    sim = _sim(request)
    return JSONResponse({"customer_ids": list(sim.shop.customers)})


async def change_customer(request: Request) -> Response:
    """`POST /_sim/customers/{id}/update` or `/consent` with `{"email": "SUBSCRIBED", "sms": …}`."""
    sim, body = _sim(request), await _body(request)
    customer_id = int(request.path_params["customer_id"])
    if customer_id not in sim.shop.customers:
        return JSONResponse({"message": f"No customer {customer_id}"}, status_code=404)
    action = request.path_params["action"]
    if action == "update":
        sim.shop.update_customer(customer_id)
    elif action == "consent":
        sim.shop.set_consent(customer_id, email=body.get("email"), sms=body.get("sms"))
    else:
        return JSONResponse({"message": "Unknown action"}, status_code=400)
    return JSONResponse(sim.shop.customer_view(customer_id))


async def scopes(request: Request) -> Response:
    """`{"scopes": ["read_orders", "read_customers"]}`: what the token is granted."""
    sim, body = _sim(request), await _body(request)
    if "scopes" in body:
        sim.scopes = set(body["scopes"])
    return JSONResponse({"scopes": sorted(sim.scopes)})


async def endpoint(request: Request) -> Response:
    """`{"failure": "refuse" | 503 | null, "retry_delays": [...]}`: how our endpoint answers."""
    sim, body = _sim(request), await _body(request)
    webhooks = sim.webhooks
    if "failure" in body:
        webhooks.endpoint.failure = body["failure"]
    if "retry_delays" in body:
        webhooks.retry_delays = tuple(float(d) for d in body["retry_delays"])
    return JSONResponse(
        {"failure": webhooks.endpoint.failure, "retry_delays": list(webhooks.retry_delays)}
    )


async def subscriptions(request: Request) -> Response:
    webhooks = _sim(request).webhooks
    return JSONResponse(
        {
            "subscriptions": [s.record() for s in webhooks.subscriptions.values()],
            "deleted": webhooks.deleted,
        }
    )


async def deliveries(request: Request) -> Response:
    return JSONResponse({"attempts": list(_sim(request).webhooks.attempts)})


async def faults(request: Request) -> Response:
    """`{"fail_next": [503, 429]}`: the next GraphQL answers are these statuses."""
    sim, body = _sim(request), await _body(request)
    sim.fail_next.extend(int(status) for status in body.get("fail_next", []))
    return JSONResponse({"fail_next": sim.fail_next})


async def bucket(request: Request) -> Response:
    """`{"maximum": 2000, "restore_rate": 100, "available": 0}`."""
    sim, body = _sim(request), await _body(request)
    sim.bucket.refill()
    if "maximum" in body:
        sim.bucket.maximum = float(body["maximum"])
        sim.bucket.available = min(sim.bucket.available, sim.bucket.maximum)
    if "restore_rate" in body:
        sim.bucket.restore_rate = float(body["restore_rate"])
    if "available" in body:
        sim.bucket.available = float(body["available"])
    return JSONResponse(sim.bucket.status())


async def stats(request: Request) -> Response:
    return JSONResponse(_sim(request).stats())


CONTROL_ROUTES = [
    Route("/_sim/seed", seed, methods=["POST"]),
    Route("/_sim/orders", create_orders, methods=["POST"]),
    Route("/_sim/orders", orders, methods=["GET"]),
    Route("/_sim/orders/{order_id:int}", order, methods=["GET"]),
    Route("/_sim/orders/{order_id:int}/{action}", change_order, methods=["POST"]),
    Route("/_sim/activity", activity, methods=["POST"]),
    Route("/_sim/customers", customers, methods=["GET"]),
    Route("/_sim/customers/{customer_id:int}", customer, methods=["GET"]),
    Route("/_sim/customers/{customer_id:int}/{action}", change_customer, methods=["POST"]),
    Route("/_sim/scopes", scopes, methods=["GET", "POST"]),
    Route("/_sim/endpoint", endpoint, methods=["GET", "POST"]),
    Route("/_sim/subscriptions", subscriptions),
    Route("/_sim/deliveries", deliveries),
    Route("/_sim/faults", faults, methods=["POST"]),
    Route("/_sim/bucket", bucket, methods=["GET", "POST"]),
    Route("/_sim/stats", stats),
]
