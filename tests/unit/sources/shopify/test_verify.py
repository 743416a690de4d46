"""Shopify HMAC verification."""

from __future__ import annotations

import base64
import hashlib
import hmac

from shoprelay.sources.shopify.verify import verify


def _sign(body: bytes, secret: bytes) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def test_shopify_published_test_vector_verifies() -> None:
    """Shopify's own test vector passes."""
    header = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
    assert verify(b'{"foo": "bar"}', header, [b"test_secret_key"])


def test_a_changed_byte_fails() -> None:
    """Re-serialised or tampered bytes do not verify."""
    header = _sign(b'{"foo": "bar"}', b"s")
    assert not verify(b'{"foo":"bar"}', header, [b"s"])


def test_previous_secret_still_verifies_during_rotation() -> None:
    """A delivery signed with the previous secret verifies while both are configured."""
    body = b'{"id": 1}'
    assert verify(body, _sign(body, b"old"), [b"new", b"old"])
    assert not verify(body, _sign(body, b"old"), [b"new"])


def test_missing_header_or_secret_never_verifies() -> None:
    """No header, an empty header, or no configured secret is a refusal."""
    assert not verify(b"{}", None, [b"s"])
    assert not verify(b"{}", "", [b"s"])
    assert not verify(b"{}", _sign(b"{}", b"s"), [])
