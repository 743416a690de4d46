"""`shoprelay send-webhook`: one webhook, signed and headed as Shopify sends it, to a shoprelay."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import typer
from rich.markup import escape

from shoprelay.cli.common import clear_errors, console, settings, stderr
from shoprelay.errors import ShoprelayError
from shoprelay.service import require
from shoprelay.sim.shopify import WEBHOOK_PATH, encode, headers
from shoprelay.sim.shopify_samples import sample_payload

# Shopify gives up on a delivery after five seconds, and sends it again later.
SHOPIFY_TIMEOUT_SECONDS = 5.0
# Hosts reached without TLS when a URL is given without a scheme.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})  # noqa: S104


def send_webhook(topic: str, file: Path | None, url: str, shop: str) -> None:
    """Sign with SHOPIFY_WEBHOOK_SECRET, POST, and report what the service answered."""
    config = settings()
    with clear_errors():
        require(config, "SHOPIFY_WEBHOOK_SECRET")
        secret = config.shopify_secrets[0]  # the current one: the previous is only accepted
        body = encode(_payload(topic, file))
        target = webhook_url(url)
        started = time.monotonic()
        response = _post(target, body, headers(topic, body, secret, shop))
    elapsed_ms = (time.monotonic() - started) * 1000
    answer = _json_object(response)
    outcome = answer.get("outcome")
    summary = f"{response.status_code} {outcome or '(no outcome)'}"
    if response.is_success and outcome:
        console.print(f"{escape(summary)}: {topic} to {target} in {elapsed_ms:.0f} ms")
        if note := _note(topic, str(outcome)):
            console.print(note)
        return
    stderr.print(f"[red]error:[/red] {escape(summary)}: {topic} to {target}")
    stderr.print(escape(_explain(response.status_code, outcome, answer.get("error"))))
    raise typer.Exit(1)


def webhook_url(given: str) -> str:
    """The webhook URL from a base URL or the full one, with or without a scheme or a slash."""
    text = given.strip()
    if "://" not in text:
        host = urlsplit(f"//{text}").hostname or ""
        text = f"{'http' if host in LOCAL_HOSTS else 'https'}://{text}"
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    if not path.endswith(WEBHOOK_PATH):
        path += WEBHOOK_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _payload(topic: str, file: Path | None) -> dict[str, Any]:
    """The file's JSON object, the topic's sample, or `{}` for a topic shoprelay ignores."""
    if file is None:
        try:
            return sample_payload(topic)
        except KeyError:
            # An ignored topic still goes through the signature, the database and the answer:
            # a check of a production setup that sends nothing on to Klaviyo.
            return {}
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ShoprelayError(f"cannot read {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise ShoprelayError(f"{file} is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ShoprelayError(f"{file} must hold a JSON object, as every Shopify webhook does")
    return payload


def _post(url: str, body: bytes, signed: dict[str, str]) -> httpx.Response:
    try:
        return httpx.post(url, content=body, headers=signed, timeout=SHOPIFY_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        raise ShoprelayError(
            f"no answer from {url} within {SHOPIFY_TIMEOUT_SECONDS:g} s; Shopify would give "
            "up too, and send the webhook again later"
        ) from None
    except httpx.HTTPError as exc:
        raise ShoprelayError(
            f"cannot send to {url} ({exc}); is `shoprelay serve` running there?"
        ) from None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _note(topic: str, outcome: str) -> str | None:
    """What an acknowledged outcome other than `processed` means for the person sending."""
    from shoprelay.sources.shopify.topics import TOPICS

    if outcome == "ignored" and topic not in TOPICS:
        return f"shoprelay does not handle {topic}: it was stored, and nothing goes to Klaviyo"
    if outcome == "unprocessable":
        return "kept with its reason in the dead-letter queue: shoprelay dlq list"
    return None


def _explain(status: int, outcome: object, error: object) -> str:
    """Why a webhook was not acknowledged, and what to check."""
    if status == 401:
        return (
            "The service could not verify the signature: this SHOPIFY_WEBHOOK_SECRET is not "
            "the one it has. Both must be the Shopify app's client secret."
        )
    if not outcome and not error:
        return "The answer is not shoprelay's: is this the URL of `shoprelay serve`?"
    return str(error or outcome)
