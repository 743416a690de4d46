"""POST /webhooks/shopify: raw bytes in, a status code out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shoprelay.sources.shopify.receive import Receiver

WEBHOOK_PATH = "/webhooks/shopify"
WEBHOOKS = Counter("shoprelay_webhooks_total", "Shopify webhook deliveries by outcome", ["outcome"])
ACK_SECONDS = Histogram(
    "shoprelay_webhook_ack_seconds",
    "Time from request to acknowledgement",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; a larger body is refused before it fills memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def shopify_endpoint(
    receiver: Receiver, max_body_bytes: int
) -> Callable[[Request], Awaitable[Response]]:
    async def receive_shopify(request: Request) -> Response:
        with ACK_SECONDS.time():
            try:
                body = await _read_body(request, max_body_bytes)
            except BodyTooLarge:
                WEBHOOKS.labels("too_large").inc()
                return JSONResponse({"error": "body too large"}, status_code=413)
            received = await receiver.receive(request.headers, body)
            WEBHOOKS.labels(received.outcome).inc()
            payload = {"outcome": received.outcome}
            if received.status_code != 200 and received.detail:
                payload["error"] = received.detail
            return JSONResponse(payload, status_code=received.status_code)

    return receive_shopify
