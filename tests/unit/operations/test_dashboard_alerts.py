"""What the dashboard flags as stalled: read from a status document and the process's view."""

from __future__ import annotations

from typing import Any

from shoprelay.operations.dashboard import ProcessView, alerts, shopify_source
from shoprelay.operations.dead_letters import mask, mask_text

NOW = 1_800_000_000.0


def status(pending: int = 0, oldest: float | None = None, **parts: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "outbox": {"pending": pending, "oldest_pending_age_seconds": oldest},
        "delivery": {"pauses": []},
        "dead_letters": {"open": 0},
        "database": {"warnings": []},
        "shipstation": {"enabled": False},
    }
    return document | parts


def levels(document: dict[str, Any], process: ProcessView | None = None) -> list[str]:
    found = alerts(document, process or ProcessView(started_at=NOW - 3600), NOW, 10)
    return [f"{alert['level']}: {alert['message']}" for alert in found]


def test_a_quiet_pipeline_raises_nothing() -> None:
    assert levels(status()) == []


def test_items_pending_with_nothing_delivered_for_minutes_is_stalled() -> None:
    """Pending for 20 min and nothing delivered for 15: stalled; a delivery a minute ago: not."""
    quiet = ProcessView(last_delivered_at=NOW - 900, started_at=NOW - 3600)
    assert levels(status(5, 1200), quiet) == [
        "stalled: Nothing delivered for 15 min while 5 item(s) are pending"
    ]
    busy = ProcessView(last_delivered_at=NOW - 60, started_at=NOW - 3600)
    assert levels(status(5, 1200), busy) == []


def test_a_pause_a_stopped_task_and_a_refused_key_are_stalls() -> None:
    pause = {
        "account": "default",
        "endpoint": "*",
        "reason": "auth",
        "detail": "401",
        "until": None,
    }
    refused = {"enabled": True, "last_error": {"kind": "auth", "message": "401 Unauthorized"}}
    document = status(delivery={"pauses": [pause]}, shipstation=refused)
    found = levels(document, ProcessView(stopped_tasks=["shipstation"], started_at=NOW))
    assert found == [
        "stalled: Delivery paused for default/* until resumed: auth (401)",
        "stalled: Background task stopped: shipstation",
        "stalled: ShipStation refused the API key: 401 Unauthorized",
    ]


def test_shopify_catch_up_is_read_where_status_reports_it() -> None:
    refused = {"catchup": "on", "last_error": {"kind": "auth", "message": "invalid access token"}}
    assert levels(status(shopify_admin=refused)) == [
        "stalled: Shopify refused the API key: invalid access token"
    ]


def test_shopify_catch_up_is_shown_in_shipstation_s_shape() -> None:
    admin = {
        "catchup": "on",
        "watermark": "2026-12-04T10:00:00Z",
        "last_catchup": {"at": "2026-12-04T10:15:00Z", "orders": 3},
        "api_budget": {"remaining": 940, "limit": 1000, "restore_rate": 50.0},
        "last_error": None,
        "backfill": {"phase": "orders", "done": False},
    }
    assert shopify_source(admin) == {
        "phase": "backfill orders",
        "last_sync_finished_at": "2026-12-04T10:15:00Z",
        "watermark": "2026-12-04T10:00:00Z",
        "api_budget": {"remaining": 940, "limit": 1000, "restore_rate": 50.0},
        "last_error": None,
    }
    assert shopify_source(admin | {"backfill": {"done": True}})["phase"] == "catch-up"
    assert shopify_source({"catchup": "off", "reason": "no token"}) == {"enabled": False}


def test_personal_data_is_masked_under_its_keys_and_emails_anywhere() -> None:
    body = {
        "metric": {"data": {"attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"attributes": {"email": "jane@example.com", "first_name": "Jane"}}},
        "properties": {"OrderId": "1001", "note": "call jane@example.com"},
        "shipping_address": {"name": "Jane Roe", "country_code": "US"},
    }
    assert mask(body) == {
        "metric": {"data": {"attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"attributes": {"email": "j•••@example.com", "first_name": "J•••"}}},
        "properties": {"OrderId": "1001", "note": "call j•••@example.com"},
        "shipping_address": {"name": "J•••", "country_code": "U•••"},
    }
    assert mask_text("Invalid email address: bob@x.io") == "Invalid email address: b•••@x.io"
