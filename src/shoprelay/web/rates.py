"""Per-minute rates from Prometheus counters, which every process of `serve` adds to."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from prometheus_client import Metric

from shoprelay.web.metrics import collect

WINDOW_SECONDS = 60.0
# Fewer seconds of samples than this give no rate: a count over a blink says little.
LEAST_SPAN_SECONDS = 4.0


def counter_totals(metrics: Iterable[Metric]) -> dict[str, float]:
    """The counters the dashboard turns into rates, summed over their other labels."""
    totals: dict[str, float] = {"delivered": 0.0, "dead_lettered": 0.0}
    for metric in metrics:
        for sample in metric.samples:
            if sample.name == "shoprelay_webhooks_total":
                key = f"webhooks:{sample.labels.get('outcome', '')}"
                totals[key] = totals.get(key, 0.0) + sample.value
            elif sample.name == "shoprelay_delivery_items_total":
                outcome = sample.labels.get("outcome")
                if outcome == "delivered":
                    totals["delivered"] += sample.value
                elif outcome in ("dead_lettered", "gave_up"):
                    totals["dead_lettered"] += sample.value
    return totals


class CounterRates:
    """Samples the counters at each call and answers with rates over the last minute."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, float]]] = deque()

    def per_minute(self, totals: dict[str, float] | None = None) -> dict[str, float | None]:
        """Each counter's increase per minute over up to the last minute; None while the
        samples span too little time to tell."""
        now = time.monotonic()
        current = counter_totals(collect()) if totals is None else totals
        self.samples.append((now, current))
        # Keep one sample at least a window old, to measure the full minute from.
        while len(self.samples) > 2 and self.samples[1][0] <= now - WINDOW_SECONDS:
            self.samples.popleft()
        then, before = self.samples[0]
        span = now - then
        if span < LEAST_SPAN_SECONDS:
            return dict.fromkeys(current)
        return {
            key: max(0.0, value - before.get(key, 0.0)) * 60.0 / span
            for key, value in current.items()
        }
