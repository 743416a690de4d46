"""POST /webhooks/shopify: raw bytes in, a status code out, on the bare ASGI interface.

Every webhook passes here, so it skips Starlette's request and response objects: the headers
are read once into a dict, the body is joined from the server's chunks, and the few answers
are encoded once.
"""

from __future__ import annotations

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

from shoprelay.sources.shopify.receive import Receiver

WEBHOOK_PATH = "/webhooks/shopify"
WEBHOOKS = Counter("shoprelay_webhooks_total", "Shopify webhook deliveries by outcome", ["outcome"])
ACK_SECONDS = Histogram(
    "shoprelay_webhook_ack_seconds",
    "Time from request to acknowledgement",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# Shopify retries anything but a 2xx: a webhook we could not store comes again.
NOT_STORED = "could not store the webhook; Shopify will send it again"

log = structlog.get_logger("shoprelay.web")


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """Read at most `limit` bytes; a larger body is refused before it fills memory."""
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(send: Send, status: int, document: dict[str, str]) -> None:
    body = orjson.dumps(document)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def shopify_endpoint(receiver: Receiver, max_body_bytes: int) -> ASGIApp:
    async def receive_shopify(scope: Scope, receive: Receive, send: Send) -> None:
        with ACK_SECONDS.time():
            # The server gives header names in lower case; a repeated header keeps its first,
            # as Starlette's headers do.
            headers = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in reversed(scope["headers"])
            }
            try:
                body = await _read_body(receive, headers.get("content-length"), max_body_bytes)
            except BodyTooLarge:
                WEBHOOKS.labels("too_large").inc()
                await _answer(send, 413, {"error": "body too large"})
                return
            except ClientGone:
                WEBHOOKS.labels("disconnected").inc()
                return
            try:
                received = await receiver.receive(headers, body)
            except Exception:
                # Nothing is acknowledged, so nothing is lost. The traceback goes through the
                # redaction processor, which masks the rows database errors quote.
                log.warning(
                    "webhook not stored", shop=headers.get("x-shopify-shop-domain"), exc_info=True
                )
                WEBHOOKS.labels("not_stored").inc()
                await _answer(send, 503, {"error": NOT_STORED})
                return
            WEBHOOKS.labels(received.outcome).inc()
            document = {"outcome": received.outcome}
            if received.status_code != 200 and received.detail:
                document["error"] = received.detail
            await _answer(send, received.status_code, document)

    return receive_shopify
