"""What explains Klaviyo counting other than shoprelay delivered (pure)."""

from __future__ import annotations

from typing import Any

from shoprelay.operations.reconcile import explain_differences


def _row(day: str, delivered: int, klaviyo: int | None) -> dict[str, Any]:
    return {
        "date": day,
        "metric": "Order Shipped",
        "source": delivered,
        "delivered": delivered,
        "klaviyo": klaviyo,
        "explained": {},
    }


def test_a_day_short_and_the_next_over_is_a_clock_mismatch() -> None:
    """Two events Klaviyo put on the next day explain both days; the rest stays unexplained."""
    rows = [_row("2026-12-01", 10, 8), _row("2026-12-02", 5, 7), _row("2026-12-03", 4, 5)]
    explain_differences(rows)
    assert [row["explained"] for row in rows] == [
        {"clock": 2},
        {"clock": 2},
        {"unexplained": 1},
    ]


def test_without_klaviyo_nothing_is_explained() -> None:
    """Rows Klaviyo could not be asked about keep only what shoprelay knows."""
    rows = [_row("2026-12-01", 3, None), _row("2026-12-02", 3, None)]
    explain_differences(rows)
    assert [row["explained"] for row in rows] == [{}, {}]
