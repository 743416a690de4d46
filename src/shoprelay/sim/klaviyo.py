"""A Klaviyo API simulator: a real HTTP server faithful to the docs for the endpoints we use."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoprelay.sim import klaviyo_event_api as event_api
from shoprelay.sim import klaviyo_metric_api as metric_api
from shoprelay.sim import klaviyo_privacy as privacy
from shoprelay.sim import klaviyo_profile_api as profile_api
from shoprelay.sim import klaviyo_subscriptions as subscriptions
from shoprelay.sim.klaviyo_config import KlaviyoSimConfig, RateLimit
from shoprelay.sim.klaviyo_control import CONTROL_ROUTES
from shoprelay.sim.klaviyo_errors import ApiError, ApiFailure, failure_response, invalid, throttled
from shoprelay.sim.klaviyo_faults import Fault
from shoprelay.sim.klaviyo_rules import MAX_BODY_BYTES, schema_errors, string_size_errors, tolerant
from shoprelay.sim.klaviyo_state import KlaviyoSim, utc_now

__all__ = ["KlaviyoSim", "KlaviyoSimConfig", "RateLimit", "create_app"]

AUTH_SCHEME = "Klaviyo-API-Key "
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9_-]+)?$")
JSON_TYPES = frozenset({"application/vnd.api+json", "application/json"})
Respond = Callable[[KlaviyoSim, Request], Awaitable[Response]]
Check = Callable[[KlaviyoSim, Any, datetime], list[ApiError]]
Apply = Callable[[KlaviyoSim, Any, datetime, str], Response]


def authenticate(sim: KlaviyoSim, request: Request) -> str:
    """The account (private key) making the request, or a 401 like Klaviyo's."""
    header = request.headers.get("authorization", "")
    if not header.startswith(AUTH_SCHEME):
        detail = "Missing or invalid authorization scheme. Please use Klaviyo-API-Key."
        raise ApiFailure([ApiError(401, "not_authenticated", detail, pointer="/data")])
    key = header.removeprefix(AUTH_SCHEME).strip()
    if key not in sim.config.api_keys or sim.faults.revoked:
        error = ApiError(
            401,
            "authentication_failed",
            "Incorrect authentication credentials.",
            pointer="/data",
            title="Incorrect authentication credentials.",
        )
        raise ApiFailure([error])
    return key


def check_headers(request: Request) -> None:
    """A `revision` header is required; a body must be JSON:API (plain JSON is accepted too)."""
    revision = request.headers.get("revision")
    if revision is None or not REVISION.match(revision):
        detail = "A valid 'revision' header (YYYY-MM-DD or YYYY-MM-DD.suffix) is required."
        raise ApiFailure([invalid(detail, parameter="revision")])
    if request.method == "POST":
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES:
            detail = f'Unsupported media type "{media_type}" in request.'
            raise ApiFailure([ApiError(415, "unsupported_media_type", detail, pointer="/data")])


def server_failure(status: int) -> ApiFailure:
    """An injected 5xx."""
    code = {500: "error", 503: "service_unavailable", 504: "gateway_timeout"}[status]
    return ApiFailure([ApiError(status, code, "An injected server failure.", pointer="/data")])


async def inject(sim: KlaviyoSim, fault: Fault) -> None:
    """Act out a fault that happens before processing (slow requests carry on afterwards)."""
    if fault is Fault.SLOW:
        await asyncio.sleep(sim.faults.slow_seconds)
    elif fault is Fault.TIMEOUT:
        await asyncio.sleep(sim.faults.timeout_seconds)
        raise server_failure(504)
    elif fault is Fault.THROTTLE:
        raise throttled(1)
    elif fault in (Fault.SERVER_ERROR, Fault.UNAVAILABLE):
        raise server_failure(500 if fault is Fault.SERVER_ERROR else 503)


async def guarded(
    sim: KlaviyoSim, request: Request, operation_id: str, respond: Respond
) -> Response:
    """Auth, rate limits, headers and faults around one operation, in Klaviyo's order."""
    account = authenticate(sim, request)
    limit = sim.config.limit_for(operation_id)
    admission = sim.limiter.admit(account, operation_id, limit, time.monotonic())
    if not admission.allowed and sim.config.enforce_limits:
        raise throttled(admission.retry_after)
    try:
        check_headers(request)
        fault = sim.draw_fault()
        await inject(sim, fault)
        response = await respond(sim, request)
        if fault is Fault.ERROR_AFTER_ACCEPT:
            raise server_failure(sim.rng.choice((500, 503)))
    except ApiFailure as failure:
        if failure.status != 429:
            failure.headers = admission.headers() | failure.headers
        raise
    response.headers.update(admission.headers())
    return response


def endpoint(operation_id: str, respond: Respond) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that runs `respond` guarded, answering failures as Klaviyo does."""

    async def serve(request: Request) -> Response:
        sim: KlaviyoSim = request.app.state.sim
        try:
            response = await guarded(sim, request, operation_id, respond)
        except ApiFailure as failure:
            response = failure_response(failure)
        sim.count_response(operation_id, response.status_code)
        return response

    return serve


async def read_json(request: Request, operation_id: str) -> tuple[Any, bytes]:
    """The parsed body and its bytes; too large or malformed bodies are a 400."""
    raw = await request.body()
    limit = MAX_BODY_BYTES[operation_id]
    if len(raw) > limit:
        detail = (
            f"The maximum allowed payload size is {limit // 1024:,} KB; got {len(raw):,} bytes."
        )
        raise ApiFailure([invalid(detail, "/data")])
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError:
        raise ApiFailure([invalid("The request body is not valid JSON.", "/")]) from None


def body_operation(operation_id: str, check: Check, apply: Apply) -> Respond:
    """Read and validate a body (schema, sizes, semantic rules: all errors at once), then apply."""

    async def respond(sim: KlaviyoSim, request: Request) -> Response:
        body, raw = await read_json(request, operation_id)
        now = utc_now()
        errors = schema_errors(operation_id, body) + string_size_errors(body, raw)
        errors += tolerant(check, sim, body, now)
        if errors:
            by_pointer = {error.pointer or "": error for error in errors}
            raise ApiFailure(list(by_pointer.values()))
        return apply(sim, body, now, str(request.base_url).rstrip("/"))

    return respond


def api_routes() -> list[Route]:
    """The Klaviyo endpoints, at the spec's paths."""
    events = body_operation("create_event", event_api.check_event, event_api.create_event)
    bulk_events = body_operation(
        "bulk_create_events", event_api.check_bulk, event_api.bulk_create_events
    )
    profile = body_operation(
        "create_or_update_profile", profile_api.check_profile, profile_api.create_or_update_profile
    )
    bulk_profiles = body_operation(
        "bulk_import_profiles", profile_api.check_bulk_profiles, profile_api.bulk_import_profiles
    )
    jobs = "/api/profile-bulk-import-jobs"
    job = endpoint("get_bulk_import_profiles_job", profile_api.get_job)
    job_errors = endpoint("get_errors_for_bulk_import_profiles_job", profile_api.get_import_errors)
    subscribe = body_operation(
        subscriptions.SUBSCRIBE, subscriptions.check_subscribe, subscriptions.subscribe
    )
    unsubscribe = body_operation(
        subscriptions.UNSUBSCRIBE, subscriptions.check_unsubscribe, subscriptions.unsubscribe
    )
    deletion = body_operation(privacy.OPERATION, privacy.check_deletion, privacy.request_deletion)
    return [
        Route(privacy.PATH, endpoint(privacy.OPERATION, deletion), methods=["POST"]),
        Route(
            "/api/profile-subscription-bulk-create-jobs",
            endpoint(subscriptions.SUBSCRIBE, subscribe),
            methods=["POST"],
        ),
        Route(
            "/api/profile-subscription-bulk-delete-jobs",
            endpoint(subscriptions.UNSUBSCRIBE, unsubscribe),
            methods=["POST"],
        ),
        Route("/api/events", endpoint("create_event", events), methods=["POST"]),
        Route(
            "/api/event-bulk-create-jobs",
            endpoint("bulk_create_events", bulk_events),
            methods=["POST"],
        ),
        Route(
            "/api/profile-import", endpoint("create_or_update_profile", profile), methods=["POST"]
        ),
        Route(jobs, endpoint("bulk_import_profiles", bulk_profiles), methods=["POST"]),
        # Klaviyo's `links` end in a slash and both spellings answer, so no redirect here.
        *(Route(f"{jobs}/{{job_id}}{end}", job, methods=["GET"]) for end in ("", "/")),
        *(
            Route(f"{jobs}/{{job_id}}/import-errors{end}", job_errors, methods=["GET"])
            for end in ("", "/")
        ),
        *metric_api.routes(endpoint, body_operation),
    ]


def create_app(config: KlaviyoSimConfig | None = None) -> Starlette:
    """The simulator app; `app.state.sim` is the account it records into."""
    app = Starlette(
        routes=[
            *api_routes(),
            *CONTROL_ROUTES,
            *subscriptions.CONTROL_ROUTES,
            *privacy.CONTROL_ROUTES,
        ]
    )
    app.state.sim = KlaviyoSim(config or KlaviyoSimConfig())
    return app
