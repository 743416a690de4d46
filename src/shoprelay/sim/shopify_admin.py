"""A Shopify GraphQL Admin API simulator: a real HTTP server for what shoprelay asks of Shopify.

`POST /admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`. Every query is validated
against Shopify's own 2026-10 schema, charged to a leaky cost bucket (`extensions.cost` on every
answer, THROTTLED when it is empty) and answered from the simulated shop. The shop can also act
as Shopify toward shoprelay: it delivers signed webhooks to the subscriptions made here, retries
them, and deletes a subscription after 8 consecutive failures.
Imports nothing from the product outside `shoprelay.sim`, so it cannot share the product's bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from shoprelay.sim.shipstation_state import SimClock
from shoprelay.sim.shopify_admin_api import Roots
from shoprelay.sim.shopify_admin_bulk import BulkOperation
from shoprelay.sim.shopify_admin_control import CONTROL_ROUTES
from shoprelay.sim.shopify_admin_cost import MAX_QUERY_COST, query_cost
from shoprelay.sim.shopify_admin_execute import Execution, run
from shoprelay.sim.shopify_admin_schema import Request as Prepared
from shoprelay.sim.shopify_admin_schema import RequestError, admin_schema, prepare
from shoprelay.sim.shopify_admin_state import ShopifyAdminSim, ShopifyAdminSimConfig

__all__ = ["ShopifyAdminSim", "ShopifyAdminSimConfig", "create_app"]

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
FAULT_BODIES = {
    429: {
        "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
        "uninterrupted service."
    },
    500: {"errors": "Internal Server Error"},
    502: {"errors": "Bad Gateway"},
    503: {"errors": "Service Unavailable"},
}


def _cost(sim: ShopifyAdminSim, requested: int, actual: int | None) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": sim.bucket.status(),
    }


def _answer(sim: ShopifyAdminSim, body: dict[str, Any], status: int = 200) -> Response:
    sim.counters.requests[status] += 1
    headers = {"X-Shopify-API-Version": sim.config.api_version}
    return JSONResponse(body, status_code=status, headers=headers)


async def _operation(request: Request) -> tuple[str, dict[str, Any] | None, str | None] | None:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/graphql"):
        return raw.decode(), None, None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    variables = body.get("variables")
    return (
        body["query"],
        variables if isinstance(variables, dict) else None,
        body.get("operationName"),
    )


async def graphql(request: Request) -> Response:
    sim: ShopifyAdminSim = request.app.state.sim
    sim.counters.versions[request.path_params["version"]] += 1
    if sim.fail_next:
        status = sim.fail_next.pop(0)
        headers = {"Retry-After": "1.0"} if status == 429 else {}
        sim.counters.requests[status] += 1
        return JSONResponse(FAULT_BODIES.get(status, {"errors": "fault"}), status, headers)
    token = request.headers.get("x-shopify-access-token", "")
    if not secrets.compare_digest(token.encode(), sim.config.access_token.encode()):
        return _answer(sim, {"errors": INVALID_TOKEN}, 401)
    operation = await _operation(request)
    if operation is None:
        return _answer(sim, {"errors": {"query": "Required parameter missing or invalid"}}, 400)
    try:
        prepared = prepare(*operation)
    except RequestError as refused:
        return _answer(sim, {"errors": refused.errors})
    return _answer(sim, _charged(sim, prepared, lambda op: _bulk_url(request, op)))


def _charged(
    sim: ShopifyAdminSim, prepared: Prepared, bulk_url: Callable[[BulkOperation], str]
) -> dict[str, Any]:
    """Charge the bucket the requested cost, run, refund the unused part: the answer's body."""
    requested = query_cost(prepared)
    sim.counters.cost_requested += requested
    if requested > MAX_QUERY_COST:
        return _too_costly(sim, requested)
    if not sim.bucket.take(requested):
        throttled = {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC},
        }
        return {"errors": [throttled], "extensions": {"cost": _cost(sim, requested, None)}}
    roots = Roots(sim, bulk_url)
    schema = admin_schema()
    root_type = schema.mutation_type if prepared.is_mutation else schema.query_type
    assert root_type is not None
    execution = Execution(prepared)
    data = run(execution, roots.mutation() if prepared.is_mutation else roots.query(), root_type)
    actual = requested if prepared.is_mutation else query_cost(prepared, data)
    sim.bucket.refund(requested, actual)
    body: dict[str, Any] = {"data": data}
    if execution.errors:
        body["errors"] = execution.errors
    extensions: dict[str, Any] = {"cost": _cost(sim, requested, actual)}
    if roots.search_warnings:
        extensions["search"] = roots.search_warnings
    body["extensions"] = extensions
    return body


def _too_costly(sim: ShopifyAdminSim, cost: int) -> dict[str, Any]:
    message = (
        f"Query cost is {cost}, which exceeds the single query max cost limit "
        f"({MAX_QUERY_COST}).\n\nSee {RATE_LIMITS_DOC} for more information on how the\n"
        "cost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, "
        "bulk operations should be used instead.\n"
    )
    error = {
        "message": message,
        "extensions": {
            "code": "MAX_COST_EXCEEDED",
            "cost": cost,
            "maxCost": MAX_QUERY_COST,
            "documentation": RATE_LIMITS_DOC,
        },
    }
    return {"errors": [error], "extensions": {"cost": _cost(sim, cost, None)}}


def _bulk_url(request: Request, operation: BulkOperation) -> str:
    return f"{str(request.base_url).rstrip('/')}/_sim/bulk/{operation.number}.jsonl"


async def bulk_file(request: Request) -> Response:
    """The JSONL result, as Shopify's storage serves it: no token, streamed."""
    sim: ShopifyAdminSim = request.app.state.sim
    operation = sim.bulk.operations.get(request.path_params["number"])
    if operation is None or operation.status != "COMPLETED" or operation.path is None:
        return Response("NoSuchKey", status_code=404)
    return FileResponse(operation.path, media_type="application/jsonl")


def create_app(
    config: ShopifyAdminSimConfig | None = None, clock: SimClock | None = None
) -> Starlette:
    """The simulator as an ASGI app; its state is `app.state.sim`. Deliveries run while the
    app is served (its lifespan)."""
    sim = ShopifyAdminSim(config or ShopifyAdminSimConfig(), clock)
    admin_schema()  # half a second once per process: pay it before the first request

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        deliveries = asyncio.get_running_loop().create_task(sim.webhooks.run())
        try:
            yield
        finally:
            deliveries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deliveries
            sim.bulk.close()

    routes: list[Any] = [
        Route("/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
        Route("/_sim/bulk/{number:int}.jsonl", bulk_file),
        *CONTROL_ROUTES,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = sim
    return app
