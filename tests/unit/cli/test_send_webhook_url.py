"""`send-webhook --url` takes what a person is likely to type."""

from __future__ import annotations

import pytest

from shoprelay.cli.send_webhook import webhook_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/webhooks/shopify"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/webhooks/shopify"),
        ("http://127.0.0.1:8000/webhooks/shopify", "http://127.0.0.1:8000/webhooks/shopify"),
        ("http://127.0.0.1:8000/webhooks/shopify/", "http://127.0.0.1:8000/webhooks/shopify"),
        (" https://relay.example.com ", "https://relay.example.com/webhooks/shopify"),
        # Behind a proxy that serves shoprelay under a prefix.
        ("https://example.com/relay", "https://example.com/relay/webhooks/shopify"),
        # Without a scheme: TLS, except on this machine.
        ("relay.example.com", "https://relay.example.com/webhooks/shopify"),
        ("localhost:8000", "http://localhost:8000/webhooks/shopify"),
        ("127.0.0.1:8000/webhooks/shopify", "http://127.0.0.1:8000/webhooks/shopify"),
    ],
)
def test_base_or_full_url_with_or_without_scheme(given: str, expected: str) -> None:
    assert webhook_url(given) == expected
