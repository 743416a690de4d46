"""The redaction processor: the last guard against secrets and personal data in logs."""

from __future__ import annotations

from shoprelay.logs import redact


def test_sensitive_keys_are_masked() -> None:
    """Values under keys such as email, body or api_key never reach the log."""
    event = redact(None, "info", {"email": "a@b.c", "body": "{...}", "api_key": "x", "count": 3})
    assert event == {
        "email": "[redacted]",
        "body": "[redacted]",
        "api_key": "[redacted]",
        "count": 3,
    }


def test_key_shaped_strings_are_masked_anywhere() -> None:
    """A Klaviyo or Shopify key inside a message is masked."""
    event = redact(None, "error", {"event": "failed with Klaviyo-API-Key pk_abcdef123456 set"})
    assert "pk_abcdef123456" not in event["event"]
