"""Klaviyo's JSON:API error bodies, and an exception that carries them to the response."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

JSON_API = "application/vnd.api+json"
TITLES = {
    400: "Invalid input.",
    401: "Authentication credentials were not provided.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "Request entity too large.",
    415: "Unsupported media type.",
    429: "Request was throttled.",
    500: "A server error occurred.",
    503: "Service unavailable.",
    504: "Gateway timeout.",
}
THROTTLED_LINK = "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling#rate-limits"


@dataclass(frozen=True)
class ApiError:
    """One item of a Klaviyo `errors` array."""

    status: int
    code: str
    detail: str
    pointer: str | None = None
    parameter: str | None = None
    title: str | None = None
    links: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The error object as Klaviyo sends it, with a fresh id."""
        source = {"pointer": self.pointer} if self.pointer is not None else {}
        if self.parameter is not None:
            source["parameter"] = self.parameter
        return {
            "id": str(uuid.uuid4()),
            "status": self.status,
            "code": self.code,
            "title": self.title or TITLES.get(self.status, "Error."),
            "detail": self.detail,
            "source": source,
            "links": dict(self.links),
            "meta": dict(self.meta),
        }


class ApiFailure(Exception):
    """Raised anywhere in a request to answer with these errors (all share the first status)."""

    def __init__(self, errors: Sequence[ApiError], headers: Mapping[str, str] | None = None):
        super().__init__(errors[0].detail)
        self.errors = list(errors)
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        """The HTTP status of the response."""
        return self.errors[0].status


def invalid(detail: str, pointer: str | None = "/data", parameter: str | None = None) -> ApiError:
    """A 400 `invalid` error at `pointer` (or at a query `parameter`)."""
    if parameter is not None:
        pointer = None
    return ApiError(400, "invalid", detail, pointer=pointer, parameter=parameter)


def throttled(retry_after: int) -> ApiFailure:
    """The real 429 body and its only rate-limit header, `Retry-After`."""
    unit = "second" if retry_after == 1 else "seconds"
    error = ApiError(
        429,
        "throttled",
        f"Request was throttled. Expected available in {retry_after} {unit}.",
        pointer="/data",
        links={"type": THROTTLED_LINK},
    )
    return ApiFailure([error], headers={"Retry-After": str(retry_after)})


def json_api_response(
    document: Any, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON:API response serialised with orjson."""
    return Response(orjson.dumps(document), status, headers=headers, media_type=JSON_API)


def failure_response(failure: ApiFailure) -> Response:
    """The error document for `failure`."""
    body = {"errors": [error.to_json() for error in failure.errors]}
    return json_api_response(body, failure.status, failure.headers)
