"""The dashboard's 30-day chart (inline SVG, drawn here) and the reconcile table's data,
both from operations/reconcile.py and cached: the time zone costs a Klaviyo request."""

from __future__ import annotations

import asyncio
import time
from html import escape
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from shoprelay.service import Service

log = structlog.get_logger("shoprelay.web")
CHART_DAYS = 30
CHART_CACHE_SECONDS = 120.0
RECONCILE_DAYS = 7
RECONCILE_CACHE_SECONDS = 600.0
# Okabe and Ito's palette: told apart with every common colour-vision deficiency.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000")


class Cached:
    """One reconcile document, computed at most every `seconds`, one computation at a time."""

    def __init__(self, service: Service, *, days: int, ask_klaviyo: bool, seconds: float) -> None:
        self.service, self.days, self.ask_klaviyo, self.seconds = (
            service,
            days,
            ask_klaviyo,
            seconds,
        )
        self.value: dict[str, Any] | None = None
        self.at = 0.0
        self.lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        async with self.lock:
            if self.value is None or time.monotonic() - self.at > self.seconds:
                self.value, self.at = await self._compute(), time.monotonic()
            return self.value

    async def _compute(self) -> dict[str, Any]:
        try:
            from shoprelay.operations.reconcile import reconcile
        except ImportError:
            return {"timezone": "UTC", "days": [], "unavailable": "reconcile is not installed"}
        try:
            return await reconcile(
                self.service.store,
                self.service.settings,
                days=self.days,
                ask_klaviyo=self.ask_klaviyo,
            )
        except Exception as exc:  # the panel says so; the rest of the page stands
            log.warning("dashboard.reconcile_failed", exc_info=True)
            return {"timezone": "UTC", "days": [], "unavailable": type(exc).__name__}


def daily_deliveries(service: Service) -> Cached:
    return Cached(service, days=CHART_DAYS, ask_klaviyo=False, seconds=CHART_CACHE_SECONDS)


def reconciliation(service: Service) -> Cached:
    return Cached(service, days=RECONCILE_DAYS, ask_klaviyo=True, seconds=RECONCILE_CACHE_SECONDS)


def series(document: dict[str, Any]) -> tuple[list[str], dict[str, list[int]]]:
    """The dates in order, and each metric's delivered count on each date."""
    dates = sorted({row["date"] for row in document.get("days", [])})
    index = {day: n for n, day in enumerate(dates)}
    counts: dict[str, list[int]] = {}
    for row in document.get("days", []):
        counts.setdefault(row["metric"], [0] * len(dates))[index[row["date"]]] += int(
            row.get("delivered") or 0
        )
    return dates, dict(sorted(counts.items()))


WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 760, 240, 48, 28, 12, 12


def line_chart(document: dict[str, Any]) -> str:
    """Events delivered per day, one line per metric, with a legend and a title per point."""
    dates, counts = series(document)
    if not dates:
        return '<p class="muted">Nothing delivered in the last 30 days.</p>'
    top = _nice_ceiling(max(max(values) for values in counts.values()))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(dates) - 1)

    def x(n: int) -> float:
        return LEFT + (n * step if len(dates) > 1 else plot_w / 2)

    def y(value: int) -> float:
        return TOP + plot_h - value / top * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Events delivered per day per metric">'
    ]
    for tick in range(5):
        value = top * tick // 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{value}</text>'
        )
    label_every = max(1, len(dates) // 6)
    for n, day in enumerate(dates):
        if n % label_every == 0 or n == len(dates) - 1:
            parts.append(
                f'<text class="axis" x="{x(n):.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{escape(day[5:])}</text>'
            )
    for colour, (metric, values) in zip(_colours(len(counts)), counts.items(), strict=True):
        points = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        for n, value in enumerate(values):
            parts.append(
                f'<circle cx="{x(n):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(metric)} on {escape(dates[n])}: {value}</title></circle>"
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{colour}"></span>{escape(metric)} '
        f"<b>{sum(values)}</b></li>"
        for colour, (metric, values) in zip(_colours(len(counts)), counts.items(), strict=True)
    )
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


def _colours(count: int) -> list[str]:
    return [PALETTE[n % len(PALETTE)] for n in range(count)]


def _nice_ceiling(value: int) -> int:
    """The smallest of 4, 8, 20, 40, 80, 200 … (times a power of ten) at or above `value`:
    gridlines at quarters of it fall on round numbers."""
    magnitude = 1
    while True:
        for step in (4, 8, 20):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10
