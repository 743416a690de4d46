"""POST /webhooks/shopify: raw bytes in, a status code out, on the bare ASGI interface.

Every webhook passes here, so it skips Starlette's request and response objects: the headers
are read once into a dict, the body is joined from the server's chunks, and the few answers
are encoded once. The bodies being read or held share a limit of pending bytes per process,
and the group commit a bound on waiting deliveries; past either, a webhook gets 503 at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoprelay.config import MAX_PENDING_BYTES
from shoprelay.sources.shopify.receive import Receiver
from shoprelay.store.ingest import IngestOverloaded

WEBHOOK_PATH = "/webhooks/shopify"
WEBHOOKS = Counter("shoprelay_webhooks_total", "Shopify webhook deliveries by outcome", ["outcome"])
ACK_SECONDS = Histogram(
    "shoprelay_webhook_ack_seconds",
    "Time from request to acknowledgement",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# Shopify retries anything but a 2xx: a webhook we could not store comes again.
NOT_STORED = "could not store the webhook; Shopify will send it again"
OVERLOADED = "too many webhooks in progress; Shopify will send it again"
# What is in progress is answered within Shopify's five seconds, so the room comes back soon.
RETRY_AFTER_SECONDS = 5
OVERLOAD_WARNING_SECONDS = 10.0

log = structlog.get_logger("shoprelay.web")


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


class PendingBytesFull(Exception):
    """Holding a body's next bytes would go past the process's pending bytes."""


class PendingBytes:
    """The webhook body bytes this process may read and hold at once, until each is answered.

    A request holds its declared Content-Length from the start, or, sent in chunks, each chunk
    as it arrives; one that would go past the limit is refused instead.
    """

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


async def _read_body(receive: Receive, limit: int, pending: PendingBytes, held: int) -> bytes:
    """Read at most `limit` bytes, holding in `pending` whatever goes past the `held` bytes
    taken for it already; on failure, what it took is given back."""
    chunks: list[bytes] = []
    size = 0
    taken = held
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > taken:
                if size > limit:
                    raise BodyTooLarge
                if not pending.take(size - taken):
                    raise PendingBytesFull
                taken = size
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except BaseException:
        pending.give_back(taken - held)
        raise


def _content_length(declared: str | None) -> int | None:
    if declared is not None and declared.isascii() and declared.isdigit():
        return int(declared)
    return None


def _start(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ],
    }


async def _answer(send: Send, status: int, document: dict[str, str]) -> None:
    body = orjson.dumps(document)
    await send(_start(status, body))
    await send({"type": "http.response.body", "body": body})


_OVERLOADED = orjson.dumps({"outcome": "overloaded", "error": OVERLOADED})
_RETRY_AFTER = (b"retry-after", str(RETRY_AFTER_SECONDS).encode())


def shopify_endpoint(
    receiver: Receiver, max_body_bytes: int, *, max_pending_bytes: int = MAX_PENDING_BYTES
) -> ASGIApp:
    """The endpoint; `max_pending_bytes` bounds the bodies it reads and holds at once."""
    pending = PendingBytes(max_pending_bytes)
    warned_at = -OVERLOAD_WARNING_SECONDS

    async def overloaded(send: Send, full: str) -> None:
        """503 at once, before (more of) the body is read: Shopify sends the webhook again."""
        nonlocal warned_at
        WEBHOOKS.labels("overloaded").inc()
        now = time.monotonic()
        if now - warned_at >= OVERLOAD_WARNING_SECONDS:
            # Once in a while, not once a request: a flood would flood the log too.
            warned_at = now
            log.warning(
                "webhooks refused: overloaded",
                full=full,
                pending_bytes=pending.held,
                max_pending_bytes=pending.limit,
            )
        await send(_start(503, _OVERLOADED, _RETRY_AFTER))
        await send({"type": "http.response.body", "body": _OVERLOADED})

    async def receive_shopify(scope: Scope, receive: Receive, send: Send) -> None:
        with ACK_SECONDS.time():
            # The server gives header names in lower case; a repeated header keeps its first,
            # as Starlette's headers do.
            headers = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in reversed(scope["headers"])
            }
            declared = _content_length(headers.get("content-length"))
            if declared is not None and declared > max_body_bytes:
                WEBHOOKS.labels("too_large").inc()
                await _answer(send, 413, {"error": "body too large"})
                return
            held = declared or 0
            if held and not pending.take(held):
                await overloaded(send, "pending bytes")
                return
            try:
                try:
                    body = await _read_body(receive, max_body_bytes, pending, held)
                except BodyTooLarge:
                    WEBHOOKS.labels("too_large").inc()
                    await _answer(send, 413, {"error": "body too large"})
                    return
                except PendingBytesFull:
                    await overloaded(send, "pending bytes")
                    return
                except ClientGone:
                    WEBHOOKS.labels("disconnected").inc()
                    return
                held = max(held, len(body))  # a body in chunks took its bytes as they came
                await _commit_and_answer(receiver, headers, body, send, overloaded)
            finally:
                pending.give_back(held)

    return receive_shopify


async def _commit_and_answer(
    receiver: Receiver,
    headers: dict[str, str],
    body: bytes,
    send: Send,
    overloaded: Callable[[Send, str], Awaitable[None]],
) -> None:
    try:
        received = await receiver.receive(headers, body)
    except IngestOverloaded:
        await overloaded(send, "commit queue")
        return
    except Exception:
        # Nothing is acknowledged, so nothing is lost. The traceback goes through the
        # redaction processor, which masks the rows database errors quote.
        log.warning("webhook not stored", shop=headers.get("x-shopify-shop-domain"), exc_info=True)
        WEBHOOKS.labels("not_stored").inc()
        await _answer(send, 503, {"error": NOT_STORED})
        return
    WEBHOOKS.labels(received.outcome).inc()
    document = {"outcome": received.outcome}
    if received.status_code != 200 and received.detail:
        document["error"] = received.detail
    await _answer(send, received.status_code, document)
