"""Tables on the terminal, JSON in bench/results/, and the small statistics both need."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
# Wide enough for every column even when piped (rich would otherwise assume 80).
console = Console(width=max(Console().width, 200))
Row = dict[str, Any]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def latency_ms(values: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of latencies given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "max_ms": round(max(values, default=0.0) * 1000, 1),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator to three places, None when undefined."""
    return round(numerator / denominator, 3) if denominator else None


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def show(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> None:
    """Print rows as one table, with notes under it."""
    table = Table(title=title, title_justify="left")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(
            column, justify="left" if column in {"backend", "run", "kind", "path"} else "right"
        )
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)
    for note in notes:
        console.print(f"  {note}")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def save(
    scenario: str, settings: dict[str, Any], rows: Sequence[Row], notes: Sequence[str]
) -> Path:
    """Write bench/results/<scenario>.json and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{scenario}.json"
    document: dict[str, Any] = {"scenario": scenario, "machine": machine(), "settings": settings}
    document |= {"rows": list(rows), "notes": list(notes)}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
