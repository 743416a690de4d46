"""The dashboard's HTML: every text from the outside escaped, each source's block shown."""

from __future__ import annotations

from typing import Any

from shoprelay.web.pages import letters_table, overview_panels

HOSTILE = '<script>alert("x")</script>'


def overview(**sources: Any) -> dict[str, Any]:
    return {
        "generated_at": 1_800_000_000.0,
        "queue": {
            "pending": 3, "in_flight": 1, "delivered": 10, "dead_lettered": 0,
            "oldest_pending_age_seconds": 30.0, "delivered_per_minute": 2.0,
            "last_delivered_at": None,
        },
        "dead_letters": {"open": 0},
        "klaviyo": {"endpoints": [], "pauses": [], "last_error": None},
        "webhooks": {"total": {"processed": 4}, "per_minute": {"processed": 1.0}},
        "sources": sources,
        "database": {"backend": "sqlite", "warnings": []},
        "alerts": [{"level": "warning", "message": HOSTILE}],
    }  # fmt: skip


def test_shipstation_and_shopify_catch_up_are_shown_from_status() -> None:
    """ShipStation's block from its status keys; Shopify's appears once status has one."""
    shipstation = {
        "enabled": True, "phase": "incremental", "last_sync_finished_at": "2026-12-04T10:00:00Z",
        "watermark": "2026-12-04T09:59:00Z", "api_budget": {"limit": 40, "remaining": 31},
        "last_error": {"kind": "auth", "message": HOSTILE},
    }  # fmt: skip
    shopify = {"phase": "backfill", "watermark": "2026-12-01T00:00:00Z", "last_error": None}
    html = overview_panels(overview(shipstation=shipstation, shopify=shopify))
    assert "ShipStation catch-up" in html
    assert "31/40" in html
    assert "2026-12-04T09:59:00Z" in html
    assert "Shopify catch-up" in html
    assert "2026-12-01T00:00:00Z" in html
    assert HOSTILE not in html
    assert "&lt;script&gt;" in html
    assert "Shopify catch-up" not in overview_panels(overview(shipstation={"enabled": False}))


def test_a_dead_letters_reason_is_shown_as_text() -> None:
    listing = {
        "matching": 1,
        "facets": {"origin": ["delivery"], "topic": []},
        "letters": [
            {"id": 7, "origin": "delivery", "topic": None, "reason": HOSTILE,
             "status_code": 400, "created_at": 1_800_000_000.0},
        ],
    }  # fmt: skip
    html = letters_table(listing)
    assert HOSTILE not in html
    assert 'data-letter="7"' in html
