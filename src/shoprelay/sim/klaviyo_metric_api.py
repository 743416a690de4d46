"""The account and metrics reads: `GET /api/accounts`, `GET /api/metrics` and
`POST /api/metric-aggregates`, with the spec's scopes, query parameters and limits."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoprelay.sim.klaviyo_aggregates import aggregate, parse_query
from shoprelay.sim.klaviyo_config import spec_operations
from shoprelay.sim.klaviyo_errors import ApiError, ApiFailure, invalid, json_api_response
from shoprelay.sim.klaviyo_state import KlaviyoSim

AUTH_SCHEME = "Klaviyo-API-Key "
ACCOUNT_ID = "SimAcc"
METRICS_PAGE = 200
# Metrics made by events sent to the API belong to Klaviyo's "API" integration.
API_INTEGRATION = {
    "object": "integration",
    "id": "0eMvjm",
    "key": "api",
    "name": "API",
    "category": "API",
}
METRIC_FILTER = {
    "equals(integration.name,": "name",
    "equals(integration.category,": "category",
}
Respond = Callable[[KlaviyoSim, Request], Awaitable[Response]]


def metric_id(name: str) -> str:
    """A stable six-character id per metric name, shaped like Klaviyo's."""
    return hashlib.sha256(name.encode()).hexdigest()[:6].upper()


def scoped(operation_id: str, respond: Respond) -> Respond:
    """`respond`, refused with Klaviyo's 403 for a key without the operation's scopes, and
    with a 400 for a query parameter the operation does not take."""

    async def checked(sim: KlaviyoSim, request: Request) -> Response:
        operation = spec_operations()[operation_id]
        key = request.headers.get("authorization", "").removeprefix(AUTH_SCHEME).strip()
        granted = sim.config.scopes_of(key)
        if granted is not None and not set(operation["scopes"]) <= granted:
            detail = "You do not have permission to perform this action."
            error = ApiError(403, "permission_denied", detail, pointer="/data/", title=detail)
            raise ApiFailure([error])
        _check_query(request, operation["query"])
        return await respond(sim, request)

    return checked


def _check_query(request: Request, allowed: dict[str, list[str] | None]) -> None:
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise ApiFailure([invalid(f"'{name}' is not a valid query parameter.", None, name)])
        choices = allowed[name]
        if choices is not None and not set(value.split(",")) <= set(choices):
            detail = f"Invalid value for '{name}': {value}."
            raise ApiFailure([invalid(detail, None, name)])


async def get_accounts(sim: KlaviyoSim, request: Request) -> Response:
    """The key's one account, with the configured time zone."""
    base_url = str(request.base_url).rstrip("/")
    attributes = {
        "test_account": False,
        "contact_information": {
            "default_sender_name": "Simulated Shop",
            "default_sender_email": "hello@shop.example",
            "website_url": "https://shop.example",
            "organization_name": "Simulated Shop",
            "street_address": {
                "address1": "1 Main St",
                "address2": None,
                "city": "Boston",
                "region": "MA",
                "country": "US",
                "zip": "02110",
            },
        },
        "industry": None,
        "timezone": sim.config.timezone,
        "preferred_currency": "USD",
        "public_api_key": "SimPub",
        "locale": "en-US",
    }
    wanted = request.query_params.get("fields[account]")
    if wanted:
        names = {field.split(".")[0] for field in wanted.split(",")}
        attributes = {name: value for name, value in attributes.items() if name in names}
    account = {
        "type": "account",
        "id": ACCOUNT_ID,
        "attributes": attributes,
        "links": {"self": f"{base_url}/api/accounts/{ACCOUNT_ID}/"},
    }
    return json_api_response(
        {"data": [account], "links": {"self": f"{base_url}/api/accounts/"}}, 200
    )


def metrics_of(sim: KlaviyoSim) -> list[tuple[str, datetime, datetime]]:
    """Each metric the account's events made: name, first and last event received."""
    seen: dict[str, tuple[datetime, datetime]] = {}
    for event in sim.events:
        first, _ = seen.get(event.metric, (event.received_at, event.received_at))
        seen[event.metric] = (first, event.received_at)
    return [(name, first, last) for name, (first, last) in seen.items()]


async def get_metrics(sim: KlaviyoSim, request: Request) -> Response:
    """The account's metrics, 200 a page, oldest first; filtered by integration if asked."""
    base_url = str(request.base_url).rstrip("/")
    metrics = [_metric(name, first, last, base_url) for name, first, last in metrics_of(sim)]
    if text := request.query_params.get("filter"):
        metrics = [m for m in metrics if _matches(m, text)]
    try:
        offset = int(request.query_params.get("page[cursor]") or 0)
    except ValueError:
        raise ApiFailure([invalid("Invalid page cursor.", None, "page[cursor]")]) from None
    links = {"self": str(request.url)}
    if offset + METRICS_PAGE < len(metrics):
        links["next"] = f"{base_url}/api/metrics?page[cursor]={offset + METRICS_PAGE}"
    if wanted := request.query_params.get("fields[metric]"):
        for metric in metrics:
            kept = set(wanted.split(","))
            metric["attributes"] = {k: v for k, v in metric["attributes"].items() if k in kept}
    page = metrics[offset : offset + METRICS_PAGE]
    return json_api_response({"data": page, "links": links}, 200)


def _metric(name: str, first: datetime, last: datetime, base_url: str) -> dict[str, Any]:
    identifier = metric_id(name)
    return {
        "type": "metric",
        "id": identifier,
        "attributes": {
            "name": name,
            "created": first.isoformat(),
            "updated": last.isoformat(),
            "integration": dict(API_INTEGRATION),
        },
        "links": {"self": f"{base_url}/api/metrics/{identifier}/"},
    }


def _matches(metric: dict[str, Any], text: str) -> bool:
    for prefix, field in METRIC_FILTER.items():
        if text.startswith(prefix) and text.endswith(")"):
            wanted = text.removeprefix(prefix)[:-1].strip("'\"")
            return bool(metric["attributes"]["integration"][field] == wanted)
    detail = "Only equals(integration.name,…) or equals(integration.category,…) filters."
    raise ApiFailure([invalid(detail, None, "filter")])


def check_aggregates(sim: KlaviyoSim, body: Any, now: datetime) -> list[ApiError]:
    """The query's semantic errors: zone, time range, an unknown metric."""
    attributes = body["data"]["attributes"]
    parsed = parse_query(attributes)
    if isinstance(parsed, list):
        return parsed
    if parsed.metric_id not in {metric_id(name) for name, _, _ in metrics_of(sim)}:
        detail = f"Metric with id {parsed.metric_id} does not exist."
        return [invalid(detail, "/data/attributes/metric_id")]
    return []


def query_metric_aggregates(sim: KlaviyoSim, body: Any, now: datetime, base_url: str) -> Response:
    """Counts of the metric's events per interval, intervals cut in the query's zone."""
    parsed = parse_query(body["data"]["attributes"])
    assert not isinstance(parsed, list)  # check_aggregates refused those
    events = (event for event in sim.events if metric_id(event.metric) == parsed.metric_id)
    starts, values = aggregate(parsed, events)
    document = {
        "data": {
            "type": "metric-aggregate",
            "id": str(uuid.uuid4()),
            "attributes": {
                "dates": [start.isoformat() for start in starts],
                "data": [{"dimensions": [], "measurements": values}],
            },
            "links": {"self": f"{base_url}/api/metric-aggregates/"},
        },
        "links": {"self": f"{base_url}/api/metric-aggregates/"},
    }
    return json_api_response(document, 200)


def routes(
    endpoint: Callable[[str, Respond], Callable[[Request], Awaitable[Response]]],
    body_operation: Callable[..., Respond],
) -> list[Route]:
    """The three reads at the spec's paths, wrapped as sim/klaviyo.py wraps every endpoint."""
    aggregates = body_operation(
        "query_metric_aggregates", check_aggregates, query_metric_aggregates
    )
    return [
        Route(
            "/api/accounts",
            endpoint("get_accounts", scoped("get_accounts", get_accounts)),
            methods=["GET"],
        ),
        Route(
            "/api/metrics",
            endpoint("get_metrics", scoped("get_metrics", get_metrics)),
            methods=["GET"],
        ),
        Route(
            "/api/metric-aggregates",
            endpoint("query_metric_aggregates", scoped("query_metric_aggregates", aggregates)),
            methods=["POST"],
        ),
    ]
