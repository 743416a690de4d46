"""Prometheus metrics of this process or, under `serve --workers N`, summed over all of them."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, multiprocess, values

_SHARED = "PROMETHEUS_MULTIPROC_DIR"


def share_across_processes(folder: Path) -> None:
    """Keep every metric value created from now on, here and in forks, in a file in `folder`.

    prometheus_client picks its value class when it is imported, from this variable; the
    command line has imported it already, so the class is switched too. Call this before
    any labelled metric is first used and before the app's own metrics are imported.
    """
    os.environ[_SHARED] = str(folder)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def shared_across_processes() -> Iterator[Path]:
    """Share metrics through a scratch folder for as long as the block runs."""
    folder = Path(tempfile.mkdtemp(prefix="shoprelay-metrics-"))
    share_across_processes(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def exposition() -> bytes:
    """The text /metrics answers with."""
    if _SHARED not in os.environ:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
